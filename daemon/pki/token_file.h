// TokenFile: the static token file (known_tokens.csv) re-read when it changes, so a token added
// while the API server runs (e.g. a new node's credential) is accepted without a restart.
//
// Lookup() checks the file's modification time and size at most once per `check_interval`, and
// on every miss (so a token just added is accepted at once); a changed file is parsed and
// replaces the tokens. A file that fails to parse or is missing keeps the last good set (the
// error is returned by Reload() and kept in last_error()).
// Thread-safe: one mutex guards the snapshot pointer; lookups run on a snapshot.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "pki/static_tokens.h"

namespace mk8s::pki {

class TokenFile {
 public:
  // Loads `path` now; an error if it cannot be read or parsed.
  static Result<std::unique_ptr<TokenFile>> Open(
      std::string path, std::chrono::milliseconds check_interval = std::chrono::seconds(1));

  std::optional<UserInfo> Lookup(std::string_view token) const;
  // Re-reads the file if its mtime or size changed (regardless of the interval).
  Status Reload() const;
  std::string last_error() const;

 private:
  TokenFile() = default;
  Status ReloadLocked() const;  // mu_ held

  std::string path_;
  std::chrono::milliseconds check_interval_{1000};
  mutable std::mutex mu_;
  mutable std::shared_ptr<const StaticTokens> tokens_;
  mutable std::chrono::steady_clock::time_point next_check_;
  mutable int64_t mtime_ns_ = -1;
  mutable int64_t size_ = -1;
  mutable std::string last_error_;
};

}  // namespace mk8s::pki
