#include "kubelet/streaming/spdy_framer.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>

namespace mk8s::kubelet::spdy {
namespace {

#include "kubelet/streaming/spdy3_dictionary.inc"

constexpr uint16_t kVersion = 3;

void Put32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

uint32_t Get32(std::string_view in, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(in[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(in[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(in[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(in[at + 3]));
}

// Control frame header + payload.
std::string Control(FrameType type, uint8_t flags, std::string_view payload) {
  std::string out;
  out.reserve(8 + payload.size());
  out.push_back(static_cast<char>(0x80 | (kVersion >> 8)));
  out.push_back(static_cast<char>(kVersion & 0xff));
  out.push_back(static_cast<char>(static_cast<uint16_t>(type) >> 8));
  out.push_back(static_cast<char>(static_cast<uint16_t>(type) & 0xff));
  Put32(&out, (static_cast<uint32_t>(flags) << 24) | static_cast<uint32_t>(payload.size()));
  out.append(payload);
  return out;
}

Status Corrupt(std::string what) {
  return Status(Code::kInvalidArgument, "spdy: " + std::move(what));
}

}  // namespace

std::optional<std::string> FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------- encoder

struct FrameEncoder::Zlib {
  z_stream stream{};
  bool ok = false;
  Zlib() {
    ok = deflateInit(&stream, Z_DEFAULT_COMPRESSION) == Z_OK &&
         deflateSetDictionary(&stream, kSpdy3Dictionary, sizeof(kSpdy3Dictionary)) == Z_OK;
  }
  ~Zlib() { deflateEnd(&stream); }
};

FrameEncoder::FrameEncoder() : zlib_(std::make_unique<Zlib>()) {}
FrameEncoder::~FrameEncoder() = default;

std::string FrameEncoder::CompressHeaders(const HeaderList& headers) {
  std::string raw;
  Put32(&raw, static_cast<uint32_t>(headers.size()));
  for (const auto& [name, value] : headers) {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    Put32(&raw, static_cast<uint32_t>(lower.size()));
    raw += lower;
    Put32(&raw, static_cast<uint32_t>(value.size()));
    raw += value;
  }
  std::string out;
  if (!zlib_->ok) return out;  // deflateInit failed (out of memory): an empty block
  z_stream& z = zlib_->stream;
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  char chunk[4096];
  do {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof(chunk);
    deflate(&z, Z_SYNC_FLUSH);
    out.append(chunk, sizeof(chunk) - z.avail_out);
  } while (z.avail_out == 0);
  return out;
}

std::string FrameEncoder::SynStream(uint32_t stream_id, const HeaderList& headers, uint8_t flags) {
  std::string payload;
  Put32(&payload, stream_id & 0x7fffffff);
  Put32(&payload, 0);    // associated stream
  payload.push_back(0);  // priority
  payload.push_back(0);  // slot
  payload += CompressHeaders(headers);
  return Control(FrameType::kSynStream, flags, payload);
}

std::string FrameEncoder::SynReply(uint32_t stream_id, const HeaderList& headers, uint8_t flags) {
  std::string payload;
  Put32(&payload, stream_id & 0x7fffffff);
  payload += CompressHeaders(headers);
  return Control(FrameType::kSynReply, flags, payload);
}

std::string FrameEncoder::Headers(uint32_t stream_id, const HeaderList& headers, uint8_t flags) {
  std::string payload;
  Put32(&payload, stream_id & 0x7fffffff);
  payload += CompressHeaders(headers);
  return Control(FrameType::kHeaders, flags, payload);
}

std::string FrameEncoder::RstStream(uint32_t stream_id, uint32_t status) {
  std::string payload;
  Put32(&payload, stream_id & 0x7fffffff);
  Put32(&payload, status);
  return Control(FrameType::kRstStream, 0, payload);
}

std::string FrameEncoder::Settings(const std::vector<std::pair<uint32_t, uint32_t>>& settings) {
  std::string payload;
  Put32(&payload, static_cast<uint32_t>(settings.size()));
  for (const auto& [id, value] : settings) {
    Put32(&payload, id & 0xffffff);  // flags byte 0, then the 24-bit id
    Put32(&payload, value);
  }
  return Control(FrameType::kSettings, 0, payload);
}

std::string FrameEncoder::Ping(uint32_t id) {
  std::string payload;
  Put32(&payload, id);
  return Control(FrameType::kPing, 0, payload);
}

std::string FrameEncoder::GoAway(uint32_t last_good_stream_id, uint32_t status) {
  std::string payload;
  Put32(&payload, last_good_stream_id & 0x7fffffff);
  Put32(&payload, status);
  return Control(FrameType::kGoAway, 0, payload);
}

std::string FrameEncoder::WindowUpdate(uint32_t stream_id, uint32_t delta) {
  std::string payload;
  Put32(&payload, stream_id & 0x7fffffff);
  Put32(&payload, delta & 0x7fffffff);
  return Control(FrameType::kWindowUpdate, 0, payload);
}

std::string FrameEncoder::Data(uint32_t stream_id, std::string_view data, uint8_t flags) {
  std::string out;
  out.reserve(8 + data.size());
  Put32(&out, stream_id & 0x7fffffff);
  Put32(&out, (static_cast<uint32_t>(flags) << 24) |
                  static_cast<uint32_t>(std::min(data.size(), kMaxFrameBytes)));
  out.append(data.substr(0, kMaxFrameBytes));
  return out;
}

// ---------------------------------------------------------------------------- parser

struct FrameParser::Zlib {
  z_stream stream{};
  bool ok = false;
  Zlib() { ok = inflateInit(&stream) == Z_OK; }
  ~Zlib() { inflateEnd(&stream); }
};

FrameParser::FrameParser() : zlib_(std::make_unique<Zlib>()) {}
FrameParser::~FrameParser() = default;

void FrameParser::Feed(std::string_view bytes) {
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

Result<HeaderList> FrameParser::DecompressHeaders(std::string_view block) {
  if (!zlib_->ok) return Corrupt("zlib unavailable");
  z_stream& z = zlib_->stream;
  std::string raw;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z.avail_in = static_cast<uInt>(block.size());
  char chunk[4096];
  while (true) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof(chunk);
    int rc = inflate(&z, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      if (inflateSetDictionary(&z, kSpdy3Dictionary, sizeof(kSpdy3Dictionary)) != Z_OK)
        return Corrupt("header block names an unknown dictionary");
      rc = inflate(&z, Z_SYNC_FLUSH);
    }
    raw.append(chunk, sizeof(chunk) - z.avail_out);
    if (raw.size() > kMaxHeaderBlockBytes) return Corrupt("header block too large");
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // all input consumed
    if (rc != Z_OK) return Corrupt("corrupt header block (zlib)");
    if (z.avail_in == 0 && z.avail_out != 0) break;
  }
  // count(4), then per header len(4) name len(4) value.
  if (raw.size() < 4) return Corrupt("header block shorter than its count");
  const uint32_t count = Get32(raw, 0);
  if (count > kMaxHeaders) return Corrupt("too many headers");
  HeaderList headers;
  size_t at = 4;
  for (uint32_t i = 0; i < count; ++i) {
    std::string parts[2];
    for (std::string& part : parts) {
      if (raw.size() - at < 4) return Corrupt("truncated header block");
      const uint32_t length = Get32(raw, at);
      at += 4;
      if (raw.size() - at < length) return Corrupt("truncated header block");
      part = raw.substr(at, length);
      at += length;
    }
    if (parts[0].empty()) return Corrupt("empty header name");
    headers.emplace_back(std::move(parts[0]), std::move(parts[1]));
  }
  return headers;
}

Result<std::optional<Frame>> FrameParser::Next() {
  while (true) {
    if (error_) return *error_;
    const std::string_view in = std::string_view(buffer_).substr(offset_);
    if (in.size() < 8) return std::optional<Frame>();
    const uint32_t word = Get32(in, 0);
    const uint32_t flags_length = Get32(in, 4);
    const uint8_t flags = static_cast<uint8_t>(flags_length >> 24);
    const size_t length = flags_length & 0xffffff;
    if (length > kMaxFrameBytes) {
      error_ = Corrupt("frame of " + std::to_string(length) + " bytes exceeds the limit");
      continue;
    }
    if (in.size() < 8 + length) return std::optional<Frame>();
    const std::string_view payload = in.substr(8, length);
    offset_ += 8 + length;
    Frame frame;
    frame.flags = flags;
    if ((word & 0x80000000u) == 0) {
      frame.type = FrameType::kData;
      frame.stream_id = word;
      frame.data.assign(payload);
      return std::optional<Frame>(std::move(frame));
    }
    const uint16_t version = static_cast<uint16_t>((word >> 16) & 0x7fff);
    if (version != kVersion) {
      error_ = Corrupt("unsupported version " + std::to_string(version));
      continue;
    }
    const uint16_t type = static_cast<uint16_t>(word & 0xffff);
    frame.type = static_cast<FrameType>(type);
    auto need = [&](size_t n) {
      if (payload.size() >= n) return true;
      error_ = Corrupt("control frame type " + std::to_string(type) + " is too short");
      return false;
    };
    switch (frame.type) {
      case FrameType::kSynStream: {
        if (!need(10)) continue;
        frame.stream_id = Get32(payload, 0) & 0x7fffffff;
        frame.associated_id = Get32(payload, 4) & 0x7fffffff;
        frame.priority = static_cast<uint8_t>(static_cast<uint8_t>(payload[8]) >> 5);
        auto headers = DecompressHeaders(payload.substr(10));
        if (!headers.ok()) {
          error_ = headers.status();
          continue;
        }
        frame.headers = std::move(*headers);
        break;
      }
      case FrameType::kSynReply:
      case FrameType::kHeaders: {
        if (!need(4)) continue;
        frame.stream_id = Get32(payload, 0) & 0x7fffffff;
        auto headers = DecompressHeaders(payload.substr(4));
        if (!headers.ok()) {
          error_ = headers.status();
          continue;
        }
        frame.headers = std::move(*headers);
        break;
      }
      case FrameType::kRstStream:
      case FrameType::kGoAway:
        if (!need(8)) continue;
        frame.stream_id = Get32(payload, 0) & 0x7fffffff;
        frame.status = Get32(payload, 4);
        break;
      case FrameType::kPing:
        if (!need(4)) continue;
        frame.value = Get32(payload, 0);
        break;
      case FrameType::kWindowUpdate:
        if (!need(8)) continue;
        frame.stream_id = Get32(payload, 0) & 0x7fffffff;
        frame.value = Get32(payload, 4) & 0x7fffffff;
        break;
      case FrameType::kSettings: {
        if (!need(4)) continue;
        const uint32_t count = Get32(payload, 0);
        if (count > (payload.size() - 4) / 8) {
          error_ = Corrupt("SETTINGS count exceeds the frame");
          continue;
        }
        for (uint32_t i = 0; i < count; ++i) {
          frame.settings.emplace_back(Get32(payload, 4 + 8 * i) & 0xffffff,
                                      Get32(payload, 8 + 8 * i));
        }
        break;
      }
      default:
        continue;  // unknown control frame: ignored
    }
    return std::optional<Frame>(std::move(frame));
  }
}

}  // namespace mk8s::kubelet::spdy
