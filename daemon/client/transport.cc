#include "client/transport.h"

namespace mk8s::client {

void LineSplitter::Feed(std::string_view data, const std::function<void(std::string)>& emit) {
  while (!data.empty()) {
    const size_t newline = data.find('\n');
    if (newline == std::string_view::npos) {
      partial_.append(data);
      return;
    }
    partial_.append(data.substr(0, newline));
    data.remove_prefix(newline + 1);
    std::string line = std::move(partial_);
    partial_.clear();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) emit(std::move(line));
  }
}

std::string QueryEscape(std::string_view value) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace mk8s::client
