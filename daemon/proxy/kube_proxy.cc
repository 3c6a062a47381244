#include "proxy/kube_proxy.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "client/client.h"
#include "client/informer.h"
#include "client/shared_informer_factory.h"
#include "proxy/conntrack.h"
#include "proxy/service_snapshot.h"

namespace mk8s::proxy {
namespace {

using Clock = std::chrono::steady_clock;

// The first chains our built-in jumps point at; they must exist before `iptables -C` can check
// a jump to them.
std::vector<std::pair<std::string, std::string>> JumpTargets(const RuleOptions& options) {
  std::vector<std::pair<std::string, std::string>> targets;
  for (const BuiltinJump& jump : BuiltinJumps(options)) {
    std::pair<std::string, std::string> target{jump.table, jump.args.back()};
    if (std::find(targets.begin(), targets.end(), target) == targets.end()) {
      targets.push_back(target);
    }
  }
  return targets;
}

}  // namespace

KubeProxy::KubeProxy(ProxyOptions options, std::shared_ptr<client::Client> client)
    : options_(std::move(options)), client_(std::move(client)), iptables_(options_.iptables) {}

Result<std::unique_ptr<KubeProxy>> KubeProxy::Start(ProxyOptions options,
                                                    std::shared_ptr<client::Client> client) {
  if (Status status = ValidateRuleOptions(options.rules); !status.ok()) return status;
  if (options.min_sync_interval.count() < 0 || options.sync_period.count() <= 0 ||
      options.retry_interval.count() <= 0) {
    return Status(Code::kInvalidArgument, "proxy sync intervals must be positive");
  }
  // Fail early and clearly if the tools are missing.
  for (const std::string& tool : {options.iptables.iptables, options.iptables.iptables_restore,
                                  options.iptables.iptables_save}) {
    Result<ProcessOutput> probe = RunProcess({tool, "--version"}, "", options.iptables.timeout);
    if (!probe.ok())
      return Status(probe.status().code(), "kube-proxy: " + probe.status().message());
  }
  std::unique_ptr<KubeProxy> proxy(new KubeProxy(std::move(options), std::move(client)));
  KubeProxy& self = *proxy;
  client::SharedInformerFactory* informers = self.options_.shared_informers;
  if (informers == nullptr) {
    self.own_informers_ = std::make_unique<client::SharedInformerFactory>(self.client_);
    informers = self.own_informers_.get();
  }
  self.services_ = informers->For(client::kServices);
  self.slices_ = informers->For(client::kEndpointSlices);
  client::EventHandlers handlers;
  KubeProxy* raw = proxy.get();
  handlers.on_add = [raw](const client::ObjectPtr&) { raw->MarkDirty(); };
  handlers.on_update = [raw](const client::ObjectPtr&, const client::ObjectPtr&) {
    raw->MarkDirty();
  };
  handlers.on_delete = [raw](const client::ObjectPtr&) { raw->MarkDirty(); };
  for (client::Informer* informer : {self.services_, self.slices_}) {
    self.handlers_.emplace_back(informer, informer->AddEventHandler(handlers));
  }
  informers->Start();
  self.thread_ = std::thread([raw] { raw->Run(); });
  spdlog::info(
      "kube-proxy: iptables mode on node {} ({}), chains {}-*, cluster CIDR {}, "
      "service CIDR {}",
      self.options_.node_name,
      self.options_.node_ips.empty() ? std::string("-") : self.options_.node_ips.front(),
      self.options_.rules.chain_prefix, self.options_.rules.cluster_cidr,
      self.options_.service_cidr);
  return proxy;
}

KubeProxy::~KubeProxy() { Stop(); }

void KubeProxy::Stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& [informer, id] : handlers_) informer->RemoveEventHandler(id);
  handlers_.clear();
  if (own_informers_) own_informers_->Shutdown();
}

SyncStats KubeProxy::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void KubeProxy::MarkDirty() {
  std::lock_guard lock(mu_);
  if (!dirty_) {
    dirty_ = true;
    dirty_since_ = Clock::now();
    cv_.notify_all();
  }
}

void KubeProxy::Run() {
  // No rules before both caches are complete: a partial view would delete live services.
  while (!services_->WaitForSync(std::chrono::milliseconds(200)) ||
         !slices_->WaitForSync(std::chrono::milliseconds(200))) {
    std::lock_guard lock(mu_);
    if (stopping_) return;
  }
  std::unique_lock lock(mu_);
  Clock::time_point last_start = Clock::now() - options_.min_sync_interval;
  Clock::time_point next_periodic = Clock::now();  // the first sync is a full one, at once
  Clock::time_point not_before = Clock::now();     // after a failure
  std::chrono::milliseconds retry = options_.retry_interval;  // doubles per failure in a row
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    Clock::time_point due = next_periodic;
    if (dirty_) {
      due = std::min(due, std::max({dirty_since_ + options_.min_sync_interval,
                                    last_start + options_.min_sync_interval, not_before}));
    }
    if (now < due) {
      cv_.wait_until(lock, due);
      continue;
    }
    const bool full = need_full_ || now >= next_periodic;
    dirty_ = false;
    last_start = now;
    lock.unlock();
    const Status status = Sync(full);
    if (options_.on_sync) {
      if (status.ok()) {
        const SyncStats now_stats = stats();
        options_.on_sync(true, fmt::format("iptables, chains {}-*, {} service ports, last sync "
                                           "{:.1f} ms",
                                           options_.rules.chain_prefix, now_stats.service_ports,
                                           now_stats.last_duration.count() / 1000.0));
      } else {
        options_.on_sync(false, "sync failed: " + status.message());
      }
    }
    lock.lock();
    next_periodic = Clock::now() + options_.sync_period;
    if (status.ok()) {
      need_full_ = false;
      retry = options_.retry_interval;
    } else {
      ++stats_.failures;
      stats_.last_error = status.message();
      spdlog::warn("kube-proxy: sync failed: {}; retrying in {} ms", status.message(),
                   retry.count());
      need_full_ = true;  // the kernel state is unknown now
      if (!dirty_) {
        dirty_ = true;
        dirty_since_ = Clock::now();
      }
      not_before = Clock::now() + retry;
      retry = std::min(retry * 2, std::max(options_.retry_interval, options_.sync_period));
    }
  }
}

