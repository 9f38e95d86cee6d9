#include "verify/zip/zip_directory.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>

#include "verify/byte_reader.h"

namespace ckptwatch {
namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50;
constexpr std::uint32_t kCentralSig = 0x02014b50;
constexpr std::uint32_t kEndSig = 0x06054b50;
constexpr std::uint32_t kZip64EndSig = 0x06064b50;
constexpr std::uint32_t kZip64LocatorSig = 0x07064b50;
constexpr std::size_t kEndSize = 22;
constexpr std::size_t kZip64EndSize = 56;
constexpr std::size_t kZip64LocatorSize = 20;
constexpr std::size_t kCentralSize = 46;
constexpr std::size_t kLocalSize = 30;
constexpr std::size_t kMaxComment = 0xffff;
// A central directory holds names and a few fields per entry: a million entries with long
// names fit in this; a larger one is hostile.
constexpr std::uint64_t kMaxDirectoryBytes = 256u << 20;

constexpr char kZipCutShort[] =
    "(disk full or writer killed during save?): torch.load fails with \"failed finding central "
    "directory\"";

// What the end record(s) say.
struct End {
  std::uint64_t record_offset = 0;  // Of the zip64 end record when there is one.
  std::uint64_t end_of_archive = 0;
  std::uint64_t entries = 0;
  std::uint64_t directory_size = 0;
  std::uint64_t directory_offset = 0;
};

// Reads the end record whose signature is at `at` in the tail, following a zip64 locator.
// False when the record does not describe a directory that ends where the record starts.
bool ParseEnd(const ByteReader& file, const std::vector<std::uint8_t>& tail, std::uint64_t tail_start,
              std::size_t at, End* end) {
  const std::uint8_t* p = tail.data() + at;
  const std::uint64_t record = tail_start + at;
  end->end_of_archive = record + kEndSize + LoadLe(p + 20, 2);
  if (end->end_of_archive > file.size()) return false;
  if (LoadLe(p + 4, 2) != 0 || LoadLe(p + 6, 2) != 0) return false;  // Multi-disk: not ours.
  end->entries = LoadLe(p + 10, 2);
  end->directory_size = LoadLe(p + 12, 4);
  end->directory_offset = LoadLe(p + 16, 4);
  end->record_offset = record;
  const bool zip64 = end->entries == 0xffff || end->directory_size == 0xffffffff ||
                     end->directory_offset == 0xffffffff;
  if (record >= kZip64LocatorSize) {
    std::uint8_t loc[kZip64LocatorSize];
    std::string err;
    if (file.Read(record - kZip64LocatorSize, loc, sizeof loc, &err) && LoadLe(loc, 4) == kZip64LocatorSig) {
      const std::uint64_t at64 = LoadLe(loc + 8, 8);
      std::uint8_t rec[kZip64EndSize];
      if (at64 > record - kZip64LocatorSize || !file.Read(at64, rec, sizeof rec, &err) ||
          LoadLe(rec, 4) != kZip64EndSig)
        return false;
      end->entries = LoadLe(rec + 32, 8);
      end->directory_size = LoadLe(rec + 40, 8);
      end->directory_offset = LoadLe(rec + 48, 8);
      end->record_offset = at64;
    } else if (zip64) {
      return false;
    }
  } else if (zip64) {
    return false;
  }
  return end->directory_offset <= end->record_offset &&
         end->directory_size == end->record_offset - end->directory_offset;
}

// Replaces 0xffffffff fields of a central entry with its zip64 extra field's values.
bool ApplyZip64Extra(const std::uint8_t* extra, std::size_t n, ZipEntry* e, bool need_size,
                     bool need_csize, bool need_offset) {
  for (std::size_t i = 0; i + 4 <= n;) {
    const std::uint64_t id = LoadLe(extra + i, 2), len = LoadLe(extra + i + 2, 2);
    if (i + 4 + len > n) return false;
    if (id == 1) {
      std::size_t at = i + 4;
      auto take = [&](std::uint64_t* field) {
        if (at + 8 > i + 4 + len) return false;
        *field = LoadLe(extra + at, 8);
        at += 8;
        return true;
      };
      return (!need_size || take(&e->size)) && (!need_csize || take(&e->compressed_size)) &&
             (!need_offset || take(&e->local_offset));
    }
    i += 4 + len;
  }
  return !need_size && !need_csize && !need_offset;
}

}  // namespace

long ZipDirectory::Find(const std::string& name) const {
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (entries[i].name == name) return static_cast<long>(i);
  return -1;
}

std::string FirstZipEntryName(const ReadAt& read_at, std::uint64_t file_size) {
  ByteReader file(read_at, file_size);
  std::uint8_t head[kLocalSize];
  std::string err;
  if (!file.Read(0, head, sizeof head, &err) || LoadLe(head, 4) != kLocalSig) return "";
  const std::size_t n = std::min<std::size_t>(LoadLe(head + 26, 2), 4096);
  std::string name(n, '\0');
  if (!file.Read(kLocalSize, name.data(), n, &err)) return "";
  return name;
}

