// RFC 3339 timestamps as Kubernetes writes them (metav1.Time: whole seconds, UTC, "Z").
// Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mk8s {

// "2026-11-27T03:04:05Z".
std::string FormatRfc3339(std::chrono::system_clock::time_point time);
std::string NowRfc3339();
// metav1.MicroTime: "2026-11-27T03:04:05.123456Z".
std::string FormatRfc3339Micro(std::chrono::system_clock::time_point time);
std::string NowRfc3339Micro();
// Accepts "YYYY-MM-DDTHH:MM:SS" followed by optional fractional seconds and "Z" or a
// "+HH:MM"/"-HH:MM" offset. nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view text);

}  // namespace mk8s
