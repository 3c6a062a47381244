#include "pki/token_file.h"

#include <sys/stat.h>

namespace mk8s::pki {

Result<std::unique_ptr<TokenFile>> TokenFile::Open(std::string path,
                                                   std::chrono::milliseconds check_interval) {
  std::unique_ptr<TokenFile> file(new TokenFile());
  file->path_ = std::move(path);
  file->check_interval_ = check_interval;
  auto loaded = StaticTokens::Load(file->path_);
  if (!loaded.ok()) return loaded.status();
  file->tokens_ = std::make_shared<const StaticTokens>(std::move(*loaded));
  struct stat info {};
  if (stat(file->path_.c_str(), &info) == 0) {
    file->mtime_ns_ = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
    file->size_ = static_cast<int64_t>(info.st_size);
  }
  file->next_check_ = std::chrono::steady_clock::now() + check_interval;
  return file;
}

Status TokenFile::ReloadLocked() const {
  struct stat info {};
  if (stat(path_.c_str(), &info) != 0) {
    last_error_ = path_ + ": cannot stat; keeping the tokens loaded before";
    return Status(Code::kNotFound, last_error_);
  }
  const int64_t mtime =
      static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  const int64_t size = static_cast<int64_t>(info.st_size);
  if (mtime == mtime_ns_ && size == size_) return Status::Ok();
  auto loaded = StaticTokens::Load(path_);
  if (!loaded.ok()) {
    last_error_ = loaded.status().message() + "; keeping the tokens loaded before";
    mtime_ns_ = mtime;  // reported once per change
    size_ = size;
    return Status(loaded.status().code(), last_error_);
  }
  tokens_ = std::make_shared<const StaticTokens>(std::move(*loaded));
  mtime_ns_ = mtime;
  size_ = size;
  last_error_.clear();
  return Status::Ok();
}

Status TokenFile::Reload() const {
  std::lock_guard<std::mutex> lock(mu_);
  next_check_ = std::chrono::steady_clock::now() + check_interval_;
  return ReloadLocked();
}

std::string TokenFile::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

std::optional<UserInfo> TokenFile::Lookup(std::string_view token) const {
  std::shared_ptr<const StaticTokens> tokens;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_check_) {
      next_check_ = now + check_interval_;
      (void)ReloadLocked();
    }
    tokens = tokens_;
  }
  if (auto found = tokens->Lookup(token)) return found;
  // A miss (rare: a rejected request) checks the file at once, so a token just added works.
  std::lock_guard<std::mutex> lock(mu_);
  (void)ReloadLocked();
  return tokens_->Lookup(token);
}

}  // namespace mk8s::pki