ZipDirectory ReadZipDirectory(const ReadAt& read_at, std::uint64_t file_size) {
  ZipDirectory dir;
  ByteReader file(read_at, file_size);
  auto fail = [&](Verdict verdict, std::string reason) {
    dir.verdict = verdict;
    dir.reason = std::move(reason);
    dir.entries.clear();
    return std::move(dir);
  };
  std::string err;
  std::uint8_t magic[4] = {};
  if (!file.Read(0, magic, std::min<std::uint64_t>(4, file_size), &err))
    return fail(Verdict::kCorrupt, err);
  const bool starts_like_zip = file_size >= 4 && LoadLe(magic, 4) == kLocalSig;

  // The end record is in the last 22 + 65535 bytes; look from the end backwards, as readers do,
  // and take the first candidate whose directory ends where the record starts.
  const std::uint64_t tail_len = std::min<std::uint64_t>(file_size, kEndSize + kMaxComment);
  const std::uint64_t tail_start = file_size - tail_len;
  std::vector<std::uint8_t> tail;
  if (!file.ReadVector(tail_start, static_cast<std::size_t>(tail_len), &tail, &err))
    return fail(Verdict::kCorrupt, err);
  End end;
  bool found = false;
  for (std::size_t at = tail.size() >= kEndSize ? tail.size() - kEndSize + 1 : 0; at-- > 0;) {
    if (LoadLe(tail.data() + at, 4) == kEndSig && ParseEnd(file, tail, tail_start, at, &end)) {
      found = true;
      break;
    }
  }
  if (!found) {
    if (starts_like_zip)
      return fail(Verdict::kTruncated, "zip archive ends at " + std::to_string(file_size) +
                                           " bytes without its central directory: the save was cut short " +
                                           kZipCutShort);
    return fail(Verdict::kNotCheckpoint, "not a zip archive (no local file header, no end of central directory)");
  }
  if (end.end_of_archive != file_size)
    return fail(Verdict::kCorrupt, "zip archive ends at " + std::to_string(end.end_of_archive) + " bytes but the file has " +
                                       std::to_string(file_size - end.end_of_archive) +
                                       " more: the tail of an older, longer file (overwritten in place?)");
  if (end.entries > kMaxZipEntries)
    return fail(Verdict::kCorrupt, "zip directory lists " + std::to_string(end.entries) + " entries (at most " +
                                       std::to_string(kMaxZipEntries) + " are verified): not a checkpoint");
  if (end.directory_size > kMaxDirectoryBytes)
    return fail(Verdict::kCorrupt, "zip central directory is " + std::to_string(end.directory_size) +
                                       " bytes (at most " + std::to_string(kMaxDirectoryBytes) + " are read)");
  if (end.entries * kCentralSize > end.directory_size)
    return fail(Verdict::kCorrupt, "zip end record lists " + std::to_string(end.entries) +
                                       " entries, more than its central directory of " +
                                       std::to_string(end.directory_size) + " bytes can hold");

  std::vector<std::uint8_t> cd;
  if (!file.ReadVector(end.directory_offset, static_cast<std::size_t>(end.directory_size), &cd, &err))
    return fail(Verdict::kCorrupt, err);
  dir.directory_offset = end.directory_offset;
  dir.entries.reserve(static_cast<std::size_t>(end.entries));
  std::size_t at = 0;
  for (std::uint64_t i = 0; i < end.entries; ++i) {
    auto bad = [&](const std::string& what) {
      return fail(Verdict::kCorrupt, "zip central directory entry " + std::to_string(i) + " " + what +
                                         ": the archive is corrupt");
    };
    if (cd.size() - at < kCentralSize || LoadLe(cd.data() + at, 4) != kCentralSig) return bad("is malformed");
    const std::uint8_t* p = cd.data() + at;
    ZipEntry e;
    e.flags = static_cast<std::uint16_t>(LoadLe(p + 8, 2));
    e.method = static_cast<std::uint16_t>(LoadLe(p + 10, 2));
    e.crc32 = static_cast<std::uint32_t>(LoadLe(p + 16, 4));
    e.compressed_size = LoadLe(p + 20, 4);
    e.size = LoadLe(p + 24, 4);
    const std::size_t name_len = LoadLe(p + 28, 2), extra_len = LoadLe(p + 30, 2),
                      comment_len = LoadLe(p + 32, 2);
    e.local_offset = LoadLe(p + 42, 4);
    if (cd.size() - at - kCentralSize < name_len + extra_len + comment_len) return bad("runs past the directory");
    e.name.assign(reinterpret_cast<const char*>(p + kCentralSize), name_len);
    if (!ApplyZip64Extra(p + kCentralSize + name_len, extra_len, &e, e.size == 0xffffffff,
                         e.compressed_size == 0xffffffff, e.local_offset == 0xffffffff))
      return bad("has a malformed zip64 extra field");
    // Data lies between its local header and the directory.
    if (e.local_offset > dir.directory_offset ||
        e.compressed_size > dir.directory_offset - e.local_offset ||
        dir.directory_offset - e.local_offset - e.compressed_size < kLocalSize + name_len)
      return bad("(" + e.name + ") points outside the archive");
    at += kCentralSize + name_len + extra_len + comment_len;
    dir.entries.push_back(std::move(e));
  }
  if (at != cd.size()) return fail(Verdict::kCorrupt, "zip central directory has bytes beyond its last entry");
  dir.verdict = Verdict::kOk;
  return dir;
}

