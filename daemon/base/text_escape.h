// Bytes from the outside world (file names, HDF5/Keras attribute strings) made safe
// to put into JSON, a log line or a terminal, without two different inputs ever
// printing the same.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ckptwatch {

/// Length (1–4) of the well-formed UTF-8 sequence at `s[i]`, with its code point in `*cp`;
/// 0 when none starts there (stray continuation, overlong form, surrogate, past U+10FFFF,
/// cut short).
std::size_t DecodeUtf8(std::string_view s, std::size_t i, char32_t* cp);

/// True when every byte of `s` belongs to a well-formed UTF-8 sequence.
bool IsValidUtf8(std::string_view s);

/// True for code points that let text forge or visually reorder a line: C0 controls, DEL, C1
/// controls (U+0085 included), the bidi marks, embeddings, overrides and isolates
/// (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), U+2028 and U+2029.
bool IsUnsafeCodePoint(char32_t cp);

/// `bytes` as valid UTF-8 for JSON: a byte that is not part of well-formed UTF-8 becomes the
/// four characters `\xNN` (lowercase hex), and a backslash that would otherwise read as such
/// an escape becomes `\x5c`; everything else is unchanged. UnescapeBytes() inverts it, so
/// distinct inputs give distinct outputs.
std::string EscapeBytes(std::string_view bytes);

/// The bytes EscapeBytes() was given: every `\xNN` (lowercase hex) becomes byte NN.
std::string UnescapeBytes(std::string_view text);

/// `bytes` for a terminal or a log line: `\\`, `\n`, `\r`, `\t`, `\u00XX` for the other C0
/// controls and DEL, `\uXXXX` for the other unsafe code points, `\xNN` for bytes that are not
/// well-formed UTF-8, and `\"` when `escape_quotes`. Injective; the output is valid UTF-8 with
/// no unsafe code point.
std::string EscapeForDisplay(std::string_view bytes, bool escape_quotes);

/// The longest prefix of `s` of at most `max_bytes` bytes that does not split a well-formed
/// UTF-8 sequence.
std::string_view Utf8Prefix(std::string_view s, std::size_t max_bytes);

/// The longest suffix of `s` of at most `max_bytes` bytes that does not start inside a
/// well-formed UTF-8 sequence.
std::string_view Utf8Suffix(std::string_view s, std::size_t max_bytes);

}  // namespace ckptwatch