Status KubeProxy::EnsureJumps() {
  for (const auto& [table, chain] : JumpTargets(options_.rules)) {
    if (Status status = iptables_.EnsureChain(table, chain); !status.ok()) return status;
  }
  for (const BuiltinJump& jump : BuiltinJumps(options_.rules)) {
    Result<bool> exists = iptables_.Exists(jump.table, jump.chain, jump.args);
    if (!exists.ok()) return exists.status();
    if (*exists) continue;
    if (Status status = iptables_.Insert(jump.table, jump.chain, jump.args); !status.ok()) {
      return status;
    }
  }
  return Status::Ok();
}

Status KubeProxy::Sync(bool full) {
  const Clock::time_point start = Clock::now();
  if (full) {
    if (Status status = EnsureJumps(); !status.ok()) return status;
    ExistingChains kernel;
    for (const char* table : {"nat", "filter"}) {
      Result<std::string> saved = iptables_.Save(table);
      if (!saved.ok()) return saved.status();
      (std::string(table) == "nat" ? kernel.nat : kernel.filter) = ParseChains(*saved);
    }
    chains_ = std::move(kernel);
  }
  const ServiceSnapshot snapshot = BuildSnapshot(services_->List(), slices_->List());
  for (const std::string& reason : snapshot.skipped)
    spdlog::debug("kube-proxy: skipped {}", reason);
  RuleSet rules = GenerateRules(snapshot, options_.rules, chains_);
  if (Status status = iptables_.Restore(rules.text); !status.ok()) return status;
  chains_ = std::move(rules.chains);
  ClearStaleUdpFlows(snapshot);
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  std::lock_guard lock(mu_);
  ++stats_.syncs;
  stats_.service_ports = snapshot.ports.size();
  stats_.last_duration = took;
  spdlog::log(stats_.syncs == 1 || full ? spdlog::level::info : spdlog::level::debug,
              "kube-proxy: synced {} service ports ({} bytes of rules{}) in {:.1f} ms",
              snapshot.ports.size(), rules.text.size(), full ? ", full" : "",
              took.count() / 1000.0);
  return Status::Ok();
}

void KubeProxy::ClearStaleUdpFlows(const ServiceSnapshot& snapshot) {
  // Not on the first sync: nothing is known to be stale, and live flows should survive a restart.
  if (applied_ && !conntrack_missing_) {
    for (const std::vector<std::string>& args : StaleUdpFlows(*applied_, snapshot)) {
      std::vector<std::string> argv = {options_.iptables.conntrack};
      argv.insert(argv.end(), args.begin(), args.end());
      Result<ProcessOutput> run = RunProcess(argv, "", options_.iptables.timeout);
      if (!run.ok() && run.status().code() == Code::kNotFound) {
        spdlog::warn("kube-proxy: {}; stale UDP flows stay until they time out",
                     run.status().message());
        conntrack_missing_ = true;
        break;
      }
      // Exit 1 with "0 flow entries" is the common case: nothing to delete.
      if (!run.ok() || run->exit_code > 1) {
        spdlog::warn("kube-proxy: conntrack {} failed: {}", fmt::join(args, " "),
                     run.ok() ? run->err : run.status().message());
      }
    }
  }
  applied_ = std::make_unique<ServiceSnapshot>(snapshot);
}

Status CleanUp(const RuleOptions& options, const IptablesPaths& paths) {
  if (Status status = ValidateRuleOptions(options); !status.ok()) return status;
  const Iptables iptables(paths);
  for (const BuiltinJump& jump : BuiltinJumps(options)) {
    // Remove every copy (a crash between -C and -I can never leave two, but be thorough).
    for (int i = 0; i < 16; ++i) {
      Result<bool> exists = iptables.Exists(jump.table, jump.chain, jump.args);
      if (!exists.ok()) return exists.status();
      if (!*exists) break;
      if (Status status = iptables.Delete(jump.table, jump.chain, jump.args); !status.ok()) {
        return status;
      }
    }
  }
  ExistingChains existing;
  for (const char* table : {"nat", "filter"}) {
    Result<std::string> saved = iptables.Save(table);
    if (!saved.ok()) return saved.status();
    (std::string(table) == "nat" ? existing.nat : existing.filter) = ParseChains(*saved);
  }
  const std::string text = GenerateCleanUp(options, existing);
  if (text.empty()) return Status::Ok();
  return iptables.Restore(text);
}

}  // namespace mk8s::proxy
