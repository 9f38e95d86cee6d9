// Test helpers for the format readers: a ReadAt over bytes in memory, and builders of the exact
// bytes that reach each verdict branch — pickles at every protocol as CPython's pickler writes
// them, stored zip archives, torch.save's zip and legacy files.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "verify/byte_reader.h"  // ReadAt
#include "verify/verdict.h"

namespace ckptwatch::testing {

/// Reads `bytes`, which must outlive the ReadAt.
inline ReadAt OverBytes(const std::string& bytes) {
  return [&bytes](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (offset >= bytes.size()) return 0;
    n = std::min<std::size_t>(n, bytes.size() - offset);
    std::memcpy(buf, bytes.data() + offset, n);
    return static_cast<long>(n);
  };
}

/// The parts joined. (Appending: GCC 12 reports a false -Wrestrict for "X" + std::string.)
inline std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) out.append(part);
  return out;
}

/// One row of a verdict table: the input, the level it is checked at, what must come out.
struct VerdictCase {
  const char* what;
  std::string bytes;
  Level level;
  Verdict verdict;
  const char* reason;  ///< A part of the reason ("" for any).
};

/// Checks each row with `check(bytes, level)`, which returns something with `verdict` and
/// `reason`, and expects both.
template <typename Check, std::size_t N>
void ExpectVerdicts(const VerdictCase (&cases)[N], Check check) {
  for (const VerdictCase& c : cases) {
    const auto r = check(c.bytes, c.level);
    EXPECT_EQ(VerdictName(r.verdict), VerdictName(c.verdict)) << c.what << ": " << r.reason;
    EXPECT_NE(r.reason.find(c.reason), std::string::npos) << c.what << ": " << r.reason;
  }
}

/// `n` as `width` little-endian bytes.
inline std::string Le(std::uint64_t n, int width) {
  std::string out;
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out;
}

/// One pickle as CPython's pickler writes it at `protocol` (0-5): text opcodes at 0, binary from
/// 1, PROTO from 2, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE and a FRAME from 4. Raw opcodes
/// (MARK, TUPLE, SETITEM, REDUCE...) are appended with Op().
class PickleWriter {
 public:
  explicit PickleWriter(int protocol) : p_(protocol) {}

