// The dns addon: a cluster DNS server inside mk8sd, built on the SDK alone.
//
// Lifecycle (host thread, one call at a time):
//   enable  validates the arguments, resolves the upstreams, applies Service kube-system/kube-dns
//           and ConfigMap kube-system/cluster-dns.
//   start   opens its UDP and TCP sockets through the host, starts the server threads, seeds the
//           records from one list per kind (so answers are right when `mk8s enable` returns),
//           then follows Services, EndpointSlices and Nodes through list+watch subscriptions;
//           writes the kube-dns EndpointSlices (one per Node) as Nodes come and go.
//   status  in-process health: server threads up, lists synced, watches live, counters.
//   stop    cancels the watches, stops and joins the server, drops the records.
//   disable deletes the Service, its EndpointSlices and the ConfigMap.
//
// Threads: every member is touched only on the addon's host thread (lifecycle calls and watch
// callbacks, serialized by the host), except the records, resolver and server, which the server
// threads read and which are thread-safe. Stop cancels the watches before the server and the
// records go away.
//
// Known gap: an object deleted in the instant between the seeding list and the informer's own
// list would linger until the informer's next re-list; both lists run within milliseconds.
#include <mk8s/addon.hpp>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kube_objects.h"
#include "records.h"
#include "resolver.h"
#include "server.h"
#include "upstream.h"

namespace mk8s::dns {
namespace {

using json = nlohmann::json;
using mk8s::sdk::Error;
using mk8s::sdk::WatchEvent;

constexpr const char* kServicesPath = "/api/v1/services";
constexpr const char* kSlicesPath = "/apis/discovery.k8s.io/v1/endpointslices";
constexpr const char* kNodesPath = "/api/v1/nodes";

std::pair<std::string, std::string> MetaName(const json& object) {
  const json meta = object.is_object() ? object.value("metadata", json::object()) : json::object();
  if (!meta.is_object()) return {};
  return {meta.value("namespace", ""), meta.value("name", "")};
}

class DnsAddon : public mk8s::sdk::Addon {
 public:
  explicit DnsAddon(mk8s::sdk::Host& host) : host_(host) {}

  void OnEnable(const mk8s::sdk::Args& args) override {
    port_ = static_cast<uint16_t>(args.GetInt("port", 10053));
    address_ = args.Get("address", "0.0.0.0");
    server_options_ = ServerOptions{};
    server_options_.udp_threads = static_cast<int>(args.GetInt("udp-workers", 2));
    server_options_.reuse_port = args.GetBool("reuseport", true);
    std::vector<Upstream> upstreams;
    if (const std::string given = args.Get("upstream"); !given.empty()) {
      std::string error;
      auto parsed = ParseUpstreams(given, &error);
      if (!parsed) throw Error(MK8S_ERR_INVALID_ARGUMENT, error);
      upstreams = std::move(*parsed);
    } else {
      const std::string path = args.Get("resolv-conf", "/etc/resolv.conf");
      upstreams = UpstreamsFromResolvConfFile(path);
      if (upstreams.empty())
        host_.Warn("no IPv4 nameserver in {}: names outside the cluster will fail", path);
    }
    upstreams_.clear();
    for (const Upstream& upstream : upstreams) {  // never forward to ourselves (a loop)
      const bool self =
          upstream.port == port_ && (upstream.host == address_ || address_ == "0.0.0.0");
      if (self || upstream.host == host_.cluster_dns_ip()) {
        host_.Warn("skipping upstream {}: it is this DNS server", upstream.text());
        continue;
      }
      upstreams_.push_back(upstream);
    }
    const std::string ip(host_.cluster_dns_ip());
    host_.Apply(ServiceManifest(ip, port_));
    host_.Apply(ConfigMapManifest(ip, std::string(host_.cluster_domain())));
    host_.Info("Service {}/{} at {} -> port {}", kNamespace, kServiceName, ip, port_);
  }

  void OnStart() override {
    uint16_t bound = 0;
    const int udp = host_.Listen(MK8S_SOCKET_UDP, address_, port_, &bound);
    int tcp = -1;
    try {
      tcp = host_.Listen(MK8S_SOCKET_TCP, address_, port_);
    } catch (...) {
      close(udp);
      throw;
    }
    ZoneConfig zone;
    zone.domain = host_.cluster_domain();
    zone.service_cidr = host_.service_cidr();
    zone.dns_ip = host_.cluster_dns_ip();
    records_ = std::make_unique<ClusterRecords>(zone);
    resolver_ = std::make_unique<Resolver>(*records_, std::make_unique<Forwarder>(upstreams_));
    server_ = std::make_unique<Server>(*resolver_, udp, tcp, server_options_);  // owns both fds
    server_->Start();
    host_.Info("serving DNS on {}:{} (udp, tcp); upstreams: {}", address_, bound, UpstreamText());

    Seed();
    watches_.push_back(host_.Subscribe(
        kServicesPath, "", "", [this](WatchEvent e, std::string_view t) { OnService(e, t); }));
    watches_.push_back(host_.Subscribe(
        kSlicesPath, "", "", [this](WatchEvent e, std::string_view t) { OnSlice(e, t); }));
    watches_.push_back(host_.Subscribe(kNodesPath, "", "",
                                       [this](WatchEvent e, std::string_view t) { OnNode(e, t); }));
    ReconcileSlices();
  }

