// Internal helpers of the protobuf decoder: JSON forms of the special meta types and base64.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mk8s::api::internal {

// RFC 3339 UTC time; micro=true adds 6 fractional digits ("2024-05-01T10:00:00.000123Z").
// Returns false if the seconds are outside years 0001..9999.
bool FormatRfc3339(int64_t seconds, int32_t nanos, bool micro, std::string* out);
// Go's time.Duration.String(): "0s", "1.5s", "5m0s", "1h0m0s", "300ms", "-2µs".
std::string FormatGoDuration(int64_t nanos);
// Standard base64 with padding.
std::string Base64Encode(std::string_view bytes);

}  // namespace mk8s::api::internal
