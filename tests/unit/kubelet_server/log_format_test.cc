// Tests of the CRI log format, the log query options and the on-disk log layout lookups.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/time_format.h"
#include "kubelet/server/cri_log.h"
#include "kubelet/server/log_files.h"
#include "kubelet/server/log_options.h"
#include "temp_dir.h"

namespace mk8s::kubelet {
namespace {

using Clock = std::chrono::system_clock;

Clock::time_point At(const char* text) { return *ParseRfc3339(text); }

std::string Render(const LogOptions& options, const std::vector<std::string>& lines) {
  LogFormatter formatter(options);
  std::string out;
  for (const auto& line : lines) formatter.AddLine(line, &out);
  return out;
}

TEST(CriLogTest, ParsesFullPartialAndEmptyLines) {
  CriLogLine line;
  ASSERT_TRUE(ParseCriLogLine("2026-01-02T03:04:05.123456789Z stderr F hello world", &line));
  EXPECT_EQ(line.stream, "stderr");
  EXPECT_FALSE(line.partial);
  EXPECT_EQ(line.content, "hello world");
  EXPECT_EQ(FormatRfc3339Nano(line.time), "2026-01-02T03:04:05.123456789Z");
  ASSERT_TRUE(ParseCriLogLine("2026-01-02T03:04:05Z stdout P  two spaces", &line));
  EXPECT_TRUE(line.partial);
  EXPECT_EQ(line.content, " two spaces");
  ASSERT_TRUE(ParseCriLogLine("2026-01-02T03:04:05Z stdout F", &line));
  EXPECT_EQ(line.content, "");
  for (const char* bad : {"", "no time here", "2026-01-02T03:04:05Z stdin F x",
                          "2026-01-02T03:04:05Z stdout X x", "2026-13-02T03:04:05Z stdout F x"}) {
    EXPECT_FALSE(ParseCriLogLine(bad, &line)) << bad;
  }
}

TEST(CriLogTest, FormatterJoinsPartialsAndPrefixesTimestampsOncePerLine) {
  const std::vector<std::string> lines = {"2026-01-02T03:04:05.000000001Z stdout P ab",
                                          "2026-01-02T03:04:06Z stdout F cd", "garbage is skipped",
                                          "2026-01-02T03:04:07Z stderr F ef"};
  EXPECT_EQ(Render({}, lines), "abcd\nef\n");
  LogOptions stamped;
  stamped.timestamps = true;
  EXPECT_EQ(Render(stamped, lines),
            "2026-01-02T03:04:05.000000001Z abcd\n2026-01-02T03:04:07.000000000Z ef\n");
}

TEST(CriLogTest, FormatterAppliesSinceAndLimitBytes) {
  const std::vector<std::string> lines = {"2026-01-02T03:00:00Z stdout F old",
                                          "2026-01-02T04:00:00Z stdout F new",
                                          "2026-01-02T05:00:00Z stdout F newer"};
  LogOptions since;
  since.since = At("2026-01-02T04:00:00Z");
  EXPECT_EQ(Render(since, lines), "new\nnewer\n");
  LogOptions limit;
  limit.limit_bytes = 6;
  LogFormatter formatter(limit);
  std::string out;
  for (const auto& line : lines) formatter.AddLine(line, &out);
  EXPECT_EQ(out, "old\nne");
  EXPECT_TRUE(formatter.limit_reached());
}

TEST(LogOptionsTest, ParsesUpstreamParameters) {
  const auto now = At("2026-01-02T03:04:05Z");
  auto options = ParseLogOptions(
      "follow=true&previous=1&timestamps=True&tailLines=10&limitBytes=500&sinceSeconds=60&"
      "container=ignored",
      now);
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_TRUE(options->follow);
  EXPECT_TRUE(options->previous);
  EXPECT_TRUE(options->timestamps);
  EXPECT_EQ(options->tail_lines, 10);
  EXPECT_EQ(options->limit_bytes, 500);
  EXPECT_EQ(options->since, now - std::chrono::seconds(60));
  auto since_time = ParseLogOptions("sinceTime=2026-01-01T00%3A00%3A00Z", now);
  ASSERT_TRUE(since_time.ok());
  EXPECT_EQ(since_time->since, At("2026-01-01T00:00:00Z"));
  auto none = ParseLogOptions("", now);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->follow || none->tail_lines || none->since || none->limit_bytes);
}

TEST(LogOptionsTest, RejectsBadValuesWithUpstreamMessages) {
  const auto now = Clock::now();
  const std::pair<const char*, const char*> cases[] = {
      {"tailLines=-1", "tailLines: Invalid value: -1: must be greater than or equal to 0"},
      {"limitBytes=0", "limitBytes: Invalid value: 0: must be greater than 0"},
      {"sinceSeconds=0", "sinceSeconds: Invalid value: 0: must be greater than 0"},
      {"sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z",
       "at most one of sinceTime or sinceSeconds may be specified"},
      {"follow=maybe", "follow: Invalid value"},
      {"tailLines=ten", "tailLines: Invalid value"},
      {"sinceTime=yesterday", "sinceTime: Invalid value"},
  };
  for (const auto& [query, message] : cases) {
    auto options = ParseLogOptions(query, now);
    ASSERT_FALSE(options.ok()) << query;
    EXPECT_EQ(options.status().code(), Code::kInvalidArgument);
    EXPECT_NE(options.status().message().find(message), std::string::npos)
        << query << ": " << options.status().message();
  }
}

class LogFilesTest : public ::testing::Test {
 protected:
  void Write(const std::string& relative, const std::string& text) {
    const std::string path = dir_.path() + "/" + relative;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::app) << text;
  }
  int64_t Tail(const std::string& text, int64_t lines) {
    Write("tail.log", text);
    const int fd = ::open((dir_.path() + "/tail.log").c_str(), O_RDONLY);
    const int64_t offset = TailOffset(fd, static_cast<int64_t>(text.size()), lines);
    ::close(fd);
    std::filesystem::remove(dir_.path() + "/tail.log");
    return offset;
  }
  test::TempDir dir_;
};

