#include "kubelet/streaming/websocket.h"

#include <gtest/gtest.h>

namespace mk8s::kubelet::ws {
namespace {

// A client frame (masked), as kubectl sends them.
std::string ClientFrame(uint8_t first_byte, std::string_view payload) {
  const char mask[4] = {0x11, 0x22, 0x33, 0x44};
  std::string out(1, static_cast<char>(first_byte));
  const size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  }
  out.append(mask, 4);
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return out;
}

TEST(WebSocket, AcceptKeyMatchesRfc6455Example) {
  EXPECT_EQ(AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocket, EncodesServerFramesUnmasked) {
  EXPECT_EQ(EncodeFrame(Opcode::kBinary, std::string("\x01hi", 3)),
            std::string("\x82\x03\x01hi", 5));
  EXPECT_EQ(EncodeFrame(Opcode::kBinary, std::string(300, 'x')).substr(0, 4),
            std::string("\x82\x7e\x01\x2c", 4));
  EXPECT_EQ(EncodeFrame(Opcode::kBinary, std::string(70000, 'x')).size(), 70000u + 10);
  EXPECT_EQ(EncodeClose(1000), std::string("\x88\x02\x03\xe8", 4));
}

TEST(WebSocket, ParsesMaskedFragmentedAndControlFramesByteByByte) {
  std::string wire = ClientFrame(0x82, std::string("\x00hello\n", 7)) + ClientFrame(0x02, "frag") +
                     ClientFrame(0x89, "ping!") + ClientFrame(0x80, "mented") +
                     ClientFrame(0x82, std::string(70000, 'z')) +
                     ClientFrame(0x82, std::string("\xff\x00", 2)) + ClientFrame(0x88, "\x03\xe8");
  FrameParser parser;
  std::vector<Message> messages;
  for (char byte : wire) {
    parser.Feed(std::string_view(&byte, 1));
    while (true) {
      auto next = parser.Next();
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      if (!next->has_value()) break;
      messages.push_back(std::move(**next));
    }
  }
  ASSERT_EQ(messages.size(), 6u);
  EXPECT_EQ(messages[0].payload, std::string("\x00hello\n", 7));
  EXPECT_EQ(messages[1].opcode, Opcode::kPing);  // control frames may interleave fragments
  EXPECT_EQ(messages[2].payload, "fragmented");
  EXPECT_EQ(messages[3].payload.size(), 70000u);
  EXPECT_EQ(messages[4].payload, std::string("\xff\x00", 2));
  EXPECT_EQ(messages[5].opcode, Opcode::kClose);
}

TEST(WebSocket, RejectsHostileFrames) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"unmasked", std::string("\x82\x01x", 3)},
      {"reserved bits", ClientFrame(0xc2, "x")},
      {"unknown opcode", ClientFrame(0x83, "x")},
      {"long control frame", ClientFrame(0x89, std::string(200, 'p'))},
      {"fragmented control frame", ClientFrame(0x09, "p")},
      {"continuation first", ClientFrame(0x80, "x")},
      {"huge length", std::string("\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff", 10)},
  };
  for (const auto& [what, bytes] : cases) {
    FrameParser parser;
    parser.Feed(bytes);
    EXPECT_FALSE(parser.Next().ok()) << what;
    EXPECT_FALSE(parser.Next().ok()) << what << " (sticky)";
  }
}

}  // namespace
}  // namespace mk8s::kubelet::ws
