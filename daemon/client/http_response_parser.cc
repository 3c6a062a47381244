#include "client/http_response_parser.h"

#include <algorithm>
#include <cstring>

namespace mk8s::client {
namespace {

constexpr size_t kMaxHeadBytes = 64 * 1024;
constexpr size_t kMaxLineBytes = 4096;  // a chunk-size line or one trailer

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsLower(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (Lower(text[i]) != lower[i]) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls `token` for each comma-separated, trimmed, non-empty element of a header value.
template <typename F>
void ForEachToken(std::string_view value, F token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view item = Trim(value.substr(0, comma));
    if (!item.empty()) token(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool ParseDecimal(std::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = value;
  return true;
}

}  // namespace

void HttpResponseParser::Reset(uint64_t max_body, bool head_request) {
  max_body_ = max_body;
  head_request_ = head_request;
  state_ = State::kHead;
  framing_ = Framing::kNone;
  started_ = false;
  head_.clear();
  line_.clear();
  status_ = 0;
  content_type_.clear();
  keep_alive_ = true;
  remaining_ = 0;
  body_total_ = 0;
  body_.clear();
  error_.clear();
}

size_t HttpResponseParser::Fail(std::string message) {
  state_ = State::kError;
  error_ = std::move(message);
  keep_alive_ = false;
  return 0;
}

bool HttpResponseParser::AppendBody(std::string_view data) {
  body_total_ += data.size();
  if (body_total_ > max_body_) {
    Fail("the response body exceeds " + std::to_string(max_body_) + " bytes");
    return false;
  }
  body_.append(data);
  return true;
}

size_t HttpResponseParser::TakeLine(std::string_view data, size_t limit, bool* complete) {
  const size_t newline = data.find('\n');
  const size_t take = newline == std::string_view::npos ? data.size() : newline + 1;
  if (line_.size() + take > limit) {
    *complete = false;
    return Fail("an HTTP chunk line is too long");
  }
  line_.append(data.substr(0, take));
  *complete = newline != std::string_view::npos;
  if (*complete) {
    line_.pop_back();  // '\n'
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  }
  return take;
}

size_t HttpResponseParser::Feed(std::string_view data) {
  size_t used = 0;
  if (!data.empty()) started_ = true;
  while (used < data.size() && state_ != State::kDone && state_ != State::kError) {
    std::string_view rest = data.substr(used);
    switch (state_) {
      case State::kHead: used += FeedHead(rest); break;
      case State::kBody: {
        if (framing_ == Framing::kUntilClose) {
          if (!AppendBody(rest)) return used;
          used += rest.size();
          break;
        }
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        if (!AppendBody(rest.substr(0, take))) return used;
        used += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kDone;
        break;
      }
      case State::kChunkSize: {
        bool complete = false;
        used += TakeLine(rest, kMaxLineBytes, &complete);
        if (!complete) break;
        std::string_view size_text = line_;
        size_text = Trim(size_text.substr(0, size_text.find(';')));  // chunk extensions ignored
        if (size_text.empty() || size_text.size() > 15) return Fail("bad HTTP chunk size");
        uint64_t size = 0;
        for (char c : size_text) {
          int digit = -1;
          if (c >= '0' && c <= '9') digit = c - '0';
          else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
          else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
          if (digit < 0) return Fail("bad HTTP chunk size");
          size = size * 16 + static_cast<uint64_t>(digit);
        }
        line_.clear();
        if (size == 0) {
          state_ = State::kTrailers;
        } else {
          if (body_total_ + size > max_body_) {
            return Fail("the response body exceeds " + std::to_string(max_body_) + " bytes");
          }
          remaining_ = size;
          state_ = State::kChunkData;
        }
        break;
      }
      case State::kChunkData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        if (!AppendBody(rest.substr(0, take))) return used;
        used += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kChunkDataEnd;
        break;
      }
      case State::kChunkDataEnd: {
        bool complete = false;
        used += TakeLine(rest, 2, &complete);
        if (state_ == State::kError) return used;
        if (!complete) break;
        if (!line_.empty()) return Fail("an HTTP chunk is longer than its size");
        state_ = State::kChunkSize;
        break;
      }
      case State::kTrailers: {
        bool complete = false;
        used += TakeLine(rest, kMaxLineBytes, &complete);
        if (!complete) break;
        if (line_.empty()) state_ = State::kDone;  // the blank line after the trailers
        line_.clear();
        break;
      }
      case State::kDone:
      case State::kError: break;
    }
  }
  return used;
}

size_t HttpResponseParser::FeedHead(std::string_view data) {
  // Fast path: the whole head is in this piece (the common case), parsed without a copy.
  if (head_.empty()) {
    const size_t end = data.find("\r\n\r\n");
    if (end != std::string_view::npos) {
      if (end > kMaxHeadBytes) return Fail("the HTTP response head is too large");
      if (!ParseHead(data.substr(0, end))) return 0;
      return end + 4;
    }
    if (data.size() > kMaxHeadBytes) return Fail("the HTTP response head is too large");
    head_.assign(data);
    return data.size();
  }
  const size_t old_size = head_.size();
  const size_t search_from = old_size >= 3 ? old_size - 3 : 0;
  head_.append(data.substr(0, std::min(data.size(), kMaxHeadBytes + 4)));
  const size_t end = head_.find("\r\n\r\n", search_from);
  if (end == std::string::npos) {
    if (head_.size() > kMaxHeadBytes) return Fail("the HTTP response head is too large");
    return data.size();
  }
  const size_t used = end + 4 - old_size;
  std::string head = std::move(head_);
  head_.clear();
  head.resize(end);
  if (!ParseHead(head)) return 0;
  return used;
}

bool HttpResponseParser::ParseHead(std::string_view head) {
  // Status line: HTTP/1.x SP 3DIGIT [SP reason]
  const size_t line_end = std::min(head.find("\r\n"), head.size());
  std::string_view status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ') {
    Fail("not an HTTP/1.x response");
    return false;
  }
  const bool http10 = status_line[7] == '0';
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (status_line[i] < '0' || status_line[i] > '9') {
      Fail("bad HTTP status code");
      return false;
    }
    status = status * 10 + (status_line[i] - '0');
  }
  if (status < 100 || (status_line.size() > 12 && status_line[12] != ' ')) {
    Fail("bad HTTP status code");
    return false;
  }
  bool close = http10, keep_alive_token = false, chunked = false, other_encoding = false;
  bool has_length = false;
  uint64_t length = 0;
  std::string content_type;
  std::string_view rest = line_end < head.size() ? head.substr(line_end + 2) : std::string_view();
  while (!rest.empty()) {
    const size_t end = std::min(rest.find("\r\n"), rest.size());
    std::string_view line = rest.substr(0, end);
    rest = end < rest.size() ? rest.substr(end + 2) : std::string_view();
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line[0] == ' ' || line[0] == '\t') {
      Fail("bad HTTP header line");
      return false;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsLower(name, "content-length")) {
      uint64_t parsed = 0;
      if (!ParseDecimal(value, &parsed) || (has_length && parsed != length)) {
        Fail("bad Content-Length");
        return false;
      }
      has_length = true;
      length = parsed;
    } else if (EqualsLower(name, "transfer-encoding")) {
      // chunked must be the last coding; anything else means "until the connection closes".
      ForEachToken(value, [&](std::string_view token) {
        chunked = EqualsLower(token, "chunked");
        if (!chunked) other_encoding = true;
      });
    } else if (EqualsLower(name, "content-type")) {
      content_type.assign(value);
    } else if (EqualsLower(name, "connection")) {
      ForEachToken(value, [&](std::string_view token) {
        if (EqualsLower(token, "close")) close = true;
        if (EqualsLower(token, "keep-alive")) keep_alive_token = true;
      });
    }
  }
  if (status < 200 && status != 101) {  // interim answer (100 Continue, 103): the real one follows
    return true;
  }
  status_ = status;
  content_type_ = std::move(content_type);
  keep_alive_ = http10 ? (keep_alive_token && !close) : !close;
  if (head_request_ || status == 204 || status == 304 || status == 101) {
    framing_ = Framing::kNone;
    state_ = State::kDone;
  } else if (chunked) {
    framing_ = Framing::kChunked;
    state_ = State::kChunkSize;
  } else if (other_encoding || !has_length) {
    framing_ = Framing::kUntilClose;
    keep_alive_ = false;
    state_ = State::kBody;
  } else {
    if (length > max_body_) {
      Fail("the response body exceeds " + std::to_string(max_body_) + " bytes");
      return false;
    }
    framing_ = Framing::kLength;
    remaining_ = length;
    state_ = length == 0 ? State::kDone : State::kBody;
    if (length <= (1u << 20)) body_.reserve(static_cast<size_t>(length));
  }
  return true;
}

void HttpResponseParser::FeedEof() {
  if (state_ == State::kDone || state_ == State::kError) return;
  if (state_ == State::kBody && framing_ == Framing::kUntilClose) {
    state_ = State::kDone;
    return;
  }
  Fail(started_ ? "the connection closed in the middle of the response"
                : "the connection closed before a response");
}

}  // namespace mk8s::client
