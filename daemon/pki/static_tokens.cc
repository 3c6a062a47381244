// Token file parsing and constant-time lookup.
#include "pki/static_tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "pki/file_util.h"

namespace mk8s::pki {
namespace {

std::string Sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) return {};
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// Splits one CSV record (no newline inside quotes: a token file has none). Leading blanks of a
// field are skipped, as Go's csv.Reader with TrimLeadingSpace does.
Result<std::vector<std::string>> SplitRecord(std::string_view line) {
  std::vector<std::string> fields;
  size_t i = 0;
  while (true) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::string field;
    if (i < line.size() && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        field += line[i++];
      }
      if (!closed) return Status(Code::kInvalidArgument, "unterminated quoted field");
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      if (i < line.size() && line[i] != ',')
        return Status(Code::kInvalidArgument, "unexpected text after a quoted field");
    } else {
      size_t end = line.find(',', i);
      if (end == std::string_view::npos) end = line.size();
      std::string_view raw = line.substr(i, end - i);
      if (raw.find('"') != std::string_view::npos)
        return Status(Code::kInvalidArgument, "bare quote in an unquoted field");
      field = Trim(raw);
      i = end;
    }
    fields.push_back(std::move(field));
    if (i >= line.size()) break;
    ++i;  // the comma
  }
  return fields;
}

bool NeedsQuotes(const std::string& s) {
  return s.empty() || s.find_first_of(",\" \t") != std::string::npos;
}

std::string CsvField(const std::string& s) {
  if (!NeedsQuotes(s)) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<StaticTokens> StaticTokens::Parse(std::string_view csv) {
  StaticTokens out;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < csv.size()) {
    size_t nl = csv.find('\n', pos);
    if (nl == std::string_view::npos) nl = csv.size();
    std::string_view line = csv.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string trimmed = Trim(line);
    if (trimmed.empty() || trimmed[0] == '#') continue;
    auto where = [&](const std::string& msg) {
      return Status(Code::kInvalidArgument, "token file line " + std::to_string(line_no) + ": " +
                                                msg + " (expected token,user,uid,\"g1,g2\")");
    };
    auto fields = SplitRecord(line);
    if (!fields.ok()) return where(fields.status().message());
    if (fields->size() < 3) return where("needs at least 3 fields");
    StaticToken entry;
    entry.token = (*fields)[0];
    entry.user = (*fields)[1];
    entry.uid = (*fields)[2];
    if (entry.token.empty()) return where("the token is empty");
    if (entry.user.empty()) return where("the user is empty");
    if (fields->size() >= 4) {
      std::string_view groups = (*fields)[3];
      size_t gpos = 0;
      while (gpos <= groups.size()) {
        size_t comma = groups.find(',', gpos);
        if (comma == std::string_view::npos) comma = groups.size();
        std::string group = Trim(groups.substr(gpos, comma - gpos));
        if (!group.empty()) entry.groups.push_back(std::move(group));
        gpos = comma + 1;
      }
    }
    std::string digest = Sha256(entry.token);
    if (digest.empty()) return Status(Code::kInternal, "SHA-256 failed");
    bool replaced = false;
    for (size_t k = 0; k < out.digests_.size(); ++k) {
      if (out.digests_[k] == digest) {  // a later duplicate wins, as in Kubernetes
        out.entries_[k] = entry;
        replaced = true;
      }
    }
    if (!replaced) {
      out.entries_.push_back(std::move(entry));
      out.digests_.push_back(std::move(digest));
    }
  }
  return out;
}

Result<StaticTokens> StaticTokens::Load(const std::string& path) {
  auto data = internal::ReadFile(path);
  if (!data.ok()) return data.status();
  auto parsed = Parse(*data);
  if (!parsed.ok()) return Status(parsed.status().code(), path + ": " + parsed.status().message());
  return parsed;
}

std::optional<UserInfo> StaticTokens::Lookup(std::string_view token) const {
  if (token.empty()) return std::nullopt;
  // Compare fixed-length digests so neither the content nor the length of a stored token leaks.
  const std::string digest = Sha256(token);
  if (digest.empty()) return std::nullopt;
  const StaticToken* found = nullptr;
  for (size_t k = 0; k < digests_.size(); ++k) {
    bool eq = CRYPTO_memcmp(digests_[k].data(), digest.data(), digest.size()) == 0;
    if (eq) found = &entries_[k];
  }
  if (!found) return std::nullopt;
  UserInfo info;
  info.user = found->user;
  info.uid = found->uid;
  info.groups = found->groups;
  return info;
}

std::string StaticTokens::FormatLine(const StaticToken& entry) {
  std::string groups;
  for (size_t i = 0; i < entry.groups.size(); ++i) {
    if (i) groups += ',';
    groups += entry.groups[i];
  }
  std::string line = CsvField(entry.token) + "," + CsvField(entry.user) + "," + CsvField(entry.uid);
  if (!entry.groups.empty()) {
    line += ",\"";
    for (char c : groups) line += c == '"' ? std::string("\"\"") : std::string(1, c);
    line += "\"";
  }
  return line + "\n";
}

}  // namespace mk8s::pki
