// HttpResponseParser: framing (Content-Length, chunked, until close), split reads, bad input and
// the body cap.
#include "client/http_response_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace mk8s::client {
namespace {

// Feeds `text` in pieces of `step` bytes; returns the bytes consumed.
size_t FeedInPieces(HttpResponseParser& parser, const std::string& text, size_t step) {
  size_t used = 0;
  for (size_t at = 0; at < text.size(); at += step) {
    const std::string_view piece = std::string_view(text).substr(at, step);
    const size_t n = parser.Feed(piece);
    used += n;
    if (n < piece.size()) break;
  }
  return used;
}

TEST(HttpResponseParserTest, ContentLengthInOneAndInManyPieces) {
  const std::string text =
      "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
      "{\"a\":\"bc\"}\n";
  for (size_t step : {text.size(), size_t{1}, size_t{2}, size_t{7}}) {
    HttpResponseParser parser;
    EXPECT_EQ(FeedInPieces(parser, text, step), text.size()) << step;
    ASSERT_TRUE(parser.done()) << step;
    EXPECT_EQ(parser.status(), 201);
    EXPECT_EQ(parser.content_type(), "application/json");
    EXPECT_TRUE(parser.keep_alive());
    EXPECT_EQ(parser.body(), "{\"a\":\"bc\"}\n");
  }
}

TEST(HttpResponseParserTest, StopsAtTheEndOfTheResponse) {
  const std::string text = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA";
  HttpResponseParser parser;
  EXPECT_EQ(parser.Feed(text), text.size() - 5);
  EXPECT_TRUE(parser.done());
  EXPECT_EQ(parser.body(), "ok");
}

TEST(HttpResponseParserTest, ChunkedWithExtensionsAndTrailersSplitAnywhere) {
  const std::string text =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
      "5;ext=1\r\nhello\r\n"
      "A\r\n, world!!\n\r\n"
      "0\r\nX-Trailer: yes\r\n\r\n";
  for (size_t step = 1; step <= text.size(); ++step) {
    HttpResponseParser parser;
    EXPECT_EQ(FeedInPieces(parser, text, step), text.size()) << step;
    ASSERT_TRUE(parser.done()) << step;
    EXPECT_EQ(parser.body(), "hello, world!!\n") << step;
    EXPECT_TRUE(parser.keep_alive());
  }
}

TEST(HttpResponseParserTest, StreamingCallerTakesTheBodyPiecewise) {
  HttpResponseParser parser;
  parser.Feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab");
  EXPECT_TRUE(parser.head_done());
  EXPECT_EQ(parser.body(), "ab");
  parser.body().clear();
  parser.Feed("cd\r\n3\r\nef");
  EXPECT_EQ(parser.body(), "cdef");
  EXPECT_FALSE(parser.done());
  parser.FeedEof();
  EXPECT_TRUE(parser.failed());
}

TEST(HttpResponseParserTest, BodyUntilCloseAndConnectionClose) {
  HttpResponseParser parser;
  parser.Feed("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\nboom");
  EXPECT_FALSE(parser.done());
  parser.Feed(" again");
  parser.FeedEof();
  ASSERT_TRUE(parser.done());
  EXPECT_EQ(parser.body(), "boom again");
  EXPECT_FALSE(parser.keep_alive());

  HttpResponseParser http10;
  http10.Feed("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(http10.done());
  EXPECT_FALSE(http10.keep_alive());
}

TEST(HttpResponseParserTest, NoBodyStatusesAndInterimResponses) {
  HttpResponseParser parser;
  parser.Feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n");
  EXPECT_TRUE(parser.done());
  EXPECT_EQ(parser.status(), 204);
  EXPECT_EQ(parser.body(), "");

  HttpResponseParser head;
  head.Reset(100, /*head_request=*/true);
  head.Feed("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_TRUE(head.done());
}

TEST(HttpResponseParserTest, BadInputFailsWithAReason) {
  for (const char* text : {
           "SSH-2.0-OpenSSH\r\n\r\n",
           "HTTP/1.1 2x0 OK\r\n\r\n",
           "HTTP/2 200 OK\r\n\r\n",
           "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n",
       }) {
    HttpResponseParser parser;
    parser.Feed(text);
    EXPECT_TRUE(parser.failed()) << text;
    EXPECT_FALSE(parser.error().empty()) << text;
    EXPECT_FALSE(parser.keep_alive()) << text;
    EXPECT_EQ(parser.Feed("more"), 0u);  // nothing is consumed after a failure
  }
  HttpResponseParser closed;
  closed.FeedEof();
  EXPECT_TRUE(closed.failed());
  EXPECT_FALSE(closed.started());
}

TEST(HttpResponseParserTest, OversizeHeadAndBodyAreRefused) {
  HttpResponseParser head;
  head.Feed("HTTP/1.1 200 OK\r\nX-Big: " + std::string(70 * 1024, 'x'));
  EXPECT_TRUE(head.failed());

  HttpResponseParser declared(10);
  declared.Feed("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n");
  EXPECT_TRUE(declared.failed());

  HttpResponseParser chunked(10);
  chunked.Feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n");
  EXPECT_TRUE(chunked.failed());

  HttpResponseParser until_close(10);
  until_close.Feed("HTTP/1.1 200 OK\r\n\r\n0123456789");
  EXPECT_FALSE(until_close.failed());
  until_close.Feed("a");
  EXPECT_TRUE(until_close.failed());
}

TEST(HttpResponseParserTest, ResetServesTheNextResponse) {
  HttpResponseParser parser(100);
  parser.Feed("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnope");
  EXPECT_EQ(parser.body(), "nop");
  parser.Reset(100);
  EXPECT_FALSE(parser.started());
  parser.Feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_TRUE(parser.done());
  EXPECT_EQ(parser.status(), 200);
  EXPECT_EQ(parser.body(), "ok");
}

}  // namespace
}  // namespace mk8s::client
