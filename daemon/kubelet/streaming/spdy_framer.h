// SPDY/3.1 framing (the protocol of Kubernetes' SPDY streams: exec/attach v4 and
// portforward.k8s.io towards containerd's streaming server, and kubectl's port-forward).
//
//   control frame: 1|version(15)=3 | type(16) | flags(8) | length(24) | payload
//   DATA frame:    0|stream id(31)             | flags(8) | length(24) | data
//
// Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib-compressed with the SPDY/3 dictionary,
// one compression context per direction for the whole connection, each block ending with a
// Z_SYNC_FLUSH. So a FrameEncoder / FrameParser pair belongs to ONE connection: frames must be
// encoded in exactly the order they are put on the wire, and parsed in the order received.
//
// Neither class is thread-safe; callers serialize (see SpdyConnection). zlib stays in the .cc.
// The parser never trusts its input: lengths are bounded (kMaxFrameBytes, kMaxHeaderBlockBytes,
// kMaxHeaders) and any violation is a Status error after which the connection must be dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace mk8s::kubelet::spdy {

enum class FrameType : uint16_t {
  kData = 0,  // not a control type: DATA frames have no type field
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

constexpr uint8_t kFlagFin = 0x01;
constexpr uint8_t kFlagUnidirectional = 0x02;  // SYN_STREAM only

// RST_STREAM status codes used here.
constexpr uint32_t kRstProtocolError = 1;
constexpr uint32_t kRstCancel = 5;
constexpr uint32_t kRstInternalError = 6;

constexpr size_t kMaxFrameBytes = 1 << 20;         // larger frames are a protocol error
constexpr size_t kMaxHeaderBlockBytes = 64 << 10;  // decompressed header block cap
constexpr uint32_t kMaxHeaders = 256;

// Names are lower-case on the wire (the encoder lower-cases them).
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The first value of `name` (lower-case) in `headers`, or nullopt.
std::optional<std::string> FindHeader(const HeaderList& headers, std::string_view name);

struct Frame {
  FrameType type = FrameType::kData;
  uint8_t flags = 0;
  // DATA, SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE: the stream;
  // GOAWAY: the last good stream id.
  uint32_t stream_id = 0;
  uint32_t associated_id = 0;                           // SYN_STREAM
  uint8_t priority = 0;                                 // SYN_STREAM (3 bits)
  uint32_t status = 0;                                  // RST_STREAM, GOAWAY
  uint32_t value = 0;                                   // PING id, WINDOW_UPDATE delta
  std::vector<std::pair<uint32_t, uint32_t>> settings;  // SETTINGS: (id, value); flags dropped
  HeaderList headers;                                   // SYN_STREAM, SYN_REPLY, HEADERS
  std::string data;                                     // DATA payload
  bool fin() const { return (flags & kFlagFin) != 0; }
};

// Encodes frames for one direction of one connection (owns the deflate context).
class FrameEncoder {
 public:
  FrameEncoder();
  ~FrameEncoder();
  FrameEncoder(const FrameEncoder&) = delete;
  FrameEncoder& operator=(const FrameEncoder&) = delete;

  std::string SynStream(uint32_t stream_id, const HeaderList& headers, uint8_t flags = 0);
  std::string SynReply(uint32_t stream_id, const HeaderList& headers, uint8_t flags = 0);
  std::string Headers(uint32_t stream_id, const HeaderList& headers, uint8_t flags = 0);
  static std::string RstStream(uint32_t stream_id, uint32_t status);
  static std::string Settings(const std::vector<std::pair<uint32_t, uint32_t>>& settings);
  static std::string Ping(uint32_t id);
  static std::string GoAway(uint32_t last_good_stream_id, uint32_t status);
  static std::string WindowUpdate(uint32_t stream_id, uint32_t delta);
  // One DATA frame; `data` must be at most kMaxFrameBytes (callers split larger payloads).
  static std::string Data(uint32_t stream_id, std::string_view data, uint8_t flags = 0);

 private:
  std::string CompressHeaders(const HeaderList& headers);
  struct Zlib;
  std::unique_ptr<Zlib> zlib_;
};

// Incremental parser for one direction of one connection (owns the inflate context).
class FrameParser {
 public:
  FrameParser();
  ~FrameParser();
  FrameParser(const FrameParser&) = delete;
  FrameParser& operator=(const FrameParser&) = delete;

  // Appends received bytes. Cheap; parsing happens in Next().
  void Feed(std::string_view bytes);
  // The next complete frame, nullopt when more bytes are needed, or an error (bad version,
  // oversized frame, corrupt header block...): the connection is then unusable, and every
  // later call returns the same error. Unknown control frame types are skipped (as the spec
  // asks).
  Result<std::optional<Frame>> Next();

 private:
  Result<HeaderList> DecompressHeaders(std::string_view block);
  std::string buffer_;
  size_t offset_ = 0;  // parsed prefix of buffer_
  std::optional<Status> error_;
  struct Zlib;
  std::unique_ptr<Zlib> zlib_;
};

}  // namespace mk8s::kubelet::spdy