  PickleWriter& Op(const std::string& raw) { return body_ += raw, *this; }
  PickleWriter& Int(std::uint64_t v) {
    if (p_ == 0) return Op(Cat({"I", std::to_string(v), "\n"}));
    if (v < 256) return Op(Cat({"K", Le(v, 1)}));
    if (v < 65536) return Op(Cat({"M", Le(v, 2)}));
    return Op(Cat({"J", Le(v, 4)}));
  }
  PickleWriter& Bool(bool v) {
    if (p_ < 2) return Op(v ? "I01\n" : "I00\n");
    return Op(v ? "\x88" : "\x89");
  }
  PickleWriter& None() { return Op("N"); }
  PickleWriter& Str(const std::string& s) {
    if (p_ == 0)
      Op(Cat({"V", s, "\n"}));
    else if (p_ >= 4 && s.size() < 256)
      Op(Cat({"\x8c", Le(s.size(), 1), s}));
    else
      Op(Cat({"X", Le(s.size(), 4), s}));
    return Memo();
  }
  PickleWriter& Global(const std::string& module, const std::string& name) {
    if (p_ < 4)
      Op(Cat({"c", module, "\n", name, "\n"}));
    else
      Str(module).Str(name).Op("\x93");
    return Memo();
  }
  /// The memo put CPython writes after a memoized object: PUT, BINPUT/LONG_BINPUT or MEMOIZE.
  PickleWriter& Memo() {
    const std::uint64_t n = memo_++;
    if (p_ == 0) return Op(Cat({"p", std::to_string(n), "\n"}));
    if (p_ >= 4) return Op("\x94");
    return n < 256 ? Op(Cat({"q", Le(n, 1)})) : Op(Cat({"r", Le(n, 4)}));
  }
  /// The tuple of the last `n` values: TUPLE1-3 from protocol 2, else TUPLE (the caller wrote
  /// the MARK before them).
  PickleWriter& Tuple(int n) {
    if (p_ >= 2 && n >= 1 && n <= 3)
      Op(std::string(1, static_cast<char>(0x84 + n)));
    else
      Op("t");
    return Memo();
  }
  /// torch's legacy magic number 0x1950a86a20f9469cfc6c: LONG text before protocol 2.
  PickleWriter& TorchMagic() {
    if (p_ < 2) return Op("L119547037146038801333356L\n");
    return Op(std::string("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 12));
  }
  /// A persistent id of the tuple just built: BINPERSID; protocol 0 writes str(tuple) as PERSID.
  PickleWriter& PersistentId(const std::string& text_form) {
    return p_ == 0 ? Op(Cat({"P", text_form, "\n"})) : Op("Q");
  }
  /// torch._utils._rebuild_tensor_v2 of FloatStorage `key` with `numel` elements, as torch.save
  /// pickles a 1-D tensor (legacy files add the view metadata None to the storage tuple).
  PickleWriter& Tensor(const std::string& key, std::uint64_t numel, bool legacy) {
    Global("torch._utils", "_rebuild_tensor_v2").Op("(");
    if (p_ == 0) {
      PersistentId(Cat({"('storage', <class 'torch.FloatStorage'>, '", key, "', 'cpu', ",
                        std::to_string(numel), legacy ? ", None)" : ")"}));
    } else {
      Op("(").Str("storage").Global("torch", "FloatStorage").Str(key).Str("cpu").Int(numel);
      if (legacy) None();
      Op("t").Memo().PersistentId("");
    }
    Int(0);
    if (p_ < 2) Op("(");
    Int(numel).Tuple(1);
    if (p_ < 2) Op("(");
    Int(1).Tuple(1).Bool(false).Global("collections", "OrderedDict");
    Op(p_ == 0 ? "(t" : ")");  // The empty tuple is not memoized.
    return Op("R").Memo().Op("t").Memo().Op("R").Memo();
  }
  /// The whole pickle: PROTO (2+), a FRAME around it (4+, when 4 bytes or more), STOP.
  std::string Finish() const {
    const std::string payload = body_ + ".";
    std::string out;
    if (p_ >= 2) out += Cat({"\x80", Le(static_cast<std::uint64_t>(p_), 1)});
    if (p_ >= 4 && payload.size() >= 4) out += Cat({"\x95", Le(payload.size(), 8)});
    return out + payload;
  }

 private:
  int p_;
  std::uint64_t memo_ = 0;
  std::string body_;
};

/// {"w": FloatStorage `key` of `numel` elements}, as torch.save pickles a state dict.
inline std::string StateDictPickle(int protocol, const std::string& key, std::uint64_t numel,
                                   bool legacy) {
  PickleWriter w(protocol);
  w.Op(protocol == 0 ? "(d" : "}").Memo().Str("w").Tensor(key, numel, legacy).Op("s");
  return w.Finish();
}

/// `n` float32 values, each `value`'s bits (0x3f800000 for 1.0, 0x7fc00000 for NaN).
inline std::string Floats(std::size_t n, std::uint32_t bits = 0x3f800000) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += Le(bits, 4);
  return out;
}

/// torch.save(..., _use_new_zipfile_serialization=False) of {"w": `n` floats} at `protocol`:
/// magic number, 1001, system info, main pickle, key list, then the storage record.
inline std::string LegacyTorchFile(int protocol, std::size_t n = 3,
                                   const std::string& data = std::string()) {
  const std::string key = "94";
  std::string out = PickleWriter(protocol).TorchMagic().Finish();
  out += PickleWriter(protocol).Int(1001).Finish();
  PickleWriter info(protocol);
  info.Op(protocol == 0 ? "(d" : "}").Memo().Op(protocol == 0 ? "" : "(");
  info.Str("protocol_version").Int(1001);
  if (protocol == 0) info.Op("s");
  info.Str("little_endian").Bool(true);
  if (protocol == 0) info.Op("s");
  info.Op(protocol == 0 ? "" : "u");
  out += info.Finish();
  out += StateDictPickle(protocol, key, n, true);
  PickleWriter keys(protocol);
  keys.Op(protocol == 0 ? "(l" : "]").Memo().Str(key).Op("a");
  out += keys.Finish();
  return out + Le(n, 8) + (data.empty() ? Floats(n) : data);
}

/// One entry of a zip archive: stored, or deflated when `deflate`.
struct ZipFile {
  std::string name, data;
  bool deflate = false;
};

/// A zip archive with local headers, a central directory and an end record, as Python's
/// zipfile writes it (no data descriptors, no extra fields).
inline std::string ZipArchive(const std::vector<ZipFile>& files) {
  std::string out, directory;
  for (const ZipFile& f : files) {
    std::string stored = f.data;
    if (f.deflate) {
      z_stream z{};
      deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
      stored.resize(deflateBound(&z, f.data.size()));
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(f.data.data()));
      z.avail_in = static_cast<uInt>(f.data.size());
      z.next_out = reinterpret_cast<Bytef*>(stored.data());
      z.avail_out = static_cast<uInt>(stored.size());
      deflate(&z, Z_FINISH);
      stored.resize(z.total_out);
      deflateEnd(&z);
    }
    const auto crc =
        crc32(0, reinterpret_cast<const Bytef*>(f.data.data()), static_cast<uInt>(f.data.size()));
    const std::string method = Le(f.deflate ? 8 : 0, 2);
    const std::string sizes = Le(crc, 4) + Le(stored.size(), 4) + Le(f.data.size(), 4);
    directory += Cat({"PK\x01\x02", Le(20, 2), Le(20, 2), Le(0, 2), method, Le(0, 4), sizes,
                      Le(f.name.size(), 2), Le(0, 2), Le(0, 2), Le(0, 2), Le(0, 2), Le(0, 4),
                      Le(out.size(), 4), f.name});
    out += Cat({"PK\x03\x04", Le(20, 2), Le(0, 2), method, Le(0, 4), sizes, Le(f.name.size(), 2),
                Le(0, 2), f.name, stored});
  }
  const std::size_t at = out.size();
  return Cat({out, directory, "PK\x05\x06", Le(0, 4), Le(files.size(), 2), Le(files.size(), 2),
              Le(directory.size(), 4), Le(at, 4), Le(0, 2)});
}

/// The entries of torch.save(..., pickle_protocol=`protocol`) of {"w": 3 floats}: data.pkl,
/// data/0 and version under "archive/".
inline std::vector<ZipFile> TorchZipFiles(int protocol = 2, const std::string& data = Floats(3)) {
  return {{"archive/data.pkl", StateDictPickle(protocol, "0", data.size() / 4, false)},
          {"archive/data/0", data},
          {"archive/version", "3\n"}};
}

/// `files` without the entry named `name`, or with its data replaced by `data`.
inline std::vector<ZipFile> Without(std::vector<ZipFile> files, const std::string& name) {
  std::erase_if(files, [&](const ZipFile& f) { return f.name == name; });
  return files;
}
inline std::vector<ZipFile> With(std::vector<ZipFile> files, const std::string& name,
                                 const std::string& data) {
  for (ZipFile& f : files)
    if (f.name == name) return f.data = data, files;
  files.push_back({name, data});
  return files;
}

}  // namespace ckptwatch::testing
