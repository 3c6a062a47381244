#include "kubelet/pod_routes.h"

#include <arpa/inet.h>

#include <sstream>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "client/informer.h"
#include "client/resources.h"

namespace mk8s::kubelet {
namespace {

bool ParseIpv4(const std::string& text, uint32_t* address) {
  in_addr parsed{};
  if (inet_pton(AF_INET, text.c_str(), &parsed) != 1) return false;
  *address = ntohl(parsed.s_addr);
  return true;
}

std::string InternalIp(const nlohmann::json& node) {
  const auto status = node.find("status");
  if (status == node.end() || !status->is_object()) return "";
  const auto addresses = status->find("addresses");
  if (addresses == status->end() || !addresses->is_array()) return "";
  for (const auto& address : *addresses) {
    if (!address.is_object() || address.value("type", "") != "InternalIP") continue;
    const auto value = address.find("address");
    if (value == address.end() || !value->is_string()) continue;
    uint32_t parsed = 0;
    if (ParseIpv4(value->get<std::string>(), &parsed)) return value->get<std::string>();
  }
  return "";
}

}  // namespace

bool InClusterPodRange(const std::string& cidr) {
  const size_t slash = cidr.find('/');
  if (slash == std::string::npos || slash + 1 >= cidr.size() || cidr.size() - slash > 3) {
    return false;
  }
  int prefix = 0;
  for (size_t i = slash + 1; i < cidr.size(); ++i) {
    if (cidr[i] < '0' || cidr[i] > '9') return false;
    prefix = prefix * 10 + (cidr[i] - '0');
  }
  uint32_t address = 0;
  if (prefix < 16 || prefix > 32 || !ParseIpv4(cidr.substr(0, slash), &address)) return false;
  const uint32_t mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
  if ((address & ~mask) != 0) return false;  // host bits set: not a subnet
  return (address & 0xffff0000u) == 0x0a010000u;
}

RouteTable DesiredPodRoutes(const std::vector<nlohmann::json>& nodes, const std::string& self) {
  RouteTable desired;
  for (const auto& node : nodes) {
    if (!node.is_object()) continue;
    const std::string name = node.value("/metadata/name"_json_pointer, std::string());
    if (name.empty() || name == self) continue;
    const std::string cidr = node.value("/spec/podCIDR"_json_pointer, std::string());
    if (!InClusterPodRange(cidr)) continue;
    const std::string via = InternalIp(node);
    if (via.empty()) continue;
    desired[cidr] = via;
  }
  return desired;
}

RouteDiff DiffPodRoutes(const RouteTable& current, const RouteTable& desired) {
  RouteDiff diff;
  for (const auto& [cidr, via] : desired) {
    auto found = current.find(cidr);
    if (found == current.end() || found->second != via) diff.replace[cidr] = via;
  }
  for (const auto& [cidr, via] : current) {
    if (desired.find(cidr) == desired.end()) diff.remove.push_back(cidr);
  }
  return diff;
}

RouteTable ParseRouteTable(const std::string& output) {
  RouteTable table;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string destination, word;
    if (!(words >> destination)) continue;
    if (destination.find('/') == std::string::npos) destination += "/32";
    if (!InClusterPodRange(destination)) continue;
    while (words >> word) {
      if (word == "via") {
        std::string via;
        uint32_t parsed = 0;
        if (words >> via && ParseIpv4(via, &parsed)) table[destination] = via;
        break;
      }
    }
  }
  return table;
}