TEST_F(LogFilesTest, TailOffsetCountsLines) {
  EXPECT_EQ(Tail("a\nb\nc\n", 1), 4);
  EXPECT_EQ(Tail("a\nb\nc\n", 2), 2);
  EXPECT_EQ(Tail("a\nb\nc\n", 3), 0);
  EXPECT_EQ(Tail("a\nb\nc\n", 10), 0);
  EXPECT_EQ(Tail("a\nb\nc\n", 0), 6);
  EXPECT_EQ(Tail("a\nb\nunfinished", 1), 4);
  // Across the 64 KiB read blocks.
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "line " + std::to_string(i) + "\n";
  const int64_t offset = Tail(big, 3);
  EXPECT_EQ(big.substr(static_cast<size_t>(offset)), "line 19997\nline 19998\nline 19999\n");
}

TEST_F(LogFilesTest, FindsPodFoldersAndRestartCounts) {
  Write("default_web_uid-old/app/0.log", "x");
  Write("default_web_uid-new/app/0.log", "x");
  // The old folder is older by an hour, whatever order the writes landed in.
  const std::string old_dir = dir_.path() + "/default_web_uid-old";
  std::filesystem::last_write_time(
      old_dir, std::filesystem::last_write_time(old_dir) - std::chrono::hours(1));
  Write("default_web_uid-new/app/2.log", "x");
  Write("default_web_uid-new/app/10.log", "x");
  Write("default_web_uid-new/app/junk.txt", "x");
  Write("default_webx_uid/app/0.log", "x");
  const std::string root = dir_.path();
  auto newest = FindPodLogDir(root, "default", "web", std::nullopt);
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(*newest, root + "/default_web_uid-new");
  auto exact = FindPodLogDir(root, "default", "web", std::string("uid-old"));
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(*exact, root + "/default_web_uid-old");
  auto missing = FindPodLogDir(root, "default", "nope", std::nullopt);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "pod \"nope\" does not exist");

  EXPECT_EQ(ListRestartCounts(*newest + "/app"), (std::vector<int>{0, 2, 10}));
  auto current = FindContainerLog(*newest, "web", "app", false);
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->restart_count, 10);
  auto previous = FindContainerLog(*newest, "web", "app", true);
  ASSERT_TRUE(previous.ok());
  EXPECT_EQ(previous->path, *newest + "/app/2.log");
  auto no_previous = FindContainerLog(*exact, "web", "app", true);
  ASSERT_FALSE(no_previous.ok());
  EXPECT_EQ(no_previous.status().message(),
            "previous terminated container \"app\" in pod \"web\" not found");
  auto no_container = FindContainerLog(*exact, "web", "side", false);
  ASSERT_FALSE(no_container.ok());
  EXPECT_EQ(no_container.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace mk8s::kubelet
