// libFuzzer target: escaping of hostile bytes (daemon/base/text_escape.h, daemon/verify/verify_result.h).
//
// The input is split in two byte strings a and b. For each escape (EscapeBytes for JSON,
// EscapeForDisplay for logs and terminals): the output is valid UTF-8 with no C0/C1 control,
// bidi control or line/paragraph separator (EscapeBytes keeps the printable ones, but none of
// the line-breaking ones may come from an invalid byte), and a != b gives distinct outputs.
// UnescapeBytes(EscapeBytes(a)) == a. A VerifyResult made of the input dumps with nlohmann's
// strict handler to at most kMaxJsonBytes, DumpJsonLine() of it has no raw unsafe code point,
// and FromJson() reads it back.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/text_escape.h"
#include "report/logfmt.h"
#include "verify/verify_result.h"

namespace {

[[noreturn]] void Fail(const char* what, std::string_view input, std::string_view output) {
  std::fprintf(stderr,
               "text_escape_fuzz: %s\n--- input (%zu bytes) ---\n%.*s\n--- output ---\n%.*s\n",
               what, input.size(), static_cast<int>(input.size()), input.data(),
               static_cast<int>(output.size()), output.data());
  std::abort();
}

// Valid UTF-8 and, when `strict`, no unsafe code point; EscapeBytes() output may only carry
// the unsafe code points its input had (it escapes bytes, not characters).
void CheckOutput(const char* what, std::string_view input, const std::string& out, bool strict) {
  char32_t cp;
  for (std::size_t i = 0; i < out.size();) {
    const std::size_t len = ckptwatch::DecodeUtf8(out, i, &cp);
    if (len == 0) Fail(what, input, out);
    if (strict && ckptwatch::IsUnsafeCodePoint(cp)) Fail(what, input, out);
    i += len;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  const std::string a(input.substr(0, cut)), b(input.substr(cut));

  for (const std::string* s : {&a, &b}) {
    const std::string bytes = ckptwatch::EscapeBytes(*s);
    CheckOutput("EscapeBytes() output is not valid UTF-8", *s, bytes, false);
    if (ckptwatch::UnescapeBytes(bytes) != *s) Fail("UnescapeBytes() does not invert", *s, bytes);
    for (bool quotes : {false, true}) {
      const std::string display = ckptwatch::EscapeForDisplay(*s, quotes);
      CheckOutput("EscapeForDisplay() output is unsafe", *s, display, true);
    }
  }
  if (a != b) {
    if (ckptwatch::EscapeBytes(a) == ckptwatch::EscapeBytes(b))
      Fail("EscapeBytes() maps two inputs to one output", input, ckptwatch::EscapeBytes(a));
    if (ckptwatch::EscapeForDisplay(a, true) == ckptwatch::EscapeForDisplay(b, true))
      Fail("EscapeForDisplay() maps two inputs to one output", input,
           ckptwatch::EscapeForDisplay(a, true));
  }

  ckptwatch::VerifyResult result;
  result.path = a;
  result.reason = b;
  result.keras.kind = "full_model";
  result.keras.version = b;
  for (std::size_t i = 0; i < a.size(); i += 7) result.keras.custom_classes.push_back(a.substr(i));
  std::string line;
  try {
    line = ckptwatch::ToJson(result).dump();
  } catch (const nlohmann::json::exception& e) {
    Fail("ToJson() does not dump", input, e.what());
  }
  if (line.size() > ckptwatch::kMaxJsonBytes) Fail("ToJson() line is too long", input, line);
  CheckOutput("DumpJsonLine() has a raw unsafe code point", input,
              ckptwatch::DumpJsonLine(ckptwatch::ToJson(result)), true);
  ckptwatch::VerifyResult back;
  std::string err;
  if (!ckptwatch::FromJson(nlohmann::json::parse(line), &back, &err))
    Fail("FromJson() refuses ToJson()", input, err);
  if (a.size() <= ckptwatch::kMaxPathBytes && back.path != a)
    Fail("the path does not round-trip", input, line);
  return 0;
}