Result<std::unique_ptr<PodRoutes>> PodRoutes::Start(PodRoutesOptions options,
                                                    std::shared_ptr<client::Client> client) {
  if (!options.run) return Status(Code::kInvalidArgument, "pod routes: no command runner");
  std::unique_ptr<PodRoutes> routes(new PodRoutes());
  routes->options_ = std::move(options);
  // Routes left by an earlier run: the first sync removes those of vanished nodes.
  auto shown = routes->options_.run({routes->options_.ip, "-4", "route", "show"});
  if (shown.ok() && shown->exit_code == 0) {
    routes->applied_ = ParseRouteTable(shown->out);
  } else {
    spdlog::warn("pod routes: cannot read the route table: {}",
                 shown.ok() ? shown->err : shown.status().message());
  }
  routes->nodes_ = std::make_unique<client::Informer>(std::move(client), client::kNodes);
  PodRoutes* self = routes.get();
  auto mark = [self] {
    std::lock_guard<std::mutex> lock(self->mu_);
    self->dirty_ = true;
    self->cv_.notify_all();
  };
  client::EventHandlers handlers;
  handlers.on_add = [mark](const client::ObjectPtr&) { mark(); };
  handlers.on_update = [mark](const client::ObjectPtr&, const client::ObjectPtr&) { mark(); };
  handlers.on_delete = [mark](const client::ObjectPtr&) { mark(); };
  routes->nodes_->AddEventHandler(std::move(handlers));
  routes->nodes_->Start();
  routes->worker_ = std::thread([self] { self->Run(); });
  return routes;
}

PodRoutes::~PodRoutes() { Stop(); }

void PodRoutes::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
  if (nodes_) nodes_->Stop();
}

RouteTable PodRoutes::Applied() const {
  std::lock_guard<std::mutex> lock(mu_);
  return applied_;
}

void PodRoutes::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (!dirty_ || !nodes_->HasSynced()) {
      cv_.wait_for(lock, options_.retry);
      if (!nodes_->HasSynced()) continue;
      if (!dirty_) continue;
    }
    dirty_ = false;
    lock.unlock();
    const bool ok = SyncOnce();
    lock.lock();
    if (!ok) {
      dirty_ = true;  // retried after options_.retry
      cv_.wait_for(lock, options_.retry, [this] { return stopping_; });
    }
  }
}

bool PodRoutes::SyncOnce() {
  std::vector<nlohmann::json> nodes;
  for (const auto& object : nodes_->List()) {
    if (object) nodes.push_back(*object);
  }
  const RouteTable desired = DesiredPodRoutes(nodes, options_.node_name);
  RouteDiff diff;
  {
    std::lock_guard<std::mutex> lock(mu_);
    diff = DiffPodRoutes(applied_, desired);
  }
  bool ok = true;
  auto run = [&](const std::vector<std::string>& argv) {
    auto result = options_.run(argv);
    if (result.ok() && result->exit_code == 0) return true;
    std::string command;
    for (const auto& word : argv) command += (command.empty() ? "" : " ") + word;
    spdlog::warn("pod routes: `{}` failed: {}", command,
                 result.ok() ? result->err : result.status().message());
    ok = false;
    return false;
  };
  for (const auto& [cidr, via] : diff.replace) {
    if (run({options_.ip, "-4", "route", "replace", cidr, "via", via})) {
      spdlog::info("pod routes: {} via {}", cidr, via);
      std::lock_guard<std::mutex> lock(mu_);
      applied_[cidr] = via;
    }
  }
  for (const auto& cidr : diff.remove) {
    std::string via;
    {
      std::lock_guard<std::mutex> lock(mu_);
      via = applied_[cidr];
    }
    auto result = options_.run({options_.ip, "-4", "route", "del", cidr, "via", via});
    // Already gone counts as removed.
    if (result.ok() &&
        (result->exit_code == 0 || result->err.find("No such process") != std::string::npos)) {
      spdlog::info("pod routes: removed {} via {}", cidr, via);
      std::lock_guard<std::mutex> lock(mu_);
      applied_.erase(cidr);
    } else {
      spdlog::warn("pod routes: removing {} failed: {}", cidr,
                   result.ok() ? result->err : result.status().message());
      ok = false;
    }
  }
  return ok;
}

}  // namespace mk8s::kubelet
