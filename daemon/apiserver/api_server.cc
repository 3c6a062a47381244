#include "apiserver/api_server.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <nlohmann/json.hpp>

#include "apiserver/authenticator.h"
#include "apiserver/body_codec.h"
#include "apiserver/bootstrap.h"
#include "apiserver/discovery.h"
#include "apiserver/http/http_server.h"
#include "apiserver/openapi.h"
#include "apiserver/proxy/kubelet_client.h"
#include "apiserver/registry/admission.h"
#include "apiserver/registry/rest_storage.h"
#include "apiserver/registry/watch_cache.h"
#include "apiserver/resources.h"
#include "apiserver/timer_queue.h"
#include "common/version.h"
#include "pki/cluster_pki.h"
#include "pki/jwt.h"
#include "pki/kubelet_certs.h"
#include "pki/static_tokens.h"
#include "pki/token_file.h"
#include "store/store.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

std::string VersionJson() {
  const std::string git_version = kKubernetesVersion;
  return json{{"major", "1"},
              {"minor", "32"},
              {"gitVersion", git_version},
              {"gitCommit", kGitCommit},
              {"gitTreeState", "clean"},
              {"buildDate", "2026-01-01T00:00:00Z"},
              {"goVersion", "mk8s-c++20"},
              {"compiler", "gcc"},
              {"platform", "linux/amd64"}}
      .dump();
}