  void OnStop() noexcept override {
    watches_.clear();  // each Watch cancels itself: no callback runs after this
    if (server_) server_->Stop();
    server_.reset();
    resolver_.reset();
    records_.reset();
    synced_ = false;
    nodes_.clear();
  }

  void OnDisable() override {
    const std::string ip(host_.cluster_dns_ip());
    host_.DeleteManifest(ServiceManifest(ip, port_));
    host_.DeleteManifest(ConfigMapManifest(ip, std::string(host_.cluster_domain())));
    for (const std::string& name : ManagedSlices()) DeleteSlice(name);
    applied_.clear();
  }

  mk8s::sdk::Health OnStatus() override {
    if (!server_ || !server_->healthy()) return {false, "the DNS server threads are not running"};
    if (!synced_) return {false, "the Service and EndpointSlice lists have not synced"};
    for (const mk8s::sdk::Watch& watch : watches_) {
      if (!watch.active()) return {false, "a watch on the API has stopped"};
    }
    const ResolverStats& s = resolver_->stats();
    std::string message = fmt::format(
        "serving {}:{} udp+tcp, {} services, {} endpointslices; {} queries ({} local, {} cached, "
        "{} forwarded, {} servfail, {} formerr); upstreams {}",
        address_, port_, records_->service_count(), records_->slice_count(), s.queries.load(),
        s.local.load(), s.cache_hits.load(), s.forwarded.load(), s.servfail.load(),
        s.formerr.load(), UpstreamText());
    if (!slice_error_.empty()) return {false, message + "; EndpointSlices: " + slice_error_};
    return {true, message};
  }

 private:
  std::string UpstreamText() const {
    std::string text;
    for (const Upstream& u : upstreams_) text += (text.empty() ? "" : ",") + u.text();
    return text.empty() ? "none" : text;
  }

  json List(const std::string& path, const std::string& query = "") {
    const mk8s::sdk::ApiResponse got = host_.Request("GET", path, {}, query);
    if (!got.ok())
      throw Error(MK8S_ERR_UNAVAILABLE, fmt::format("listing {}: HTTP {}", path, got.status));
    json list = json::parse(got.body, nullptr, false);
    if (list.is_discarded() || !list.contains("items") || !list["items"].is_array()) {
      throw Error(MK8S_ERR_INTERNAL, "listing " + path + ": not a list");
    }
    return list["items"];
  }

  // One list per kind, so that the records are complete before the first answer.
  void Seed() {
    std::vector<Service> services;
    for (const json& item : List(kServicesPath)) {
      if (auto service = ServiceFromJson(item)) services.push_back(std::move(*service));
    }
    std::vector<Slice> slices;
    for (const json& item : List(kSlicesPath)) {
      if (auto slice = SliceFromJson(item)) slices.push_back(std::move(*slice));
    }
    records_->ReplaceServices(std::move(services));
    records_->ReplaceSlices(std::move(slices));
    for (const json& item : List(kNodesPath)) {
      if (auto node = NodeInternalIp(item)) nodes_[node->first] = node->second;
    }
    synced_ = true;
  }

  void OnService(WatchEvent event, std::string_view text) {
    const json object = json::parse(text, nullptr, false);
    const auto [ns, name] = MetaName(object);
    std::optional<Service> service;
    if (event != WatchEvent::kDeleted) service = ServiceFromJson(object);
    if (service) {
      records_->UpsertService(std::move(*service));
    } else if (!name.empty()) {
      records_->RemoveService(ToLower(ns), ToLower(name));
    }
  }

  void OnSlice(WatchEvent event, std::string_view text) {
    const json object = json::parse(text, nullptr, false);
    const auto [ns, name] = MetaName(object);
    std::optional<Slice> slice;
    if (event != WatchEvent::kDeleted) slice = SliceFromJson(object);
    if (slice) {
      records_->UpsertSlice(std::move(*slice));
    } else if (!name.empty()) {
      records_->RemoveSlice(ToLower(ns), name);
    }
  }

