// The ABI guard: sdk/include/mk8s/abi.h may not change unless its version changes too.
// abi_versions.txt records "MAJOR.MINOR sha256" for every version; the normalized header's hash
// must match the line of the version it declares, and that line must be the last one.
#include <gtest/gtest.h>
#include <mk8s/abi.h>
#include <openssl/evp.h>

#include <fstream>
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

TEST(AbiHash, NormalizationIgnoresCommentsAndWhitespace) {
  EXPECT_EQ(Normalize("int  a; /* x */\n// y\nint b;"), Normalize("int a;\nint b;"));
  EXPECT_NE(Normalize("int a;"), Normalize("long a;"));
}

TEST(AbiLayout, CompilesAsPureC) { EXPECT_EQ(mk8s_abi_layout_checked(), 1); }

}  // namespace
