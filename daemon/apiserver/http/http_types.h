// Plain request/response types between the HTTPS transport and the API handlers.
// No Beast/Asio here: this header is included widely.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mk8s::apiserver::http {

// A parsed object shared, immutable, between the API server's watch cache and in-process clients
// (the in-process object path below). Never mutated by anyone once shared.
using SharedObject = std::shared_ptr<const nlohmann::json>;

// Who the TLS layer says the peer is. Filled only from a client certificate that verified
// against the cluster CA; otherwise `verified` is false and the rest is empty.
struct PeerCertificate {
  bool verified = false;
  std::string common_name;                 // the user
  std::vector<std::string> organizations;  // the groups
};

struct Header {
  std::string name;  // lower-case
  std::string value;
};

struct Request {
  std::string method;      // "GET", "POST", ...
  std::string target;      // path and query, as sent ("/api/v1/pods?limit=500")
  std::string path;        // percent-decoded path, without the query
  std::string query;       // raw query string, without '?'
  std::vector<Header> headers;
  std::string body;
  PeerCertificate peer;
  std::string remote_address;  // "127.0.0.1:53422"

  // The first header with this (lower-case) name, or empty.
  std::string_view HeaderValue(std::string_view lower_name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<Header> headers;  // extra headers
  std::string body;
};

// A long-lived chunked response (watch, log follow). Thread-safe: any thread may Write or Close.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Queues one chunk. Returns false once the stream is closed (client gone, too slow, or Close).
  virtual bool Write(std::string chunk) = 0;
  // The same for a chunk shared with other streams (one watch event's frame, built once and sent
  // to every watcher): the stream never changes it, and keeps a reference (a copy of `chunk`)
  // only if it cannot send it at once. The default copies the bytes; the HTTPS transport
  // encrypts straight from the shared bytes.
  virtual bool WriteShared(const std::shared_ptr<const std::string>& chunk) {
    return chunk ? Write(*chunk) : true;
  }
  // Ends the response (terminal chunk). Idempotent.
  virtual void Close() = 0;
  // Bytes queued by Write and not yet sent to the client. Producers that can pace themselves
  // (log streams) wait while this is high instead of tripping the server's backlog cap.
  virtual size_t buffered_bytes() const { return 0; }
  // `callback` runs once, on a transport thread, when the stream ends for any reason. If the
  // stream already ended it runs immediately on the caller's thread.
  virtual void OnClosed(std::function<void()> callback) = 0;

  // --- In-process object path (watches). A stream whose client runs in this process may take
  // watch events as the watch cache's shared parsed objects instead of serialized frames, so
  // each in-process watcher neither serializes nor re-parses the object. Only streams of the
  // in-process transport accept objects; every other stream takes frames (the default).
  virtual bool AcceptsObjects() const { return false; }
  // Same meaning as Write() of the frame {"type":<type>,"object":<object>}\n, in order with the
  // Write() calls; `type` is ADDED, MODIFIED or DELETED (bookmarks and errors go through Write).
  // Returns false once the stream is closed. Call only if AcceptsObjects().
  virtual bool WriteObject(std::string_view type, SharedObject object) {
    (void)type;
    (void)object;
    return false;
  }
};

// A connection switched to another protocol after a 101 (WebSocket, SPDY): raw bytes both ways.
// Thread-safe: any thread may Write or Close.
class UpgradedConnection {
 public:
  virtual ~UpgradedConnection() = default;
  // Starts delivering received bytes: `on_data` runs on a transport thread for each chunk, in
  // order, and must not block for long; `on_closed` runs once when the connection ends (peer
  // closed, error, or Close done). Bytes the client sent right after its request come first.
  // Call once.
  virtual void Start(std::function<void(std::string_view)> on_data,
                     std::function<void()> on_closed) = 0;
  // Queues bytes. Returns false once the connection has ended.
  virtual bool Write(std::string bytes) = 0;
  // Bytes queued by Write and not yet sent (producers pace themselves on it).
  virtual size_t buffered_bytes() const = 0;
  // Sends what is queued, then closes. Idempotent.
  virtual void Close() = 0;
};

// Completes one request, exactly once, from any thread.
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void Send(Response response) = 0;
  // Starts a chunked response with this status and content type.
  virtual std::shared_ptr<ResponseStream> StartStream(int status, std::string content_type,
                                                      std::vector<Header> headers = {}) = 0;
  // Answers "101 Switching Protocols" with `headers` (Upgrade, Connection, Sec-WebSocket-Accept
  // ...) and hands the connection over. nullptr when this transport cannot upgrade.
  virtual std::shared_ptr<UpgradedConnection> Upgrade(std::vector<Header> headers) {
    (void)headers;
    return nullptr;
  }

  // --- In-process object path (lists). A responder for an in-process client that asked for it
  // may be answered with SendObjects() instead of Send(): `envelope` is the list response with
  // an empty "items" array, `items` the list's objects in order (shared with the watch cache).
  // Wrapping responders that pass answers through unchanged forward both methods.
  virtual bool AcceptsObjects() const { return false; }
  // Call only if AcceptsObjects(); the default answers 500 (a programming error, never silent).
  virtual void SendObjects(Response envelope, std::vector<SharedObject> items) {
    (void)envelope;
    (void)items;
    Send(Response{500, "application/json", {},
                  R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":500,)"
                  R"("reason":"InternalError","message":"objects sent to a byte-only responder"})"});
  }
};

// Called on a transport thread for each request; must not block. It may answer at once or keep
// the responder and answer later from another thread.
using Handler = std::function<void(Request request, std::shared_ptr<Responder> responder)>;

}  // namespace mk8s::apiserver::http