bool ZipEntryDataOffset(const ReadAt& read_at, std::uint64_t file_size, const ZipEntry& e,
                        std::uint64_t* data_offset, std::string* err) {
  ByteReader file(read_at, file_size);
  std::uint8_t head[kLocalSize];
  if (!file.Read(e.local_offset, head, sizeof head, err)) return false;
  if (LoadLe(head, 4) != kLocalSig) {
    *err = "entry " + e.name + " has no local header where the directory says";
    return false;
  }
  const std::size_t name_len = LoadLe(head + 26, 2), extra_len = LoadLe(head + 28, 2);
  std::string name(name_len, '\0');
  if (!file.Read(e.local_offset + kLocalSize, name.data(), name_len, err)) return false;
  if (name != e.name) {
    *err = "entry " + e.name + "'s local header names " + name;
    return false;
  }
  *data_offset = e.local_offset + kLocalSize + name_len + extra_len;
  if (*data_offset > file_size || e.compressed_size > file_size - *data_offset) {
    *err = "entry " + e.name + "'s data runs past the end of the file";
    return false;
  }
  return true;
}

bool StreamZipEntry(const ReadAt& read_at, std::uint64_t file_size, const ZipEntry& e,
                    std::uint64_t data_offset,
                    const std::function<bool(const std::uint8_t*, std::size_t)>& sink, std::string* err) {
  ByteReader file(read_at, file_size);
  if (e.method != 0 && e.method != 8) {
    *err = "entry " + e.name + " uses compression method " + std::to_string(e.method) + ", which torch never writes";
    return false;
  }
  constexpr std::size_t kChunk = 256u << 10;  // Scanned while still in L2 (safetensors.cc).
  std::vector<std::uint8_t> in(static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, e.compressed_size)));
  std::vector<std::uint8_t> out(e.method == 8 ? kChunk : 0);
  z_stream z{};
  if (e.method == 8 && inflateInit2(&z, -MAX_WBITS) != Z_OK) return (*err = "zlib failed to start", false);
  struct End {
    z_stream* z;
    bool on;
    ~End() { if (on) inflateEnd(z); }
  } end{&z, e.method == 8};
  std::uint32_t crc = static_cast<std::uint32_t>(crc32(0, nullptr, 0));
  std::uint64_t produced = 0;
  bool stopped = false, stream_end = e.method == 0;
  auto take = [&](const std::uint8_t* p, std::size_t n) {
    // zlib's crc32 takes an unsigned int length.
    for (std::size_t done = 0; done < n;) {
      const auto k = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
      crc = static_cast<std::uint32_t>(crc32(crc, p + done, k));
      done += k;
    }
    produced += n;
    if (!stopped && !sink(p, n)) stopped = true;
  };
  for (std::uint64_t at = 0; at < e.compressed_size && !stopped;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), e.compressed_size - at));
    if (!file.Read(data_offset + at, in.data(), n, err)) return false;
    at += n;
    if (e.method == 0) {
      take(in.data(), n);
      continue;
    }
    z.next_in = in.data();
    z.avail_in = static_cast<uInt>(n);
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      const int rc = inflate(&z, Z_NO_FLUSH);
      if (rc == Z_BUF_ERROR) break;  // No progress possible: it needs more input.
      if (rc != Z_OK && rc != Z_STREAM_END) {
        *err = "entry " + e.name + " does not inflate: its compressed data is corrupt";
        return false;
      }
      take(out.data(), out.size() - z.avail_out);
      stream_end = rc == Z_STREAM_END;
    } while (!stream_end && !stopped && produced <= e.size && (z.avail_in > 0 || z.avail_out == 0));
  }
  if (stopped) return true;
  if (!stream_end || produced != e.size) {
    *err = "entry " + e.name + " holds " + std::to_string(produced) + " bytes, not the " + std::to_string(e.size) +
           " its directory entry says";
    return false;
  }
  if (crc != e.crc32) {
    char text[96];
    std::snprintf(text, sizeof text, "CRC-32 %08x, not the %08x its directory entry says", crc, e.crc32);
    *err = "entry " + e.name + " has " + text;
    return false;
  }
  return true;
}

}  // namespace ckptwatch
