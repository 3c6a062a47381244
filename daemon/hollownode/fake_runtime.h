// The hollow nodes' fake runtime knobs, for tests and benchmarks that need pods to finish (Jobs):
// a pod annotated
//   hollow.mk8s.io/exit-code: "<n>"   its containers exit with n ...
//   hollow.mk8s.io/run-ms: "<ms>"     ... this long after they start (default 0)
// A pod without the exit-code annotation runs until deleted. On exit, restartPolicy decides as a
// kubelet would: Never -> Succeeded (n = 0) or Failed; OnFailure -> Succeeded (n = 0) or the
// containers restart (restartCount + 1) and run again; Always -> they always restart.
// Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace mk8s::hollownode {

inline constexpr const char* kExitCodeAnnotation = "hollow.mk8s.io/exit-code";
inline constexpr const char* kRunMsAnnotation = "hollow.mk8s.io/run-ms";

// How long the pod's containers run before they exit; nullopt = until deleted (or a malformed
// annotation).
std::optional<std::chrono::milliseconds> PlannedRunTime(const nlohmann::json& pod);

// The status of a Running pod whose containers just exited at `now` (RFC 3339): terminal, or
// Running again with the restart counted. `*restarted` tells which.
nlohmann::json ExitedStatus(const nlohmann::json& pod, const std::string& now, bool* restarted);

}  // namespace mk8s::hollownode
