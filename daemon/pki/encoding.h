// Base64 (RFC 4648 section 4) and base64url without padding (section 5, as JWTs use), plus hex.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mk8s::pki {

std::string Base64Encode(std::string_view bytes);  // with '=' padding
// Accepts padded input only (length a multiple of 4); whitespace is rejected. nullopt if invalid.
std::optional<std::string> Base64Decode(std::string_view text);

std::string Base64UrlEncode(std::string_view bytes);  // '-', '_', no padding
// Strict: rejects '=', characters outside the alphabet and non-canonical trailing bits.
std::optional<std::string> Base64UrlDecode(std::string_view text);

std::string HexEncode(std::string_view bytes);  // lower case

// Cryptographically secure random bytes (OpenSSL's RAND_bytes). Empty string on failure.
std::string RandomBytes(size_t n);

}  // namespace mk8s::pki
