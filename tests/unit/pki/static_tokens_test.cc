// Tests of the static token file (known_tokens.csv) parser and lookup.
#include "pki/static_tokens.h"

#include <gtest/gtest.h>

#include "pki/encoding.h"

namespace mk8s::pki {
namespace {

constexpr const char* kFile =
    "# comment line\n"
    "0123abcd,admin,admin,\"system:masters\"\n"
    "\n"
    "tok-bob, bob ,uid-bob,\"team-a, team-b,system:authenticated\"\r\n"
    "tok-carol,carol,uid-carol\n"
    "\"tok,quoted\",\"dave \"\"d\"\"\",uid-dave,\"\"\n";

TEST(StaticTokensTest, ParsesAndLooksUp) {
  auto tokens = StaticTokens::Parse(kFile);
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  EXPECT_EQ(tokens->entries().size(), 4u);

  auto admin = tokens->Lookup("0123abcd");
  ASSERT_TRUE(admin.has_value());
  EXPECT_EQ(admin->user, "admin");
  EXPECT_EQ(admin->uid, "admin");
  EXPECT_EQ(admin->groups, std::vector<std::string>{"system:masters"});

  auto bob = tokens->Lookup("tok-bob");
  ASSERT_TRUE(bob.has_value());
  EXPECT_EQ(bob->user, "bob");
  EXPECT_EQ(bob->groups, (std::vector<std::string>{"team-a", "team-b", "system:authenticated"}));

  auto carol = tokens->Lookup("tok-carol");
  ASSERT_TRUE(carol.has_value());
  EXPECT_TRUE(carol->groups.empty());

  auto dave = tokens->Lookup("tok,quoted");
  ASSERT_TRUE(dave.has_value());
  EXPECT_EQ(dave->user, "dave \"d\"");
  EXPECT_TRUE(dave->groups.empty());
}

TEST(StaticTokensTest, WrongTokensAreNotFound) {
  auto tokens = StaticTokens::Parse(kFile);
  ASSERT_TRUE(tokens.ok());
  EXPECT_FALSE(tokens->Lookup("0123abce").has_value());
  EXPECT_FALSE(tokens->Lookup("0123abc").has_value());    // prefix
  EXPECT_FALSE(tokens->Lookup("0123abcd ").has_value());  // suffix
  EXPECT_FALSE(tokens->Lookup("").has_value());
  EXPECT_FALSE(tokens->Lookup("admin").has_value());
}

TEST(StaticTokensTest, BadLinesNameTheLine) {
  auto r = StaticTokens::Parse("a,b,c\nonly,two\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos) << r.status().message();
  EXPECT_FALSE(StaticTokens::Parse("t,u,i,\"g1,g2\n").ok());  // unterminated quote
  EXPECT_FALSE(StaticTokens::Parse(",u,i\n").ok());           // empty token
  EXPECT_FALSE(StaticTokens::Parse("t,,i\n").ok());           // empty user
  EXPECT_FALSE(StaticTokens::Parse("t,u\"x,i\n").ok());       // bare quote
  EXPECT_FALSE(StaticTokens::Load("/nonexistent/known_tokens.csv").ok());
  auto empty = StaticTokens::Parse("");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->Lookup("x").has_value());
}

TEST(StaticTokensTest, LaterDuplicateWins) {
  auto r = StaticTokens::Parse("t,first,1\nt,second,2,\"g\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->entries().size(), 1u);
  auto who = r->Lookup("t");
  ASSERT_TRUE(who.has_value());
  EXPECT_EQ(who->user, "second");
}

TEST(StaticTokensTest, FormatLineRoundTrips) {
  StaticToken t{HexEncode(RandomBytes(32)), "admin", "admin", {"system:masters", "g2"}};
  std::string line = StaticTokens::FormatLine(t);
  EXPECT_EQ(line, t.token + ",admin,admin,\"system:masters,g2\"\n");
  StaticToken odd{"to,k", "us er", "", {"a\"b"}};
  auto r = StaticTokens::Parse(StaticTokens::FormatLine(t) + StaticTokens::FormatLine(odd));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto who = r->Lookup("to,k");
  ASSERT_TRUE(who.has_value());
  EXPECT_EQ(who->user, "us er");
  EXPECT_EQ(who->groups, std::vector<std::string>{"a\"b"});
  EXPECT_TRUE(r->Lookup(t.token).has_value());
}

TEST(EncodingTest, Base64Variants) {
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_EQ(Base64Decode("aGVsbG8="), "hello");
  EXPECT_FALSE(Base64Decode("aGVsbG8").has_value());
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_FALSE(Base64UrlDecode("-_9").has_value());  // non-zero trailing bits
  EXPECT_FALSE(Base64UrlDecode("aGVsbG8=").has_value());
  EXPECT_FALSE(Base64UrlDecode("a+b/").has_value());
  EXPECT_EQ(Base64UrlDecode(""), "");
  EXPECT_EQ(HexEncode("\x01\xab"), "01ab");
  EXPECT_EQ(RandomBytes(32).size(), 32u);
}

}  // namespace
}  // namespace mk8s::pki
