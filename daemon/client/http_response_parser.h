// HttpResponseParser: an incremental HTTP/1.1 response parser for the HTTPS transport. Bytes are
// fed as they are decrypted, in pieces of any size; the parser finds the status line and the
// headers the client needs (Content-Length, Transfer-Encoding, Content-Type, Connection) and
// then the body: by Content-Length, chunked, or up to the end of the stream. Interim 1xx answers
// are skipped. No copy of the body beyond the one into body().
//
// Not thread-safe (one per exchange; Reset() for the next one on the same connection).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mk8s::client {

class HttpResponseParser {
 public:
  // `max_body`: the largest body accepted (counted over the whole body, also when a streaming
  // caller takes it out piecewise); more is an error.
  explicit HttpResponseParser(uint64_t max_body = UINT64_MAX) : max_body_(max_body) {}

  // Starts over for a new response. `head_request`: the request was HEAD (no body follows).
  void Reset(uint64_t max_body, bool head_request = false);

  // Consumes bytes up to the end of the response; returns how many were used (fewer than
  // data.size() only once done() or failed()). After a failure nothing more is consumed.
  size_t Feed(std::string_view data);
  // The peer closed the stream: ends a body that runs to the end of the stream; any other
  // unfinished response fails.
  void FeedEof();

  bool head_done() const { return state_ >= State::kBody && state_ != State::kError; }
  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kError; }
  const std::string& error() const { return error_; }
  // True once any byte of the response has arrived.
  bool started() const { return started_; }

  int status() const { return status_; }
  const std::string& content_type() const { return content_type_; }
  // Whether the connection may carry another request after this response.
  bool keep_alive() const { return keep_alive_; }
  // The body received so far (a streaming caller may move it out between Feed calls).
  std::string& body() { return body_; }

 private:
  enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kDone, kError };
  enum class Framing { kNone, kLength, kChunked, kUntilClose };

  size_t FeedHead(std::string_view data);
  bool ParseHead(std::string_view head);  // status line + headers, without the final CRLF CRLF
  bool AppendBody(std::string_view data);
  size_t Fail(std::string message);
  // Reads one CRLF-terminated line into line_ (across Feed calls); npos if it needs more bytes.
  size_t TakeLine(std::string_view data, size_t limit, bool* complete);

  uint64_t max_body_;
  bool head_request_ = false;
  State state_ = State::kHead;
  Framing framing_ = Framing::kNone;
  bool started_ = false;
  std::string head_;   // partial head, only while it spans Feed calls
  std::string line_;   // partial chunk-size or trailer line
  int status_ = 0;
  std::string content_type_;
  bool keep_alive_ = true;
  uint64_t remaining_ = 0;  // of the Content-Length body or of the current chunk
  uint64_t body_total_ = 0;
  std::string body_;
  std::string error_;
};

}  // namespace mk8s::client
