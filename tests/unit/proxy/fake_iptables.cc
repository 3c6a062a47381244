// A stand-in for iptables, iptables-restore and iptables-save (chosen by the basename of argv[0];
// the test symlinks those names to this binary) that records what kube-proxy asks of it in
// $FAKE_IPTABLES_DIR instead of touching the kernel:
//   iptables-restore: stdin -> restore-<n> (n = 1, 2, ...); fails while the file `fail` exists
//   iptables-save -t T: prints the file save-T (if any)
//   iptables -t T -C/-I/-D/-N CHAIN ARGS: a rule set kept as lines in `jumps`
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  const char* dir_env = std::getenv("FAKE_IPTABLES_DIR");
  if (dir_env == nullptr) return 3;
  const fs::path dir(dir_env);
  const std::string tool = fs::path(argv[0]).filename();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "--version") return 0;

  if (tool == "iptables-restore") {
    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (fs::exists(dir / "fail")) {
      std::cerr << "iptables-restore: line 2 failed (fake)\n";
      return 1;
    }
    int n = 1;
    while (fs::exists(dir / ("restore-" + std::to_string(n)))) ++n;
    std::ofstream(dir / ("restore-" + std::to_string(n) + ".tmp")) << input;
    fs::rename(dir / ("restore-" + std::to_string(n) + ".tmp"),
               dir / ("restore-" + std::to_string(n)));
    return 0;
  }
  if (tool == "iptables-save") {
    if (args.size() == 2 && args[0] == "-t") {
      std::ifstream in(dir / ("save-" + args[1]));
      std::cout << in.rdbuf();
    }
    return 0;
  }
  // iptables -w 5 -t TABLE OP CHAIN [1] ARGS...
  if (args.size() < 6 || args[2] != "-t") return 2;
  const std::string op = args[4];
  std::string rule = args[3] + " " + args[5];
  for (size_t i = (op == "-I" ? 7 : 6); i < args.size(); ++i) rule += " " + args[i];
  std::vector<std::string> rules;
  {
    std::ifstream in(dir / "jumps");
    for (std::string line; std::getline(in, line);) rules.push_back(line);
  }
  auto found = std::find(rules.begin(), rules.end(), rule);
  if (op == "-N") return 0;
  if (op == "-C") return found != rules.end() ? 0 : 1;
  if (op == "-I") rules.push_back(rule);
  if (op == "-D") {
    if (found == rules.end()) return 1;
    rules.erase(found);
  }
  std::ofstream out(dir / "jumps");
  for (const std::string& line : rules) out << line << "\n";
  return 0;
}