  void OnNode(WatchEvent event, std::string_view text) {
    const json object = json::parse(text, nullptr, false);
    const std::string name = MetaName(object).second;
    if (name.empty()) return;
    std::optional<std::pair<std::string, std::string>> node;
    if (event != WatchEvent::kDeleted) node = NodeInternalIp(object);
    if (node) {
      nodes_[name] = node->second;
    } else {
      nodes_.erase(name);
    }
    ReconcileSlices();
  }

  // The address the kube-dns-local slice points at before any Node exists: the listen address
  // when it is a specific, non-loopback one, else this node's first IP.
  std::string LocalIp() const {
    if (address_ != "0.0.0.0" && address_.rfind("127.", 0) != 0) return address_;
    const std::string ips(host_.node_ips());
    return ips.substr(0, ips.find(','));
  }

  std::vector<std::string> ManagedSlices() {
    std::vector<std::string> names;
    const std::string selector =
        std::string("endpointslice.kubernetes.io/managed-by=") + kManagedBy;
    for (const json& item :
         List(std::string("/apis/discovery.k8s.io/v1/namespaces/") + kNamespace + "/endpointslices",
              "labelSelector=" + selector)) {
      names.push_back(MetaName(item).second);
    }
    return names;
  }

  void DeleteSlice(const std::string& name) {
    const mk8s::sdk::ApiResponse got =
        host_.Request("DELETE", std::string("/apis/discovery.k8s.io/v1/namespaces/") + kNamespace +
                                    "/endpointslices/" + name);
    if (!got.ok() && got.status != 404) {
      throw Error(fmt::format("deleting EndpointSlice {}: HTTP {}", name, got.status));
    }
  }

  // Brings the kube-dns EndpointSlices to one per Node. Failures are kept for status and
  // retried on the next Node event or start.
  void ReconcileSlices() {
    try {
      const std::map<std::string, std::string> desired = DesiredSlices(nodes_, LocalIp(), port_);
      for (const auto& [name, manifest] : desired) {
        if (applied_[name] == manifest) continue;
        host_.Apply(manifest);
        applied_[name] = manifest;
      }
      std::vector<std::string> existing = ManagedSlices();
      for (const std::string& name : existing) {
        if (desired.count(name) == 0) DeleteSlice(name);
      }
      for (auto it = applied_.begin(); it != applied_.end();) {
        it = desired.count(it->first) == 0 ? applied_.erase(it) : std::next(it);
      }
      slice_error_.clear();
    } catch (const std::exception& e) {
      applied_.clear();  // unknown state: re-apply everything next time
      slice_error_ = e.what();
      host_.Warn("EndpointSlices for {}: {}", kServiceName, slice_error_);
    }
  }

  mk8s::sdk::Host& host_;
  uint16_t port_ = 10053;
  std::string address_ = "0.0.0.0";
  ServerOptions server_options_;
  std::vector<Upstream> upstreams_;
  // Destroyed bottom-up: watches first, then the server, then what it reads.
  std::unique_ptr<ClusterRecords> records_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<Server> server_;
  std::map<std::string, std::string> nodes_;    // node name -> IPv4 InternalIP
  std::map<std::string, std::string> applied_;  // slice name -> manifest last applied
  std::string slice_error_;
  bool synced_ = false;
  std::vector<mk8s::sdk::Watch> watches_;
};

mk8s::sdk::Manifest MakeManifest() {
  using mk8s::sdk::Argument;
  mk8s::sdk::Manifest manifest;
  manifest.name = "dns";
  manifest.version = "1.0.0";
  manifest.description = "Cluster DNS for service discovery (CoreDNS-compatible, in mk8sd)";
  const std::string ip =
      R"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3})";
  const std::string upstream = ip + "(:[0-9]{1,5})?";
  // First, so that `mk8s enable dns:1.1.1.1,8.8.8.8` sets it (MicroK8s's syntax).
  manifest.args.push_back(Argument::String(
      "upstream", "upstream nameservers IPV4[:PORT],... (default: those of resolv-conf)",
      std::nullopt, upstream + "(," + upstream + ")*"));
  manifest.args.push_back(
      Argument::Int("port", "UDP and TCP port the server listens on", 1, 65535, "10053"));
  manifest.args.push_back(Argument::String("address", "IPv4 address to listen on", "0.0.0.0", ip));
  manifest.args.push_back(Argument::String("resolv-conf", "file naming the default upstreams",
                                           "/etc/resolv.conf", "/[A-Za-z0-9._/-]*"));
  manifest.args.push_back(
      Argument::Int("udp-workers", "threads answering UDP queries", 1, 64, "2"));
  manifest.args.push_back(Argument::Bool(
      "reuseport", "one SO_REUSEPORT socket per UDP worker (false: they share one)", "true"));
  return manifest;
}

}  // namespace
}  // namespace mk8s::dns

MK8S_ADDON(mk8s::dns::DnsAddon, mk8s::dns::MakeManifest())
