#include "kubelet/server/kubelet_server.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

#include "apiserver/http/http_server.h"

namespace mk8s::kubelet {
namespace {

namespace http = apiserver::http;

Result<std::string> ReadPem(const std::string& path, const char* what) {
  if (path.empty())
    return Status(Code::kInvalidArgument, std::string("no ") + what + " file given");
  std::ifstream in(path);
  if (!in)
    return Status(Code::kInvalidArgument, std::string("cannot read the ") + what + " " + path);
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN") == std::string::npos)
    return Status(Code::kInvalidArgument, path + " is not a PEM file");
  return text.str();
}

void SendText(http::Responder& responder, int status, std::string message) {
  responder.Send(
      http::Response{status, "text/plain; charset=utf-8", {}, std::move(message) + "\n"});
}

// "/containerLogs/ns/pod/container" -> the three segments (already percent-decoded).
bool SplitLogPath(const std::string& path, std::vector<std::string>* parts) {
  static const std::string kPrefix = "/containerLogs/";
  if (path.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  std::stringstream rest(path.substr(kPrefix.size()));
  for (std::string part; std::getline(rest, part, '/');) parts->push_back(part);
  return parts->size() == 3;
}

class KubeletServerImpl final : public KubeletServer {
 public:
  explicit KubeletServerImpl(KubeletServerOptions options)
      : options_(std::move(options)), streamer_(options_.log_root, options_.pod_uid_lookup),
        unadopted_fd_(options_.listening_fd) {}
  ~KubeletServerImpl() override {
    Stop();
    if (unadopted_fd_ >= 0) ::close(unadopted_fd_);  // Start failed before the HTTP server
  }

  Status Start() {
    Result<std::string> cert = ReadPem(options_.cert_file, "serving certificate");
    if (!cert.ok()) return cert.status();
    Result<std::string> key = ReadPem(options_.key_file, "serving key");
    if (!key.ok()) return key.status();
    Result<std::string> ca = ReadPem(options_.client_ca_file, "client CA");
    if (!ca.ok()) return ca.status();
    http::ServerOptions http_options;
    http_options.bind_address = options_.bind_address;
    http_options.port = options_.port;
    http_options.listening_fd = std::exchange(unadopted_fd_, -1);  // HttpServer::Start owns it
    http_options.cert_pem = *cert;
    http_options.key_pem = *key;
    http_options.client_ca_pem = *ca;
    http_options.max_body_bytes = 64 * 1024;  // no endpoint takes a body
    http_options.threads = options_.threads;
    auto server = http::HttpServer::Start(
        http_options, [this](http::Request request, std::shared_ptr<http::Responder> responder) {
          Serve(std::move(request), std::move(responder));
        });
    if (!server.ok()) {
      return Status(server.status().code(), "kubelet server: " + server.status().message());
    }
    http_ = std::move(*server);
    spdlog::info("kubelet server serving on https://{}:{} (logs under {})", options_.bind_address,
                 http_->port(), options_.log_root);
    return Status::Ok();
  }

  uint16_t port() const override { return http_ ? http_->port() : 0; }

  Status ReplaceCertificate(const std::string& cert_pem, const std::string& key_pem) override {
    return http_->ReplaceCertificate(cert_pem, key_pem);
  }

  void Stop() override {
    std::lock_guard lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    if (http_) http_->Stop();  // no new requests; connections closed
    streamer_.Stop();          // open log responses end
  }

 private:
  // Runs on a transport thread; never touches the disk (the streamer does).
  void Serve(http::Request request, std::shared_ptr<http::Responder> responder) {
    if (request.path == "/healthz") return SendText(*responder, 200, "ok");
    if (!request.peer.verified) return SendText(*responder, 401, "Unauthorized");
    if (options_.streaming && options_.streaming(request, responder)) return;
    std::vector<std::string> parts;
    if (!SplitLogPath(request.path, &parts)) return SendText(*responder, 404, "404 page not found");
    if (request.method != "GET") return SendText(*responder, 405, "405: Method Not Allowed");
    Result<LogOptions> log_options =
        ParseLogOptions(request.query, std::chrono::system_clock::now());
    if (!log_options.ok()) return SendText(*responder, 400, log_options.status().message());
    LogRequest log_request{parts[0], parts[1], parts[2], *log_options};
    streamer_.Submit(std::move(log_request), std::move(responder));
  }

  const KubeletServerOptions options_;
  LogStreamer streamer_;
  int unadopted_fd_;  // options_.listening_fd until handed to the HTTP server; then -1
  std::unique_ptr<http::HttpServer> http_;
  std::mutex stop_mu_;
  bool stopped_ = false;  // GUARDED_BY(stop_mu_)
};

}  // namespace

Result<std::unique_ptr<KubeletServer>> KubeletServer::Start(KubeletServerOptions options) {
  auto server = std::make_unique<KubeletServerImpl>(std::move(options));
  if (Status status = server->Start(); !status.ok()) return status;
  return std::unique_ptr<KubeletServer>(std::move(server));
}

}  // namespace mk8s::kubelet
