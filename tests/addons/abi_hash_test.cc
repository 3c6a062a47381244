// The ABI guard: sdk/include/mk8s/abi.h may not change unless its version changes too.
// abi_versions.txt records "MAJOR.MINOR sha256" for every version; the normalized header's hash
// must match the line of the version it declares, and that line must be the last one.
#include <gtest/gtest.h>
#include <mk8s/abi.h>
#include <openssl/evp.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

extern "C" int mk8s_abi_layout_checked(void);  // abi_layout_check.c, compiled as C

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Drops /* */ and // comments and collapses every whitespace run into one space.
std::string Normalize(const std::string& text) {
  std::string out;
  bool space = false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "/*") == 0) {
      const size_t end = text.find("*/", i + 2);
      i = end == std::string::npos ? text.size() : end + 1;
      space = true;
      continue;
    }
    if (text.compare(i, 2, "//") == 0) {
      const size_t end = text.find('\n', i);
      i = end == std::string::npos ? text.size() : end;
      space = true;
      continue;
    }
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string Sha256(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  char byte[3];
  for (unsigned int i = 0; i < length; ++i) {
    std::snprintf(byte, sizeof(byte), "%02x", digest[i]);
    hex += byte;
  }
  return hex;
}

struct Line {
  std::string version;
  std::string hash;
};

std::vector<Line> Versions() {
  std::vector<Line> lines;
  std::istringstream in(ReadFile(MK8S_ABI_VERSIONS_FILE));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Line parsed;
    fields >> parsed.version >> parsed.hash;
    lines.push_back(parsed);
  }
  return lines;
}

TEST(AbiHash, HeaderChangesOnlyWithAVersionBump) {
  const std::string header = ReadFile(MK8S_ABI_HEADER);
  ASSERT_FALSE(header.empty()) << "cannot read " << MK8S_ABI_HEADER;
  const std::string hash = Sha256(Normalize(header));
  const std::string version =
      std::to_string(MK8S_ABI_VERSION_MAJOR) + "." + std::to_string(MK8S_ABI_VERSION_MINOR);
  const std::vector<Line> lines = Versions();
  ASSERT_FALSE(lines.empty()) << "tests/addons/abi_versions.txt records no version: add the line '"
                              << version << " " << hash << "'";
  const Line* recorded = nullptr;
  for (const Line& line : lines) {
    if (line.version == version) recorded = &line;
  }
  ASSERT_NE(recorded, nullptr) << "abi.h declares ABI version " << version
                               << ", which tests/addons/abi_versions.txt does not record: append '"
                               << version << " " << hash << "'";
  EXPECT_EQ(recorded->hash, hash)
      << "sdk/include/mk8s/abi.h changed, but its ABI version " << version
      << " was recorded with another hash. The ABI must not change silently: bump "
         "MK8S_ABI_VERSION_MINOR if fields were only appended at the end of structs, or "
         "MK8S_ABI_VERSION_MAJOR for anything else, then append '<new version> "
      << hash << "' to tests/addons/abi_versions.txt (never edit an old line).";
  EXPECT_EQ(lines.back().version, version)
      << "the last line of abi_versions.txt must be the version abi.h declares";
}

// The frozen copy of the 1.1 header that tests/addons/fixtures builds an ABI 1.1 addon against
// (fixture-abi11) really is 1.1 as released.
TEST(AbiHash, TheFrozen11HeaderIsTheReleased11) {
  const std::string frozen = ReadFile(MK8S_ABI_1_1_HEADER);
  ASSERT_FALSE(frozen.empty()) << "cannot read " << MK8S_ABI_1_1_HEADER;
  const std::string hash = Sha256(Normalize(frozen));
  bool found = false;
  for (const Line& line : Versions()) found = found || (line.version == "1.1" && line.hash == hash);
  EXPECT_TRUE(found) << MK8S_ABI_1_1_HEADER << " is not the 1.1 recorded in abi_versions.txt";
}

// The struct bodies ("typedef struct NAME { ... } NAME;", normalized) of `text`.
std::map<std::string, std::string> StructBodies(const std::string& text) {
  std::map<std::string, std::string> bodies;
  const std::string opening = "typedef struct ";
  for (size_t at = text.find(opening); at != std::string::npos; at = text.find(opening, at + 1)) {
    const size_t name_end = text.find(' ', at + opening.size());
    if (name_end == std::string::npos || text.compare(name_end, 3, " { ") != 0) continue;
    const std::string name = text.substr(at + opening.size(), name_end - at - opening.size());
    const size_t close = text.find("} " + name + ";", name_end);
    if (close == std::string::npos) continue;
    bodies[name] = text.substr(name_end + 3, close - name_end - 3);
  }
  return bodies;
}

// Minor versions only append: every struct of 1.1 is still there and its fields are, in order,
// the first fields of today's struct.
TEST(AbiHash, EveryStructOf11IsAPrefixOfTodays) {
  const auto old_structs = StructBodies(Normalize(ReadFile(MK8S_ABI_1_1_HEADER)));
  const auto new_structs = StructBodies(Normalize(ReadFile(MK8S_ABI_HEADER)));
  ASSERT_GE(old_structs.size(), 10u);
  for (const auto& [name, body] : old_structs) {
    const auto now = new_structs.find(name);
    ASSERT_NE(now, new_structs.end()) << name << " disappeared: that needs a MAJOR version";
    EXPECT_EQ(now->second.compare(0, body.size(), body), 0)
        << name << " changed other than by appending fields: that needs a MAJOR version";
  }
}

TEST(AbiHash, NormalizationIgnoresCommentsAndWhitespace) {
  EXPECT_EQ(Normalize("int  a; /* x */\n// y\nint b;"), Normalize("int a;\nint b;"));
  EXPECT_NE(Normalize("int a;"), Normalize("long a;"));
}

TEST(AbiLayout, CompilesAsPureC) { EXPECT_EQ(mk8s_abi_layout_checked(), 1); }

}  // namespace
