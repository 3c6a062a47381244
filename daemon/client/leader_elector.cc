#include "client/leader_elector.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/time_format.h"

namespace mk8s::client {
namespace {

using nlohmann::json;

int64_t Seconds(std::chrono::milliseconds duration) {
  return std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(duration).count());
}

}  // namespace

std::string DefaultLeaderIdentity(const std::string& suffix) {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "localhost");
  return std::string(host) + "_" + suffix;
}

LeaderElector::LeaderElector(LeaderElectionOptions options, std::shared_ptr<Client> client)
    : options_(std::move(options)), client_(std::move(client)) {}

std::unique_ptr<LeaderElector> LeaderElector::Start(LeaderElectionOptions options,
                                                    std::shared_ptr<Client> client) {
  std::unique_ptr<LeaderElector> elector(new LeaderElector(std::move(options), std::move(client)));
  elector->thread_ = std::thread([raw = elector.get()] { raw->Run(); });
  return elector;
}

LeaderElector::~LeaderElector() { Stop(); }

void LeaderElector::Stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool LeaderElector::WaitFor(std::chrono::milliseconds delay) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, delay, [this] { return stopping_; });
}

json LeaderElector::LeaseSpec(bool taking_over, const json* old_spec) const {
  const std::string now = NowRfc3339Micro();
  json spec = old_spec ? *old_spec : json::object();
  spec["holderIdentity"] = options_.identity;
  spec["leaseDurationSeconds"] = Seconds(options_.lease_duration);
  spec["renewTime"] = now;
  if (taking_over) {
    spec["acquireTime"] = now;
    spec["leaseTransitions"] = old_spec ? old_spec->value("leaseTransitions", 0) + 1 : 0;
  }
  return spec;
}

bool LeaderElector::TryAcquireOrRenew() {
  const auto now = std::chrono::steady_clock::now();
  ApiResult<json> current = client_->Get(kLeases, options_.lease_namespace, options_.lease_name);
  if (!current.ok()) {
    if (!IsNotFound(current.error())) {
      spdlog::debug("leader election {}: {}", options_.lease_name, current.error().ToString());
      return false;
    }
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata",
                   {{"name", options_.lease_name}, {"namespace", options_.lease_namespace}}},
                  {"spec", LeaseSpec(/*taking_over=*/true, nullptr)}};
    return client_->Create(kLeases, options_.lease_namespace, lease).ok();
  }
  json lease = std::move(*current);
  const json spec = lease.value("spec", json::object());
  const std::string holder = spec.value("holderIdentity", "");
  // The record as last written; a change restarts the observed lease time.
  const std::string record = holder + "|" + spec.value("renewTime", "") + "|" +
                             std::to_string(spec.value("leaseTransitions", 0));
  if (record != observed_record_) {
    observed_record_ = record;
    observed_at_ = now;
  }
  const bool mine = holder == options_.identity;
  if (!mine && !holder.empty()) {
    const auto duration = std::chrono::seconds(spec.value("leaseDurationSeconds", 15));
    if (now < observed_at_ + duration) return false;  // held and not expired
    spdlog::info("leader election {}: lease of {} expired; taking over", options_.lease_name,
                 holder);
  }
  lease["spec"] = LeaseSpec(/*taking_over=*/!mine, &spec);
  ApiResult<json> written = client_->Update(kLeases, lease);  // CAS on resourceVersion
  if (!written.ok()) {
    if (!IsConflict(written.error())) {
      spdlog::debug("leader election {}: {}", options_.lease_name, written.error().ToString());
    }
    return false;
  }
  const json& new_spec = (*written)["spec"];
  observed_record_ = options_.identity + "|" + new_spec.value("renewTime", "") + "|" +
                     std::to_string(new_spec.value("leaseTransitions", 0));
  observed_at_ = now;
  return true;
}

void LeaderElector::Release() {
  ApiResult<json> current = client_->Get(kLeases, options_.lease_namespace, options_.lease_name);
  if (!current.ok()) return;
  json lease = std::move(*current);
  if (lease["spec"].value("holderIdentity", "") != options_.identity) return;
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  lease["spec"]["renewTime"] = NowRfc3339Micro();
  if (ApiResult<json> written = client_->Update(kLeases, lease); !written.ok()) {
    spdlog::warn("leader election {}: releasing the lease failed: {}", options_.lease_name,
                 written.error().ToString());
  }
}

void LeaderElector::Run() {
  spdlog::info("leader election {}: candidate {}", options_.lease_name, options_.identity);
  while (true) {
    const bool acquired = TryAcquireOrRenew();
    const auto now = std::chrono::steady_clock::now();
    if (acquired) {
      last_renew_ = now;
      if (!leading_.exchange(true)) {
        spdlog::info("leader election {}: {} is the leader", options_.lease_name,
                     options_.identity);
        if (options_.on_started_leading) options_.on_started_leading();
      }
    } else if (leading_.load() && now - last_renew_ > options_.renew_deadline) {
      spdlog::error("leader election {}: could not renew the lease for {} ms; stepping down",
                    options_.lease_name, options_.renew_deadline.count());
      leading_ = false;
      if (options_.on_stopped_leading) options_.on_stopped_leading();
    }
    if (!WaitFor(options_.retry_period)) break;
  }
  if (leading_.exchange(false)) {
    if (options_.on_stopped_leading) options_.on_stopped_leading();
    Release();
  }
}

}  // namespace mk8s::client
