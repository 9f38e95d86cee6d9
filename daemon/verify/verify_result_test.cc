#include "verify/verify_result.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/text_escape.h"

namespace ckptwatch {
namespace {

VerifyResult Hostile() {
  VerifyResult r;
  r.path = "/ckpt/ckpt_\xff\xfe.h5";
  r.verdict = Verdict::kOk;
  r.reason = "HDF5 superblock v0, Keras \xc3\x28 weights";
  r.format = "hdf5";
  r.keras.kind = "full_model";
  r.keras.version = "2.\xff";
  r.keras.backend = "tensor\x80";
  r.keras.custom_classes = {"Garnet\xfe", "Layer\u202e"};
  return r;
}

TEST(VerifyResult, InvalidUtf8DumpsWithoutThrowing) {
  std::string line;
  ASSERT_NO_THROW(line = ToJson(Hostile()).dump());
  EXPECT_TRUE(IsValidUtf8(line));
  EXPECT_NE(line.find(R"("path":"/ckpt/ckpt_\\xff\\xfe.h5")"), std::string::npos) << line;
}

TEST(VerifyResult, FromJsonAcceptsWhatToJsonWrites) {
  const VerifyResult in = Hostile();
  VerifyResult out;
  std::string err;
  ASSERT_TRUE(FromJson(nlohmann::json::parse(ToJson(in).dump()), &out, &err)) << err;
  EXPECT_EQ(out.path, in.path);
  EXPECT_EQ(out.reason, in.reason);
  EXPECT_EQ(out.keras.version, in.keras.version);
  EXPECT_EQ(out.keras.backend, in.keras.backend);
  EXPECT_EQ(out.keras.custom_classes, in.keras.custom_classes);
  EXPECT_TRUE(out.ok());
}

TEST(VerifyResult, DistinctPathsPrintDistinctly) {
  VerifyResult a = Hostile(), b = Hostile();
  a.path = "ckpt_\xff.h5";
  b.path = R"(ckpt_\xff.h5)";
  EXPECT_NE(ToJson(a)["path"], ToJson(b)["path"]);
  EXPECT_NE(FormatTextLine(a), FormatTextLine(b));
}

TEST(VerifyResult, TextLineHasNoControlOrBidiCharacters) {
  VerifyResult r = Hostile();
  r.path = "evil_\u202egpj.h5\n/x: ok";
  r.reason = "\x1b]0;owned\x07";
  const std::string line = FormatTextLine(r);
  EXPECT_EQ(line, R"(evil_\u202egpj.h5\n/x: ok: ok: \u001b]0;owned\u0007)");
}

TEST(VerifyResult, LongReasonIsCutOnACharacterBoundaryWithAMarker) {
  VerifyResult r = Hostile();
  r.reason = std::string(4095, 'a') + "☃☃";
  BoundResult(&r);
  EXPECT_LE(r.reason.size(), kMaxReasonBytes);
  EXPECT_TRUE(IsValidUtf8(r.reason));
  EXPECT_NE(r.reason.find("\u2026 [4101 bytes]"), std::string::npos) << r.reason.substr(4000);
}

TEST(VerifyResult, ClassListIsCappedWithACount) {
  VerifyResult r = Hostile();
  r.keras.custom_classes.clear();
  for (int i = 0; i < 5000; ++i) r.keras.custom_classes.push_back("Custom" + std::to_string(i));
  r.keras.custom_classes.push_back(std::string(1000, 'L'));
  BoundResult(&r);
  ASSERT_EQ(r.keras.custom_classes.size(), kMaxCustomClasses);
  EXPECT_EQ(r.keras.custom_classes.back(), "\u2026 and 4902 more");
  const VerifyResult once = r;
  BoundResult(&r);
  EXPECT_EQ(r.keras.custom_classes, once.keras.custom_classes) << "not idempotent";
}

TEST(VerifyResult, EveryNameIsCapped) {
  VerifyResult r = Hostile();
  r.keras.custom_classes = {std::string(3 << 20, 'C')};
  r.keras.version = std::string(1000, 'v');
  BoundResult(&r);
  ASSERT_EQ(r.keras.custom_classes.size(), 1u);
  EXPECT_LE(r.keras.custom_classes[0].size(), kMaxNameBytes);
  EXPECT_LE(r.keras.version.size(), kMaxNameBytes);
}

TEST(VerifyResult, WorstCaseLineStaysUnder64KiB) {
  // Every byte a control character (six bytes as \u00XX) or invalid (four as \xNN).
  VerifyResult r = Hostile();
  r.path = std::string(100000, '\x01');
  r.reason = std::string(100000, '\xff');
  r.keras.version = r.keras.backend = r.keras.kind = std::string(1000, '\x02');
  r.keras.custom_classes.assign(3000, std::string(300, '\x03'));
  const std::string line = ToJson(r).dump();
  EXPECT_LE(line.size(), kMaxJsonBytes);
  VerifyResult back;
  std::string err;
  ASSERT_TRUE(FromJson(nlohmann::json::parse(line), &back, &err)) << err;
  EXPECT_LE(ToJson(back).dump().size(), kMaxJsonBytes);
  EXPECT_EQ(back.keras.custom_classes.back().rfind("\u2026 and ", 0), 0u);
}

TEST(VerifyResult, FromJsonBoundsAnUnboundedChild) {
  nlohmann::json j = ToJson(Hostile());
  j["reason"] = std::string(1 << 20, 'r');
  VerifyResult r;
  std::string err;
  ASSERT_TRUE(FromJson(j, &r, &err)) << err;
  EXPECT_LE(r.reason.size(), kMaxReasonBytes);
}

}  // namespace
}  // namespace ckptwatch
