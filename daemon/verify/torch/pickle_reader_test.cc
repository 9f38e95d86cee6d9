#include "verify/torch/pickle_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "verify/format_test_bytes.h"

namespace ckptwatch {
namespace {

using namespace std::string_literals;

PickleSummary Summarize(const std::string& bytes) {
  ReadAt over = [&bytes](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (offset >= bytes.size()) return 0;
    n = std::min<std::size_t>(n, bytes.size() - offset);
    std::memcpy(buf, bytes.data() + offset, n);
    return static_cast<long>(n);
  };
  return ReadPickle(over, 0, bytes.size());
}

// BINUNICODE. (Built by appending: GCC 12 reports a false -Wrestrict for "X" + std::string.)
std::string Str(const std::string& s) {
  std::string out(1, 'X');
  out.push_back(static_cast<char>(s.size()));
  out.append(3, '\0');
  return out.append(s);
}

// A protocol-2 tensor rebuild of storage `key` (FloatStorage, `numel` elements), as torch.save
// writes it.
std::string Tensor(const std::string& key, int numel) {
  return "ctorch._utils\n_rebuild_tensor_v2\n((" + Str("storage") + "ctorch\nFloatStorage\n" + Str(key) +
         Str("cpu") + "K" + std::string(1, static_cast<char>(numel)) + "tQK\x00K\x01\x85K\x01\x85\x89"s +
         "ccollections\nOrderedDict\n)RtR";
}

TEST(PickleReader, CollectsStoragesOfAStateDictWithoutRunningIt) {
  const std::string p = "\x80\x02}(" + Str("w") + Tensor("0", 6) + Str("b") + Tensor("1", 2) + "u.";
  const PickleSummary s = Summarize(p);
  ASSERT_EQ(s.status, PickleSummary::Status::kOk) << s.error;
  ASSERT_EQ(s.storages.size(), 2u);
  EXPECT_EQ(s.storages[0].key, "0");
  EXPECT_EQ(s.storages[0].type, "FloatStorage");
  EXPECT_EQ(s.storages[0].numel, 6u);
  EXPECT_TRUE(s.storages[0].weight);
  EXPECT_EQ(s.tensors, 2u);
  EXPECT_TRUE(s.foreign_globals.empty());
  EXPECT_EQ(s.end, p.size());
}

TEST(PickleReader, StoragesUnderCallbacksAndOptimizerStateAreNotWeights) {
  const std::string p = "\x80\x02}(" + Str("state_dict") + "}(" + Str("w") + Tensor("0", 4) + "u" +
                        Str("callbacks") + "}(" + Str("kth_value") + Tensor("1", 1) + "u" +
                        Str("optimizer_states") + "]" + Tensor("2", 4) + "a" + "u.";
  const PickleSummary s = Summarize(p);
  ASSERT_EQ(s.status, PickleSummary::Status::kOk) << s.error;
  ASSERT_EQ(s.storages.size(), 3u);
  EXPECT_TRUE(s.storages[0].weight);
  EXPECT_FALSE(s.storages[1].weight);
  EXPECT_FALSE(s.storages[2].weight);
}

TEST(PickleReader, NamesClassesBeyondTorchAndPython) {
  const PickleSummary s = Summarize("\x80\x02" "c__main__\nNet\n)\x81}b.");
  ASSERT_EQ(s.status, PickleSummary::Status::kOk) << s.error;
  EXPECT_EQ(s.foreign_globals, std::vector<std::string>{"__main__.Net"});
}

TEST(PickleReader, ACutPickleIsTruncatedAndGarbageMalformed) {
  const std::string p = "\x80\x02}(" + Str("w") + Tensor("0", 6) + "u.";
  for (std::size_t cut = 1; cut < p.size(); ++cut)
    EXPECT_EQ(Summarize(p.substr(0, cut)).status, PickleSummary::Status::kTruncated) << cut;
  EXPECT_EQ(Summarize("\x80\x02\xff.").status, PickleSummary::Status::kMalformed);
  EXPECT_EQ(Summarize("\x80\x02h\x05.").status, PickleSummary::Status::kMalformed);  // memo never stored
  EXPECT_EQ(Summarize("\x80\x02u.").status, PickleSummary::Status::kMalformed);      // no mark
  EXPECT_EQ(Summarize(".").status, PickleSummary::Status::kMalformed);               // empty stack
}

TEST(PickleReader, RecognisesTheLegacyMagicNumberInEveryProtocol) {
  EXPECT_TRUE(Summarize(std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15)).root_is_torch_magic);
  EXPECT_TRUE(Summarize("L119547037146038801333356L\n.").root_is_torch_magic);
  EXPECT_FALSE(Summarize("\x80\x02K\x05.").root_is_torch_magic);
  EXPECT_EQ(Summarize("\x80\x02M\xe9\x03.").root_int, 1001);
}

TEST(PickleReader, DeepNestingAndHugeCountsStayWithinTheMemoryLimit) {
  // A million nested lists: no recursion anywhere.
  std::string deep = "\x80\x02";
  for (int i = 0; i < 1'000'000; ++i) deep += "]";
  for (int i = 0; i < 999'999; ++i) deep += "a";
  deep += ".";
  EXPECT_EQ(Summarize(deep).status, PickleSummary::Status::kOk);
  // A memo that would grow past the limit: stopped, not allocated.
  std::string wide = "\x80\x02(";
  for (int i = 0; i < 3'000'000; ++i) wide += "]";
  wide += "l.";
  ReadAt over = [&wide](std::uint64_t offset, void* buf, std::size_t n) -> long {
    if (offset >= wide.size()) return 0;
    n = std::min<std::size_t>(n, wide.size() - offset);
    std::memcpy(buf, wide.data() + offset, n);
    return static_cast<long>(n);
  };
  PickleLimits limits;
  limits.memory_bytes = 16u << 20;
  EXPECT_EQ(ReadPickle(over, 0, wide.size(), limits).status, PickleSummary::Status::kTooLarge);
}

std::string StatusName(PickleSummary::Status status) {
  switch (status) {
    case PickleSummary::Status::kOk:
      return "ok";
    case PickleSummary::Status::kTruncated:
      return "truncated";
    case PickleSummary::Status::kMalformed:
      return "malformed";
    case PickleSummary::Status::kTooLarge:
      return "too_large";
  }
  return "?";
}

struct OpcodeCase {
  const char* what;
  std::string bytes;
  PickleSummary::Status status;
  const char* error;      // A part of the error, or "" when ok.
  std::int64_t root_int;  // The root when ok and a small integer, else -1.
};

// Each branch of the opcode reader that changes what a pickle is judged to be.
const OpcodeCase kOpcodes[] = {
    // PROTO and FRAME.
    {"protocol 2", "\x80\x02K\x07.", PickleSummary::Status::kOk, "", 7},
    {"protocol 5", "\x80\x05K\x07.", PickleSummary::Status::kOk, "", 7},
    {"protocol 6", "\x80\x06K\x07.", PickleSummary::Status::kMalformed, "has protocol 6", -1},
    {"frame", "\x80\x04\x95\x03\0\0\0\0\0\0\0K\x07."s, PickleSummary::Status::kOk, "", 7},
    {"frame cut", "\x80\x04\x95\x03\0\0"s, PickleSummary::Status::kTruncated, "ends at offset 6",
     -1},
    // Each memo put and get: PUT/GET text, BINPUT/BINGET, LONG_BINPUT/LONG_BINGET, MEMOIZE.
    {"PUT, GET", "K\x07p3\n0g3\n.", PickleSummary::Status::kOk, "", 7},
    {"BINPUT, BINGET",
     "K\x07q\x05"
     "0h\x05.",
     PickleSummary::Status::kOk, "", 7},
    {"LONG_BINPUT, LONG_BINGET",
     "K\x07r\0\x01\0\0"
     "0j\0\x01\0\0."s,
     PickleSummary::Status::kOk, "", 7},
    {"MEMOIZE numbers by entries stored",
     "\x80\x04K\x07q\x05K\x08\x94"
     "00h\x01.",
     PickleSummary::Status::kOk, "", 8},
    {"GET of nothing", "K\x07g4\n.", PickleSummary::Status::kMalformed,
     "reads memo entry 4, which was never stored", -1},
    {"BINGET of nothing", "K\x07h\x04.", PickleSummary::Status::kMalformed, "reads memo entry 4",
     -1},
    {"LONG_BINGET of nothing", "K\x07j\x04\0\0\0."s, PickleSummary::Status::kMalformed,
     "reads memo entry 4", -1},
    {"put on an empty stack", "q\x00."s, PickleSummary::Status::kMalformed, "reads an empty stack",
     -1},
    {"PUT not a number", "K\x07px\n.", PickleSummary::Status::kMalformed, "has a malformed PUT",
     -1},
    {"GET not a number", "K\x07g-1\n.", PickleSummary::Status::kMalformed, "has a malformed GET",
     -1},
    // A memo CPython cannot allocate (2 x index pointers): 16 x 2^26 bytes is 1 GiB, allowed.
    {"LONG_BINPUT 0x7fffffff", "K\x07r\xff\xff\xff\x7f.", PickleSummary::Status::kMalformed,
     "puts memo entry 2147483647, for which CPython's unpickler allocates and fills a memo of "
     "4294967294 pointers (32 GiB",
     -1},
    {"LONG_BINPUT 2^26", "K\x07r\0\0\0\x04."s, PickleSummary::Status::kOk, "", 7},
    {"LONG_BINPUT 2^26 + 1", "K\x07r\x01\0\0\x04."s, PickleSummary::Status::kMalformed,
     "puts memo entry 67108865", -1},
    {"PUT 10^17", "K\x07p100000000000000000\n.", PickleSummary::Status::kMalformed,
     "puts memo entry 100000000000000000", -1},
    // MARK: popped below, missing, nested.
    {"POP below MARK", "K\x01(0.", PickleSummary::Status::kMalformed, "pops an empty stack", -1},
    {"STOP below MARK", "K\x01(.", PickleSummary::Status::kMalformed, "pops an empty stack", -1},
    {"TUPLE1 below MARK", "K\x01(\x85.", PickleSummary::Status::kMalformed,
     "builds a tuple from an empty stack", -1},
    {"SETITEM below MARK", "}K\x01(K\x02s.", PickleSummary::Status::kMalformed,
     "pops an empty stack", -1},
    {"BINPUT below MARK", "K\x01(q\x00."s, PickleSummary::Status::kMalformed,
     "reads an empty stack", -1},
    {"DUP below MARK", "K\x01(2t.", PickleSummary::Status::kMalformed, "reads an empty stack", -1},
    {"APPEND below MARK", "]K\x01(a.", PickleSummary::Status::kMalformed, "pops an empty stack",
     -1},
    {"TUPLE without MARK", "K\x01t.", PickleSummary::Status::kMalformed, "has no MARK to pop to",
     -1},
    {"SETITEMS without MARK", "}K\x01K\x02u.", PickleSummary::Status::kMalformed,
     "has no MARK to pop to", -1},
    {"APPENDS without MARK",
     "]K\x01"
     "e.",
     PickleSummary::Status::kMalformed, "has no MARK to pop to", -1},
    {"POP_MARK without MARK",
     "K\x01"
     "1.",
     PickleSummary::Status::kMalformed, "has no MARK to pop to", -1},
    {"INST without MARK", "i__main__\nNet\n.", PickleSummary::Status::kMalformed,
     "has no MARK to pop to", -1},
    {"nested MARKs", "((K\x01tK\x02t0K\x03.", PickleSummary::Status::kOk, "", 3},
    {"POP_MARK drops to the MARK",
     "K\x05(K\x01K\x02"
     "1.",
     PickleSummary::Status::kOk, "", 5},
    {"unclosed MARK at STOP", "(K\x04.", PickleSummary::Status::kOk, "", 4},
    {"DICT of an odd count",
     "(K\x01"
     "d.",
     PickleSummary::Status::kMalformed, "builds a dict from an odd number of items", -1},
    {"SETITEMS of an odd count", "}(K\x01u.", PickleSummary::Status::kMalformed,
     "sets a dict item without a value", -1},
    {"OBJ without a class", "(o.", PickleSummary::Status::kMalformed,
     "builds an object without a class", -1},
    // Other refusals.
    {"STACK_GLOBAL of ints", "\x80\x04K\x01K\x02\x93.", PickleSummary::Status::kMalformed,
     "imports a global whose name is not a string", -1},
    {"unknown opcode", "K\x01\xff.", PickleSummary::Status::kMalformed,
     "has an unknown opcode 0xff at offset 2", -1},
    {"out-of-band buffer", "\x80\x05\x97.", PickleSummary::Status::kMalformed,
     "uses out-of-band buffers", -1},
    {"no STOP", "\x80\x02K\x01", PickleSummary::Status::kTruncated,
     "ends at offset 4 before its STOP opcode", -1},
};

TEST(PickleOpcodes, EachBranchGivesItsStatusAndError) {
  for (const OpcodeCase& c : kOpcodes) {
    const PickleSummary s = Summarize(c.bytes);
    EXPECT_EQ(StatusName(s.status), StatusName(c.status)) << c.what << ": " << s.error;
    EXPECT_NE(s.error.find(c.error), std::string::npos) << c.what << ": " << s.error;
    if (c.status == PickleSummary::Status::kOk) {
      EXPECT_EQ(s.root_int, c.root_int) << c.what;
    }
  }
}

TEST(PickleOpcodes, CPythonsMemoGrowthIsFollowedExactly) {
  // memo_bytes 1,600: CPython's memo may grow to 200 slots, so an index up to 100 is allowed.
  PickleLimits limits;
  limits.memo_bytes = 1600;
  const auto read = [&](const std::string& bytes) {
    return ReadPickle(testing::OverBytes(bytes), 0, bytes.size(), limits);
  };
  EXPECT_EQ(read("K\x07r\x64\0\0\0."s).status, PickleSummary::Status::kOk);
  EXPECT_EQ(read("K\x07r\x65\0\0\0."s).status, PickleSummary::Status::kMalformed);
  // Below the slots already there nothing grows: 31 fits CPython's first 32.
  limits.memo_bytes = 0;
  EXPECT_EQ(read("K\x07q\x1f.").status, PickleSummary::Status::kOk);
  EXPECT_EQ(read("K\x07q\x20.").status, PickleSummary::Status::kMalformed);
}

TEST(PickleOpcodes, TorchStateDictsAtEveryProtocolAsPythonsPicklerWritesThem) {
  for (int protocol = 0; protocol <= 5; ++protocol) {
    const PickleSummary s = Summarize(testing::StateDictPickle(protocol, "0", 3, false));
    ASSERT_EQ(s.status, PickleSummary::Status::kOk) << protocol << ": " << s.error;
    EXPECT_EQ(s.protocol, protocol < 2 ? 0 : protocol);
    EXPECT_EQ(s.tensors, 1u) << protocol;
    // Protocol 0 writes its persistent id as text, which names no storage (torch.load fails).
    ASSERT_EQ(s.storages.size(), protocol == 0 ? 0u : 1u) << protocol;
    EXPECT_EQ(s.text_persistent_ids, protocol == 0 ? 1u : 0u) << protocol;
    if (protocol == 0) continue;
    EXPECT_EQ(s.storages[0].key, "0");
    EXPECT_EQ(s.storages[0].numel, 3u);
    EXPECT_TRUE(s.storages[0].weight);
  }
}

}  // namespace
}  // namespace ckptwatch
