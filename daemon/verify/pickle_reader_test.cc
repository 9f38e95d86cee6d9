#include "pickle_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace ckptwatch {
namespace {

using namespace std::string_literals;

PickleSummary Read(const std::string& bytes) {
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
  const PickleSummary s = Read(p);
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
  const PickleSummary s = Read(p);
  ASSERT_EQ(s.status, PickleSummary::Status::kOk) << s.error;
  ASSERT_EQ(s.storages.size(), 3u);
  EXPECT_TRUE(s.storages[0].weight);
  EXPECT_FALSE(s.storages[1].weight);
  EXPECT_FALSE(s.storages[2].weight);
}

TEST(PickleReader, NamesClassesBeyondTorchAndPython) {
  const PickleSummary s = Read("\x80\x02" "c__main__\nNet\n)\x81}b.");
  ASSERT_EQ(s.status, PickleSummary::Status::kOk) << s.error;
  EXPECT_EQ(s.foreign_globals, std::vector<std::string>{"__main__.Net"});
}

TEST(PickleReader, ACutPickleIsTruncatedAndGarbageMalformed) {
  const std::string p = "\x80\x02}(" + Str("w") + Tensor("0", 6) + "u.";
  for (std::size_t cut = 1; cut < p.size(); ++cut)
    EXPECT_EQ(Read(p.substr(0, cut)).status, PickleSummary::Status::kTruncated) << cut;
  EXPECT_EQ(Read("\x80\x02\xff.").status, PickleSummary::Status::kMalformed);
  EXPECT_EQ(Read("\x80\x02h\x05.").status, PickleSummary::Status::kMalformed);  // memo never stored
  EXPECT_EQ(Read("\x80\x02u.").status, PickleSummary::Status::kMalformed);      // no mark
  EXPECT_EQ(Read(".").status, PickleSummary::Status::kMalformed);               // empty stack
}

TEST(PickleReader, RecognisesTheLegacyMagicNumberInEveryProtocol) {
  EXPECT_TRUE(Read(std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15)).root_is_torch_magic);
  EXPECT_TRUE(Read("L119547037146038801333356L\n.").root_is_torch_magic);
  EXPECT_FALSE(Read("\x80\x02K\x05.").root_is_torch_magic);
  EXPECT_EQ(Read("\x80\x02M\xe9\x03.").root_int, 1001);
}

TEST(PickleReader, DeepNestingAndHugeCountsStayWithinTheMemoryLimit) {
  // A million nested lists: no recursion anywhere.
  std::string deep = "\x80\x02";
  for (int i = 0; i < 1'000'000; ++i) deep += "]";
  for (int i = 0; i < 999'999; ++i) deep += "a";
  deep += ".";
  EXPECT_EQ(Read(deep).status, PickleSummary::Status::kOk);
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

}  // namespace
}  // namespace ckptwatch
