#include "pki/token_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_util.h"

namespace mk8s::pki {
namespace {

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

TEST(TokenFileTest, PicksUpAddedTokensAndKeepsTheLastGoodSetOnErrors) {
  testing::TempDir dir;
  const std::string path = dir.File("known_tokens.csv");
  Write(path, "admintoken,admin,admin,\"system:masters\"\n");
  auto file = TokenFile::Open(path, std::chrono::milliseconds(0));
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_TRUE((*file)->Lookup("admintoken").has_value());
  EXPECT_FALSE((*file)->Lookup("nodetoken").has_value());

  // A node's credential added while running (size changes even within one mtime tick).
  Write(path,
        "admintoken,admin,admin,\"system:masters\"\n"
        "nodetoken,system:node:worker,worker,\"system:nodes\"\n");
  auto node = (*file)->Lookup("nodetoken");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->user, "system:node:worker");
  EXPECT_EQ(node->groups, std::vector<std::string>{"system:nodes"});

  // A broken file keeps the tokens loaded before and says why.
  Write(path, "only-a-token\n");
  EXPECT_FALSE((*file)->Reload().ok());
  EXPECT_TRUE((*file)->Lookup("nodetoken").has_value());
  EXPECT_FALSE((*file)->last_error().empty());
}

TEST(TokenFileTest, MissingFileIsAnError) {
  testing::TempDir dir;
  EXPECT_FALSE(TokenFile::Open(dir.File("absent.csv")).ok());
}

}  // namespace
}  // namespace mk8s::pki
