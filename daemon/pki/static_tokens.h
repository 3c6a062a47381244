// Static bearer tokens from a MicroK8s/Kubernetes token file (known_tokens.csv):
//   token,user,uid,"group1,group2"
// The group column is optional; fields may be quoted (RFC 4180, "" escapes a quote). Blank lines
// and lines starting with '#' are skipped. A later duplicate token replaces an earlier one, as in
// Kubernetes.
//
// StaticTokens is immutable after Parse()/Load(); Lookup() is thread-safe and compares in
// constant time with respect to the token contents.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "pki/user_info.h"

namespace mk8s::pki {

struct StaticToken {
  std::string token;
  std::string user;
  std::string uid;
  std::vector<std::string> groups;
};

class StaticTokens {
 public:
  StaticTokens() = default;
  // kInvalidArgument names the line that is wrong.
  static Result<StaticTokens> Parse(std::string_view csv);
  static Result<StaticTokens> Load(const std::string& path);

  // nullopt if no entry matches. Every entry is compared (no early exit).
  std::optional<UserInfo> Lookup(std::string_view token) const;
  const std::vector<StaticToken>& entries() const { return entries_; }

  // One CSV line (with '\n') for `entry`; fields are quoted when needed.
  static std::string FormatLine(const StaticToken& entry);

 private:
  std::vector<StaticToken> entries_;
  std::vector<std::string> digests_;  // SHA-256 of entries_[i].token
};

}  // namespace mk8s::pki
