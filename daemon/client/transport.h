// Transport: how the client reaches the API server. Two implementations:
//  - InProcessTransport (in_process_transport.h): calls the API server's in-process handler, which
//    runs the full request pipeline (authentication as a component identity, admission,
//    validation) without TCP/TLS. Used by components inside mk8sd.
//  - HttpsTransport (https_transport.h): HTTPS keep-alive to a remote API server. Used by worker
//    nodes and components run out of process.
//
// Threads: callbacks run on the transport's own callback thread (never on the API server's
// threads and never inside Send()/Watch()). They must be cheap and must not wait on the
// transport (no blocking Client calls from a callback: they would deadlock).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mk8s::client {

// A parsed API object, shared and immutable (the informer cache's element type).
using ObjectPtr = std::shared_ptr<const nlohmann::json>;

struct Request {
  std::string method = "GET";
  std::string path;   // unescaped path, e.g. "/api/v1/namespaces/default/pods/web-0"
  std::string query;  // already encoded, without '?', e.g. "labelSelector=app%3Dweb&limit=500"
  std::string content_type;  // of the body; empty if none
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (lower-case names)
  // The caller can take a list answer as shared parsed objects (Response::items). Only the
  // in-process transport honours it; the HTTPS transport always answers with bytes.
  bool accept_objects = false;

  std::string Target() const { return query.empty() ? path : path + "?" + query; }
};

struct Response {
  // The HTTP status, or 0 when no response arrived (connection refused, TLS failure, transport
  // shut down); then `body` holds the cause.
  int status = 0;
  std::string content_type;
  std::string body;
  // Set only for a request with accept_objects answered on the in-process object path: the list's
  // items, shared with the API server's watch cache (never mutate them); `body` is then the list
  // with an empty "items" array.
  std::optional<std::vector<ObjectPtr>> items = std::nullopt;
};

using ResponseCallback = std::function<void(Response)>;

// Callbacks of one streaming request (watch). Serialized: never two at once for one stream.
struct StreamCallbacks {
  // One newline-delimited line of the 2xx body (without the '\n'), in order.
  std::function<void(std::string line)> on_line;
  // Optional. When set, a transport that can (in-process) delivers ADDED/MODIFIED/DELETED events
  // as the API server's shared parsed objects here instead of as lines; bookmarks and errors
  // still arrive as lines, in order with these. The objects are immutable and shared.
  std::function<void(std::string_view type, ObjectPtr object)> on_object;
  // Exactly once, last. For a 2xx stream `response.status` is the stream's status and the body
  // is empty; if the server answered without streaming (an error) it is that whole response;
  // status 0 means the transport failed or the stream was cancelled.
  std::function<void(Response response)> on_end;
};

// Returned by Transport::Stream. Dropping the handle does not cancel; call Cancel().
class StreamHandle {
 public:
  virtual ~StreamHandle() = default;
  // Ends the stream; on_end follows (if it has not run yet). Idempotent, any thread. A call made
  // from inside this stream's own callback guarantees no further on_line.
  virtual void Cancel() = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends one request; `done` runs exactly once, later, on the callback thread.
  virtual void Send(Request request, ResponseCallback done) = 0;
  // Starts a streaming request (a watch).
  virtual std::shared_ptr<StreamHandle> Stream(Request request, StreamCallbacks callbacks) = 0;
  // A human description for logs ("in-process as system:kube-scheduler", "https://10.0.0.1:16443").
  virtual std::string Describe() const = 0;
};

// Splits a byte stream into lines. Not thread-safe (one per stream).
class LineSplitter {
 public:
  // Appends `data` and calls `emit` for each complete line (without '\n'; a trailing '\r' and
  // empty lines are dropped).
  void Feed(std::string_view data, const std::function<void(std::string)>& emit);

 private:
  std::string partial_;
};

// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
std::string QueryEscape(std::string_view value);

}  // namespace mk8s::client
