#include "kubelet/streaming/websocket.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

namespace mk8s::kubelet::ws {
namespace {

Status Bad(std::string what) { return Status(Code::kInvalidArgument, "websocket: " + what); }

}  // namespace

std::string AcceptKey(std::string_view client_key) {
  const std::string text = std::string(client_key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

std::string EncodeFrame(Opcode opcode, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 10);
  out.push_back(static_cast<char>(0x80 | static_cast<uint8_t>(opcode)));
  const uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 0xffff) {
    out.push_back(126);
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(127);
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  }
  out.append(payload);
  return out;
}

std::string EncodeClose(uint16_t code, std::string_view reason) {
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code));
  payload.append(reason.substr(0, 120));
  return EncodeFrame(Opcode::kClose, payload);
}

void FrameParser::Feed(std::string_view bytes) {
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

Result<std::optional<Message>> FrameParser::Next() {
  while (true) {
    if (error_) return *error_;
    const std::string_view in = std::string_view(buffer_).substr(offset_);
    if (in.size() < 2) return std::optional<Message>();
    const uint8_t b0 = static_cast<uint8_t>(in[0]);
    const uint8_t b1 = static_cast<uint8_t>(in[1]);
    const bool fin = (b0 & 0x80) != 0;
    const uint8_t opcode = b0 & 0x0f;
    if ((b0 & 0x70) != 0) {
      error_ = Bad("reserved bits set");
      continue;
    }
    if ((b1 & 0x80) == 0) {
      error_ = Bad("client frame is not masked");
      continue;
    }
    uint64_t length = b1 & 0x7f;
    size_t header = 2;
    if (length == 126) {
      if (in.size() < 4) return std::optional<Message>();
      length =
          (static_cast<uint64_t>(static_cast<uint8_t>(in[2])) << 8) | static_cast<uint8_t>(in[3]);
      header = 4;
    } else if (length == 127) {
      if (in.size() < 10) return std::optional<Message>();
      length = 0;
      for (int i = 0; i < 8; ++i) length = (length << 8) | static_cast<uint8_t>(in[2 + i]);
      header = 10;
    }
    const bool control = (opcode & 0x08) != 0;
    if (control && (length > 125 || !fin)) {
      error_ = Bad("bad control frame");
      continue;
    }
    if (opcode != 0 && opcode != 1 && opcode != 2 && opcode != 8 && opcode != 9 && opcode != 10) {
      error_ = Bad("unknown opcode " + std::to_string(opcode));
      continue;
    }
    const size_t assembled = partial_ ? partial_->payload.size() : 0;
    if (length > kMaxMessageBytes || assembled + length > kMaxMessageBytes) {
      error_ = Bad("message larger than " + std::to_string(kMaxMessageBytes) + " bytes");
      continue;
    }
    if (in.size() < header + 4 + length) return std::optional<Message>();
    const std::string_view mask = in.substr(header, 4);
    std::string payload(in.substr(header + 4, length));
    for (size_t i = 0; i < payload.size(); ++i) payload[i] ^= mask[i % 4];
    offset_ += header + 4 + length;

    if (control) {
      return std::optional<Message>(Message{static_cast<Opcode>(opcode), std::move(payload)});
    }
    if (opcode == 0) {
      if (!partial_) {
        error_ = Bad("continuation without a message");
        continue;
      }
      partial_->payload += payload;
    } else {
      if (partial_) {
        error_ = Bad("new message inside a fragmented one");
        continue;
      }
      partial_ = Message{static_cast<Opcode>(opcode), std::move(payload)};
    }
    if (fin) {
      Message done = std::move(*partial_);
      partial_.reset();
      return std::optional<Message>(std::move(done));
    }
  }
}

}  // namespace mk8s::kubelet::ws
