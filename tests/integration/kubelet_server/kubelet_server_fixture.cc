// kubelet_server_fixture: runs only a KubeletServer, for tests of the logs path without a real
// kubelet. It issues (or reuses) the node's serving certificate in the given credentials folder
// (whose cluster CA an mk8sd created), serves, prints "port=<n>" on stdout, and exits when
// stdin closes or on SIGTERM/SIGINT.
//
//   kubelet_server_fixture --credentials-dir DIR --log-root DIR [--node-name N] [--port P]
#include <poll.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kubelet/server/kubelet_server.h"
#include "pki/kubelet_certs.h"

namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "kubelet_server_fixture: %s\nusage: kubelet_server_fixture --credentials-dir DIR "
               "--log-root DIR [--node-name NAME] [--port PORT]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string credentials_dir, log_root, node_name = "kubelet-fixture";
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return Usage(("missing value for " + flag).c_str());
    const std::string value = argv[++i];
    if (flag == "--credentials-dir") {
      credentials_dir = value;
    } else if (flag == "--log-root") {
      log_root = value;
    } else if (flag == "--node-name") {
      node_name = value;
    } else if (flag == "--port") {
      port = std::atoi(value.c_str());
    } else {
      return Usage(("unknown flag " + flag).c_str());
    }
  }
  if (credentials_dir.empty() || log_root.empty()) return Usage("missing a required flag");

  spdlog::set_default_logger(spdlog::stderr_color_mt("kubelet"));  // stdout carries the port
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto files = mk8s::pki::LoadOrCreateKubeletServingCert(credentials_dir, node_name, {"127.0.0.1"});
  if (!files.ok()) return Usage(files.status().message().c_str());
  mk8s::kubelet::KubeletServerOptions options;
  options.bind_address = "127.0.0.1";
  options.port = static_cast<uint16_t>(port);
  options.log_root = log_root;
  options.cert_file = files->cert_file;
  options.key_file = files->key_file;
  options.client_ca_file = files->ca_file;
  auto server = mk8s::kubelet::KubeletServer::Start(std::move(options));
  if (!server.ok()) return Usage(server.status().message().c_str());
  std::printf("port=%u\n", (*server)->port());
  std::fflush(stdout);

  // Wait for stdin to close or a stop signal.
  for (;;) {
    struct pollfd input {
      STDIN_FILENO, POLLIN, 0
    };
    const int ready = poll(&input, 1, 200);
    if (ready > 0) {
      char buffer[256];
      if (read(STDIN_FILENO, buffer, sizeof(buffer)) <= 0) break;
    }
    struct timespec zero {
      0, 0
    };
    if (sigtimedwait(&stop, nullptr, &zero) > 0) break;
  }
  (*server)->Stop();
  return 0;
}
