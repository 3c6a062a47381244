// Part of the header-only C++ wrapper (addon.hpp includes it): the exception type that carries an
// ABI status, and the helper that fills a host-owned message buffer.
#pragma once

#include <mk8s/abi.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mk8s::sdk {

// An error with an ABI status code; what() is the one-line message the user sees.
class Error : public std::runtime_error {
 public:
  Error(mk8s_status_t code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  explicit Error(const std::string& message) : Error(MK8S_ERR_INTERNAL, message) {}
  mk8s_status_t code() const noexcept { return code_; }

 private:
  mk8s_status_t code_;
};

// Copies `text` into a host-owned message buffer (truncating, always NUL-terminated).
inline void SetMessage(mk8s_message_out* out, std::string_view text) noexcept {
  if (out == nullptr || out->data == nullptr || out->capacity == 0) return;
  const size_t n = text.size() < out->capacity - 1 ? text.size() : out->capacity - 1;
  if (n > 0) std::memcpy(out->data, text.data(), n);
  out->data[n] = '\0';
  out->len = n;
}

}  // namespace mk8s::sdk
