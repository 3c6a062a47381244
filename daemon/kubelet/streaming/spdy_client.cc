#include "kubelet/streaming/spdy_client.h"

namespace mk8s::kubelet {

Result<uint32_t> SpdyClient::OpenStream(const spdy::HeaderList& headers) {
  std::lock_guard lock(open_mu_);
  const uint32_t id = next_id_;
  if (id > 0x7ffffff0u) return Status(Code::kResourceExhausted, "spdy: stream ids exhausted");
  next_id_ += 2;
  // Encode and send under the same lock: compression order == wire order == id order.
  if (!socket_->SendAll(encoder_.SynStream(id, headers))) {
    return Status(Code::kUnavailable, "spdy: connection to the runtime closed");
  }
  return id;
}

bool SpdyClient::SendData(uint32_t stream_id, std::string_view data, bool fin) {
  constexpr size_t kChunk = 64 * 1024;
  do {
    const std::string_view part = data.substr(0, kChunk);
    data.remove_prefix(part.size());
    const uint8_t flags = (fin && data.empty()) ? spdy::kFlagFin : 0;
    if (!socket_->SendAll(spdy::FrameEncoder::Data(stream_id, part, flags))) return false;
  } while (!data.empty());
  return true;
}

Status SpdyClient::Run(const std::function<void(const spdy::Frame&)>& on_frame) {
  while (true) {
    const std::string bytes = socket_->Read();
    if (bytes.empty()) return Status::Ok();
    parser_.Feed(bytes);
    while (true) {
      Result<std::optional<spdy::Frame>> frame = parser_.Next();
      if (!frame.ok()) return frame.status();
      if (!frame->has_value()) break;
      const spdy::Frame& f = **frame;
      if (f.type == spdy::FrameType::kPing) {
        socket_->SendAll(spdy::FrameEncoder::Ping(f.value));
        continue;
      }
      on_frame(f);
      if (f.type == spdy::FrameType::kGoAway) return Status::Ok();
    }
  }
}

}  // namespace mk8s::kubelet
