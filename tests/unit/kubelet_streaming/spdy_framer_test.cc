#include "kubelet/streaming/spdy_framer.h"

#include <gtest/gtest.h>

#include <random>

namespace mk8s::kubelet::spdy {
namespace {

std::string Hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    if (hex[i] == ' ') {
      --i;
      continue;
    }
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// All frames `parser` yields for `bytes`, fed in pieces of `step` bytes.
std::vector<Frame> ParseAll(FrameParser& parser, const std::string& bytes, size_t step) {
  std::vector<Frame> frames;
  for (size_t at = 0; at < bytes.size(); at += step) {
    parser.Feed(std::string_view(bytes).substr(at, step));
    while (true) {
      auto next = parser.Next();
      EXPECT_TRUE(next.ok()) << next.status().ToString();
      if (!next.ok() || !next->has_value()) break;
      frames.push_back(std::move(**next));
    }
  }
  return frames;
}

TEST(SpdyFramer, RoundTripsEveryFrameTypeAcrossOneCompressionContext) {
  for (size_t step : {size_t{1}, size_t{3}, size_t{4096}}) {
    FrameEncoder encoder;
    std::string wire;
    wire += encoder.SynStream(1, {{"streamType", "error"}});
    wire += encoder.SynStream(3, {{"streamtype", "data"}, {"port", "80"}, {"requestid", "0"}});
    wire += encoder.SynReply(3, {});
    wire += FrameEncoder::Data(3, "hello", kFlagFin);
    wire += FrameEncoder::Data(5, "");
    wire += FrameEncoder::RstStream(3, kRstCancel);
    wire += FrameEncoder::Settings({{7, 65536}, {4, 100}});
    wire += FrameEncoder::Ping(42);
    wire += FrameEncoder::WindowUpdate(3, 1000);
    wire += encoder.Headers(1, {{"x", "y"}});
    wire += FrameEncoder::GoAway(3, 0);
    FrameParser parser;
    const std::vector<Frame> f = ParseAll(parser, wire, step);
    ASSERT_EQ(f.size(), 11u) << "step " << step;
    EXPECT_EQ(f[0].type, FrameType::kSynStream);
    EXPECT_EQ(f[0].stream_id, 1u);
    EXPECT_EQ(FindHeader(f[0].headers, "streamtype"), "error");  // names lower-cased
    EXPECT_EQ(f[1].headers.size(), 3u);
    EXPECT_EQ(FindHeader(f[1].headers, "port"), "80");
    EXPECT_EQ(FindHeader(f[1].headers, "requestid"), "0");
    EXPECT_EQ(f[2].type, FrameType::kSynReply);
    EXPECT_TRUE(f[2].headers.empty());
    EXPECT_EQ(f[3].type, FrameType::kData);
    EXPECT_EQ(f[3].data, "hello");
    EXPECT_TRUE(f[3].fin());
    EXPECT_EQ(f[4].stream_id, 5u);
    EXPECT_FALSE(f[4].fin());
    EXPECT_EQ(f[5].type, FrameType::kRstStream);
    EXPECT_EQ(f[5].status, kRstCancel);
    ASSERT_EQ(f[6].settings.size(), 2u);
    EXPECT_EQ(f[6].settings[0], (std::pair<uint32_t, uint32_t>{7, 65536}));
    EXPECT_EQ(f[7].type, FrameType::kPing);
    EXPECT_EQ(f[7].value, 42u);
    EXPECT_EQ(f[8].type, FrameType::kWindowUpdate);
    EXPECT_EQ(f[8].value, 1000u);
    EXPECT_EQ(f[9].type, FrameType::kHeaders);
    EXPECT_EQ(FindHeader(f[9].headers, "x"), "y");
    EXPECT_EQ(f[10].type, FrameType::kGoAway);
    EXPECT_EQ(f[10].stream_id, 3u);
  }
}

// Bytes containerd 1.6 sent (two SYN_REPLYs sharing one zlib context, then DATA, RST, GOAWAY),
// and the SYN_STREAM a zlib-level-9 client sent: the parser must read other encoders' output.
TEST(SpdyFramer, ParsesBytesFromContainerdAndOtherEncoders) {
  const std::string server =
      Hex("80030002000000140000000178f9e3c6a7c26260606000000000ffff"
          "80030002 0000000c 00000003 026100000000ffff"
          "00000003 00000003 68690a"
          "00000003 01000000"
          "80030003 00000008 00000001 00000005"
          "80030007 00000008 00000003 00000000");
  FrameParser parser;
  const std::vector<Frame> f = ParseAll(parser, server, 5);
  ASSERT_EQ(f.size(), 6u);
  EXPECT_EQ(f[0].type, FrameType::kSynReply);
  EXPECT_EQ(f[1].type, FrameType::kSynReply);
  EXPECT_EQ(f[1].stream_id, 3u);
  EXPECT_EQ(f[2].data, "hi\n");
  EXPECT_TRUE(f[3].fin());
  EXPECT_EQ(f[4].status, kRstCancel);
  EXPECT_EQ(f[5].type, FrameType::kGoAway);

  FrameParser client;
  const std::vector<Frame> c =
      ParseAll(client,
               Hex("800300010000002800000001000000000000"
                   "78f9e3c6a7c202a62346703a2b294a4dcc851625aca9a08006000000ffff"),
               4096);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(FindHeader(c[0].headers, "streamtype"), "error");
}

TEST(SpdyFramer, TruncatedInputWaitsForMore) {
  FrameEncoder encoder;
  const std::string frame = encoder.SynStream(1, {{"streamtype", "stdin"}});
  for (size_t cut = 0; cut < frame.size(); ++cut) {
    FrameEncoder fresh;
    const std::string again = fresh.SynStream(1, {{"streamtype", "stdin"}});
    FrameParser parser;
    parser.Feed(std::string_view(again).substr(0, cut));
    auto next = parser.Next();
    ASSERT_TRUE(next.ok());
    EXPECT_FALSE(next->has_value()) << "cut " << cut;
  }
}

TEST(SpdyFramer, RejectsHostileFramesWithStickyErrors) {
  struct Case {
    const char* what;
    std::string bytes;
  };
  const std::vector<Case> cases = {
      {"oversized length", Hex("00000001 00ffffff")},
      {"bad version", Hex("80020001 00000004 00000001")},
      {"short RST_STREAM", Hex("80030003 00000004 00000001")},
      {"short SYN_STREAM", Hex("80030001 00000004 00000001")},
      {"garbage header block", Hex("80030002 00000008 00000001 deadbeef")},
      {"SETTINGS count beyond frame", Hex("80030004 00000004 7fffffff")},
      {"wrong dictionary", Hex("80030002 0000000a 00000001 78f900000001")},
  };
  for (const Case& c : cases) {
    FrameParser parser;
    parser.Feed(c.bytes);
    auto next = parser.Next();
    EXPECT_FALSE(next.ok()) << c.what;
    EXPECT_FALSE(parser.Next().ok()) << c.what << " (sticky)";
  }
}

TEST(SpdyFramer, RejectsTooManyHeaders) {
  FrameParser parser;
  HeaderList lots;
  for (uint32_t i = 0; i <= kMaxHeaders; ++i) lots.emplace_back("h" + std::to_string(i), "v");
  FrameEncoder other;
  parser.Feed(other.SynReply(1, lots));
  EXPECT_FALSE(parser.Next().ok());
}

TEST(SpdyFramer, SurvivesRandomGarbage) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 2000; ++round) {
    FrameParser parser;
    std::string bytes(rng() % 200, '\0');
    for (char& b : bytes) b = static_cast<char>(rng());
    if (round % 2 == 0 && bytes.size() > 8) {  // valid-looking control headers
      bytes[0] = static_cast<char>(0x80);
      bytes[1] = 3;
      bytes[2] = 0;
      bytes[5] = 0;
      bytes[6] = 0;
    }
    parser.Feed(bytes);
    for (int i = 0; i < 50; ++i) {
      auto next = parser.Next();
      if (!next.ok() || !next->has_value()) break;
    }
  }
  SUCCEED();
}

}  // namespace
}  // namespace mk8s::kubelet::spdy