Status WriteFileAtomically(const std::string& path, const std::string& content, mode_t mode) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    if (!out) return Status(Code::kInternal, "cannot write " + temp);
    out << content;
  }
  chmod(temp.c_str(), mode);
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    return Status(Code::kInternal, "cannot rename " + temp + " to " + path);
  }
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(Code::kNotFound, "cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Caps concurrent requests like kube-apiserver's --max-requests-inflight /
// --max-mutating-requests-inflight: past the cap a request gets 429 with Retry-After instead of
// queueing without bound. The slot is released when the request is answered.
class InflightLimiter {
 public:
  explicit InflightLimiter(int limit) : limit_(limit) {}
  bool TryAcquire() {
    if (in_flight_.fetch_add(1) >= limit_) {
      in_flight_.fetch_sub(1);
      return false;
    }
    return true;
  }
  void Release() { in_flight_.fetch_sub(1); }

 private:
  const int limit_;
  std::atomic<int> in_flight_{0};
};

class LimitedResponder final : public http::Responder {
 public:
  LimitedResponder(std::shared_ptr<http::Responder> inner, InflightLimiter* limiter)
      : inner_(std::move(inner)), limiter_(limiter) {}
  ~LimitedResponder() override { Done(); }
  void Send(http::Response response) override {
    Done();
    inner_->Send(std::move(response));
  }
  std::shared_ptr<http::ResponseStream> StartStream(int status, std::string content_type,
                                                    std::vector<http::Header> headers) override {
    Done();  // long-running requests do not hold a slot
    return inner_->StartStream(status, std::move(content_type), std::move(headers));
  }
  std::shared_ptr<http::UpgradedConnection> Upgrade(std::vector<http::Header> headers) override {
    Done();  // exec / port-forward sessions do not hold a slot either
    return inner_->Upgrade(std::move(headers));
  }
  bool AcceptsObjects() const override { return inner_->AcceptsObjects(); }
  void SendObjects(http::Response envelope, std::vector<http::SharedObject> items) override {
    Done();
    inner_->SendObjects(std::move(envelope), std::move(items));
  }

 private:
  void Done() {
    if (!released_.exchange(true)) limiter_->Release();
  }
  std::shared_ptr<http::Responder> inner_;
  InflightLimiter* limiter_;
  std::atomic<bool> released_{false};
};

class ApiServerImpl final : public ApiServer {
 public:
  ApiServerImpl(const ApiServerOptions& options, store::Store* store)
      : options_(options), store_(store), registry_(ResourceRegistry::Builtin()),
        admission_(AdmissionOptions{options.service_cidr}) {}
  ~ApiServerImpl() override { Stop(); }

  Status Start() {
    pki::ServingSans sans;
    sans.ips = options_.node_ips;
    Result<pki::ClusterPki> pki = pki::ClusterPki::LoadOrCreate(options_.credentials_dir, sans);
    if (!pki.ok()) return pki.status();
    pki_ = std::move(*pki);
    auto tokens = pki::TokenFile::Open(pki_.Path(pki::ClusterPki::kTokenFile));
    if (!tokens.ok()) return tokens.status();
    tokens_ = std::move(*tokens);
    auto verifier = pki::JwtVerifier::Create({pki_.service_account_public_key_pem()});
    if (!verifier.ok()) return verifier.status();
    jwt_verifier_ = std::move(*verifier);
    authenticator_ = std::make_unique<Authenticator>(tokens_.get(), jwt_verifier_.get());
    auto signer = pki::JwtSigner::Create(pki_.service_account_key_pem());
    if (!signer.ok()) return signer.status();
    jwt_signer_ = std::move(*signer);

    WatchCache::HistoryBounds history;
    history.capacity = options_.watch_history_capacity;
    history.min_events = options_.watch_history_min_events;
    history.window = options_.watch_history_window;
    // MK8S_WATCH_FANOUT_THREADS=N fixes the watch fan-out's threads (1: the dispatcher alone),
    // an A/B switch for benchmarks; unset or 0: one per core (watch_cache.h).
    size_t fanout_threads = 0;
    if (const char* value = std::getenv("MK8S_WATCH_FANOUT_THREADS")) {
      fanout_threads = static_cast<size_t>(std::clamp(std::atoi(value), 0, 16));
    }
    auto cache = WatchCache::Start(store_, "/registry/", history, fanout_threads);
    if (!cache.ok()) return cache.status();
    cache_ = std::move(*cache);
    admission_.LoadAllocations(*cache_);
    timers_ = std::make_unique<TimerQueue>();
    if (Status status = StartKubeletClient(); !status.ok()) return status;
    storage_ = std::make_unique<RestStorage>(store_, cache_.get(), timers_.get(), &admission_,
                                             jwt_signer_.get(), kubelet_.get());

    http::ServerOptions http_options;
    http_options.bind_address = options_.bind_address;
    http_options.port = options_.port;
    http_options.cert_pem = pki_.server().cert_pem + pki_.ca().cert_pem;
    http_options.key_pem = pki_.server().key_pem;
    http_options.client_ca_pem = pki_.ca().cert_pem;
    http_options.threads = options_.threads;
    auto server = http::HttpServer::Start(
        http_options, [this](http::Request request, std::shared_ptr<http::Responder> responder) {
          Serve(std::move(request), std::move(responder));
        });
    if (!server.ok()) return server.status();
    http_ = std::move(*server);
    const std::string address = (options_.node_ips.empty() ? "127.0.0.1" : options_.node_ips[0]) +
                                ":" + std::to_string(http_->port());
    discovery_ = std::make_unique<Discovery>(registry_, address);
    openapi_ = std::make_unique<OpenApi>(registry_);
    spdlog::info("OpenAPI v3: {} bytes built in {} ms", openapi_->total_bytes(),
                 openapi_->build_micros() / 1000);

    if (Status status = Bootstrap(store_, &admission_, options_.node_ips, http_->port());
        !status.ok()) {
      return status;
    }
    if (Status status = WriteAdminKubeconfig(pki_.admin()); !status.ok()) return status;
    ScheduleCertificateCheck();
    spdlog::info("API server serving on https://{}:{}", options_.bind_address, http_->port());
    return Status::Ok();
  }

  uint16_t port() const override { return http_ ? http_->port() : 0; }

  Result<std::string> RefreshCertificates() override {
    for (const char* file : {pki::ClusterPki::kCaCert, pki::ClusterPki::kCaKey}) {
      if (!std::filesystem::exists(pki_.Path(file))) {
        return Status(Code::kUnavailable,
                      pki_.Path(file) + " is gone: restore it from a backup (certificates are "
                                        "not renewed without the cluster CA)");
      }
    }
    pki::ServingSans sans;
    sans.ips = options_.node_ips;
    Result<pki::ClusterPki> current = pki::ClusterPki::LoadOrCreate(options_.credentials_dir, sans);
    if (!current.ok()) return current.status();
    if (current->ca().cert_pem != pki_.ca().cert_pem) {
      return Status(Code::kUnavailable,
                    "the cluster CA in " + options_.credentials_dir +
                        " changed while mk8sd ran: restart mk8sd to use it");
    }
    std::string renewed;
    if (current->server().cert_pem != pki_.server().cert_pem) {
      Status replaced = http_->ReplaceCertificate(current->server().cert_pem + current->ca().cert_pem,
                                                  current->server().key_pem);
      if (!replaced.ok()) return replaced;
      renewed += " serving";
    }
    if (current->admin().cert_pem != pki_.admin().cert_pem) {
      if (Status written = WriteAdminKubeconfig(current->admin()); !written.ok()) return written;
      renewed += " admin";
    }
    Result<pki::CertFiles> files = pki::LoadOrCreateKubeletClientCert(options_.credentials_dir);
    if (!files.ok()) return files.status();
    Result<std::string> cert = ReadFile(files->cert_file);
    Result<std::string> key = ReadFile(files->key_file);
    if (!cert.ok()) return cert.status();
    if (!key.ok()) return key.status();
    if (*cert != kubelet_client_cert_pem_) {
      if (Status replaced = kubelet_->ReplaceClientCertificate(*cert, *key); !replaced.ok()) {
        return replaced;
      }
      kubelet_client_cert_pem_ = *cert;
      renewed += " kubelet-client";
    }
    pki_ = std::move(*current);  // only Start() and this method read pki_'s certificates
    return renewed.empty() ? renewed : renewed.substr(1);
  }

  http::Handler InProcessHandler(std::string user, std::vector<std::string> groups) override {
    return [this, user = std::move(user), groups = std::move(groups)](
               http::Request request, std::shared_ptr<http::Responder> responder) {
      if (stopped_) {
        return SendError(*responder, ApiError::ServiceUnavailable("the API server is stopping"));
      }
      request.peer = http::PeerCertificate{true, user, groups};
      request.remote_address = "in-process";
      Serve(std::move(request), std::move(responder));
    };
  }

  void SetExtension(std::string prefix, ExtensionHandler handler) override {
    std::lock_guard lock(extension_mu_);
    extension_prefix_ = std::move(prefix);
    extension_ = std::make_shared<const ExtensionHandler>(std::move(handler));
  }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    if (http_) http_->Stop();  // no new requests; connections closed
    if (kubelet_) kubelet_->Stop();  // proxied log streams end
    timers_.reset();
    cache_.reset();            // ends watches
  }

 private:
  void Serve(http::Request request, std::shared_ptr<http::Responder> responder) {
    const std::string& path = request.path;
    if (path == "/healthz" || path == "/livez" || path == "/readyz" ||
        path.rfind("/healthz/", 0) == 0 || path.rfind("/livez/", 0) == 0 ||
        path.rfind("/readyz/", 0) == 0) {
      return responder->Send(http::Response{200, "text/plain; charset=utf-8", {}, "ok"});
    }
    if (path == "/version" || path == "/version/") {
      return responder->Send(http::Response{200, "application/json", {}, VersionJson()});
    }
    UserInfo user;
    switch (authenticator_->Authenticate(request, &user)) {
      case AuthOutcome::kAuthenticated: break;
      case AuthOutcome::kAnonymous:
      case AuthOutcome::kRejected:
        return SendError(*responder, ApiError::Unauthorized());
    }
    if (auto extension = ExtensionFor(path)) {
      return (*extension)(request, user.name, std::move(responder));
    }
    RequestInfo info = ParseRequestInfo(request.method, request.path, request.query);
    if (!info.is_resource_request) {
      if (path == "/api" || path == "/apis" || path.rfind("/api/", 0) == 0 ||
          path.rfind("/apis/", 0) == 0) {
        DiscoveryDocument doc = discovery_->Serve(path, request.HeaderValue("accept"));
        return responder->Send(http::Response{doc.status, doc.content_type, {}, doc.body});
      }
      if (path == "/openapi/v3" || path.rfind("/openapi/v3/", 0) == 0) {
        auto [status, body] = openapi_->Serve(path);
        return responder->Send(http::Response{status, "application/json", {}, body});
      }
      return SendError(*responder, ApiError{404, "NotFound",
                                            "the server could not find the requested resource"});
    }
    const ResourceInfo* resource = registry_.Find(info.group, info.version, info.resource);
    if (resource == nullptr) {
      return SendError(*responder,
                       ApiError{404, "NotFound", "the server could not find the requested resource"});
    }
    const bool mutating = info.verb != "get" && info.verb != "list" && info.verb != "watch";
    InflightLimiter& limiter = mutating ? mutating_limiter_ : readonly_limiter_;
    // The daemon's own components (in-process) bound their concurrency themselves and are exempt,
    // as upstream's priority-and-fairness exempts the control plane's loopback identity: a burst
    // of external clients must not starve the scheduler's bindings or the controllers.
    if (info.verb != "watch" && request.remote_address != "in-process") {
      if (!limiter.TryAcquire()) {
        return SendError(*responder, ApiError::TooManyRequests(
                                         "too many requests in flight, please try again later", 1));
      }
      responder = std::make_shared<LimitedResponder>(std::move(responder), &limiter);
    }
    RestRequest rest;
    rest.info = std::move(info);
    rest.resource = resource;
    rest.query = QueryParams(request.query);
    rest.user = user;
    rest.http = std::move(request);
    if (!resource->stored) return ServeReview(rest, *responder);
    storage_->Handle(std::move(rest), std::move(responder));
  }

  // RefreshCertificates() every certificate_check_interval, on the timer thread (a renewal is a
  // key generation and a few small fsynced files: milliseconds, about once a year).
  void ScheduleCertificateCheck() {
    timers_->Schedule(TimerQueue::Clock::now() + options_.certificate_check_interval, [this] {
      Result<std::string> renewed = RefreshCertificates();
      if (!renewed.ok()) {
        spdlog::error("certificates: {}", renewed.status().message());
      } else if (!renewed->empty()) {
        spdlog::info("certificates renewed and in use: {}", *renewed);
      }
      ScheduleCertificateCheck();
    });
  }

  // The admin kubeconfig (`mk8s config`, `mk8s kubectl`) with `admin`'s certificate.
  Status WriteAdminKubeconfig(const pki::KeyPair& admin) {
    if (options_.kubeconfig_path.empty()) return Status::Ok();
    const std::string url = "https://127.0.0.1:" + std::to_string(http_->port());
    return WriteFileAtomically(options_.kubeconfig_path,
                               pki::Kubeconfig(url, pki_.ca().cert_pem, admin.cert_pem,
                                               admin.key_pem),
                               0600);
  }

  // The client towards kubelets (pods/log), with the kube-apiserver-kubelet-client certificate.
  Status StartKubeletClient() {
    Result<pki::CertFiles> files = pki::LoadOrCreateKubeletClientCert(options_.credentials_dir);
    if (!files.ok()) return files.status();
    KubeletClientOptions kubelet_options;
    Result<std::string> cert = ReadFile(files->cert_file);
    Result<std::string> key = ReadFile(files->key_file);
    if (!cert.ok()) return cert.status();
    if (!key.ok()) return key.status();
    kubelet_client_cert_pem_ = *cert;
    kubelet_options.client_cert_pem = *cert;
    kubelet_options.client_key_pem = *key;
    kubelet_options.ca_pem = pki_.ca().cert_pem;
    auto client = KubeletClient::Create(kubelet_options);
    if (!client.ok()) return client.status();
    kubelet_ = std::move(*client);
    return Status::Ok();
  }

  // SelfSubjectAccessReview: every authenticated identity may do everything (MicroK8s's default
  // authorizer); RBAC objects are stored for when an RBAC authorizer is plugged in.
  void ServeReview(const RestRequest& request, http::Responder& responder) {
    if (request.info.verb != "create") {
      return SendError(responder, ApiError::MethodNotAllowed("only create is allowed on " +
                                                             request.resource->resource));
    }
    json review;
    if (auto error = DecodeBody(request.http.HeaderValue("content-type"), request.http.body, &review)) {
      return SendError(responder, *error);
    }
    review["apiVersion"] = "authorization.k8s.io/v1";
    review["kind"] = request.resource->kind;
    review["metadata"]["creationTimestamp"] = nullptr;
    review["status"] = {{"allowed", true}, {"reason", "mk8s allows every authenticated user"}};
    SendJson(responder, 201, review.dump());
  }

  const ApiServerOptions options_;
  // Destroyed last: responders still held by store callbacks post into its (stopped) io_context.
  std::unique_ptr<http::HttpServer> http_;
  store::Store* const store_;
  const ResourceRegistry& registry_;
  Admission admission_;
  pki::ClusterPki pki_;  // as last loaded (Start, RefreshCertificates)
  std::string kubelet_client_cert_pem_;  // the one the kubelet client presents
  std::unique_ptr<pki::TokenFile> tokens_;  // known_tokens.csv, re-read when it changes
  std::unique_ptr<pki::JwtVerifier> jwt_verifier_;
  std::unique_ptr<pki::JwtSigner> jwt_signer_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<WatchCache> cache_;
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<KubeletClient> kubelet_;
  std::unique_ptr<RestStorage> storage_;
  std::unique_ptr<Discovery> discovery_;
  std::unique_ptr<OpenApi> openapi_;
  InflightLimiter readonly_limiter_{400};
  InflightLimiter mutating_limiter_{200};
  std::atomic<bool> stopped_{false};

  std::shared_ptr<const ExtensionHandler> ExtensionFor(const std::string& path) const {
    std::lock_guard lock(extension_mu_);
    if (extension_ == nullptr || path.rfind(extension_prefix_, 0) != 0) return nullptr;
    return extension_;
  }
  mutable std::mutex extension_mu_;
  std::string extension_prefix_;                       // GUARDED_BY(extension_mu_)
  std::shared_ptr<const ExtensionHandler> extension_;  // GUARDED_BY(extension_mu_)
};

}  // namespace

std::vector<std::string> DetectNodeIps() {
  std::vector<std::string> ips;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) == 0) {
    for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
      if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
      char text[INET_ADDRSTRLEN];
      auto* address = reinterpret_cast<sockaddr_in*>(it->ifa_addr);
      inet_ntop(AF_INET, &address->sin_addr, text, sizeof(text));
      if (std::string(text).rfind("127.", 0) == 0) continue;
      ips.emplace_back(text);
    }
    freeifaddrs(list);
  }
  if (ips.empty()) ips.push_back("127.0.0.1");
  return ips;
}

Result<std::unique_ptr<ApiServer>> ApiServer::Start(const ApiServerOptions& options,
                                                    store::Store* store) {
  auto server = std::make_unique<ApiServerImpl>(options, store);
  if (Status status = server->Start(); !status.ok()) return status;
  return std::unique_ptr<ApiServer>(std::move(server));
}

}  // namespace mk8s::apiserver
