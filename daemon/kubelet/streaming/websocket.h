// Server side of RFC 6455 framing over an already-upgraded byte stream: the messages kubectl
// sends for exec/attach (v5/v4.channel.k8s.io) and port-forward (SPDY/3.1+portforward.k8s.io).
//
// Not thread-safe; one parser per connection, fed in receive order. Hostile input gives an
// error (then close the connection), never a crash: client frames must be masked, control
// frames short and unfragmented, and a message is capped at kMaxMessageBytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mk8s::kubelet::ws {

constexpr size_t kMaxMessageBytes = 16 << 20;

enum class Opcode : uint8_t {
  kContinuation = 0,
  kText = 1,
  kBinary = 2,
  kClose = 8,
  kPing = 9,
  kPong = 10
};

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
std::string AcceptKey(std::string_view client_key);

// One server frame (unmasked, FIN set).
std::string EncodeFrame(Opcode opcode, std::string_view payload);
// A close frame with a status code (1000 normal) and an optional reason.
std::string EncodeClose(uint16_t code, std::string_view reason = {});

struct Message {
  Opcode opcode = Opcode::kBinary;  // kText, kBinary, kClose, kPing or kPong
  std::string payload;              // reassembled, unmasked
};

class FrameParser {
 public:
  void Feed(std::string_view bytes);
  // The next complete message (data messages reassembled from fragments; control frames
  // returned as they come), nullopt when more bytes are needed, or an error (sticky).
  Result<std::optional<Message>> Next();

 private:
  std::string buffer_;
  size_t offset_ = 0;
  std::optional<Status> error_;
  std::optional<Message> partial_;  // a fragmented data message being assembled
};

}  // namespace mk8s::kubelet::ws
