// INTERNAL to daemon/pki: small POSIX file helpers for the credentials folder.
// Thread-safe as far as the file system is (callers serialize writes to one path).
#pragma once

#include <sys/types.h>
#include <string>

#include "common/status.h"

namespace mk8s::pki::internal {

// Creates `dir` (and parents) if missing, then forces its mode to `mode`.
Status EnsureDir(const std::string& dir, mode_t mode);
// Writes `data` to `path` atomically: temp file in the same folder with `mode`, write, fsync,
// rename over `path`, fsync the folder. Readers see either the old or the new content.
Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode);
// kNotFound if the file does not exist.
Result<std::string> ReadFile(const std::string& path);
bool FileExists(const std::string& path);

}  // namespace mk8s::pki::internal
