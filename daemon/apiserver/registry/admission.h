// Admission: per-kind defaulting, validation and allocation (ClusterIPs, NodePorts) for writes,
// applied after the generic metadata rules and before the object is stored.
//
// Threads: any transport or writer thread; the allocators have their own lock.
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "apiserver/api_error.h"
#include "apiserver/registry/priority_admission.h"

namespace mk8s::apiserver {

struct ResourceInfo;
struct UserInfo;
class WatchCache;

// A pod's status.qosClass from its spec (upstream's GetPodQOS over cpu and memory):
// "BestEffort", "Burstable" or "Guaranteed". Pure.
std::string PodQosClass(const nlohmann::json& spec);

// A range allocator: hands out free values in [first, last], skipping reserved ones.
class RangeAllocator {
 public:
  RangeAllocator(uint32_t first, uint32_t last) : first_(first), last_(last), next_(first) {}
  // Allocates `value` if free (0 = pick one). nullopt when taken/out of range/exhausted.
  std::optional<uint32_t> Allocate(uint32_t value = 0);
  void Release(uint32_t value);
  // Keeps `value` out of automatic allocation; an explicit request may still take it.
  void ReserveFromDynamic(uint32_t value) {
    std::lock_guard lock(mu_);
    reserved_.insert(value);
  }
  bool Contains(uint32_t value) const { return value >= first_ && value <= last_; }

 private:
  std::mutex mu_;
  const uint32_t first_, last_;
  uint32_t next_;             // GUARDED_BY(mu_)
  std::set<uint32_t> used_;   // GUARDED_BY(mu_)
  std::set<uint32_t> reserved_;  // GUARDED_BY(mu_)
};

struct AdmissionOptions {
  std::string service_cidr = "10.152.183.0/24";
  uint32_t node_port_first = 30000;
  uint32_t node_port_last = 32767;
};

class Admission {
 public:
  explicit Admission(const AdmissionOptions& options);

  // Marks addresses and ports used by stored Services as taken, and reads PriorityClasses from
  // `cache` from now on (call once at start, before requests).
  void LoadAllocations(const WatchCache& cache);

  // Defaults and validates a new object; allocates what it needs. On error nothing stays
  // allocated. `requester` is who creates it (null: unknown; kinds that record their requester,
  // CertificateSigningRequests, are then refused).
  std::optional<ApiError> AdmitCreate(const ResourceInfo& resource, nlohmann::json& object,
                                      const UserInfo* requester = nullptr);
  // `old` is the stored object; `subresource` is "" or "status"/"scale"/"approval".
  std::optional<ApiError> AdmitUpdate(const ResourceInfo& resource, nlohmann::json& object,
                                      const nlohmann::json& old, const std::string& subresource);
  // Releases allocations of an object that was deleted or whose create failed.
  void Release(const ResourceInfo& resource, const nlohmann::json& object);

  std::string ClusterIpOf(uint32_t offset) const;  // "10.152.183.<offset>"

 private:
  std::optional<ApiError> AdmitService(nlohmann::json& service, const nlohmann::json* old);
  // PriorityClasses as the watch cache holds them (none before LoadAllocations).
  PriorityClassLookup PriorityClasses() const;
  const WatchCache* cache_ = nullptr;  // set once by LoadAllocations, before requests
  uint32_t base_address_ = 0;  // the service CIDR's network address
  RangeAllocator cluster_ips_;
  RangeAllocator node_ports_;
};

}  // namespace mk8s::apiserver
