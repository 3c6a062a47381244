#include "client/node_lease.h"

#include <nlohmann/json.hpp>

namespace mk8s::client {

nlohmann::json NodeLease(const std::string& node, int64_t duration_seconds,
                         const std::string& renew_time, const std::string& node_uid) {
  nlohmann::json lease = {
      {"apiVersion", "coordination.k8s.io/v1"},
      {"kind", "Lease"},
      {"metadata", {{"name", node}, {"namespace", kNodeLeaseNamespace}}},
      {"spec",
       {{"holderIdentity", node},
        {"leaseDurationSeconds", duration_seconds},
        {"renewTime", renew_time}}}};
  if (!node_uid.empty()) {
    lease["metadata"]["ownerReferences"] = nlohmann::json::array(
        {{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}, {"uid", node_uid}}});
  }
  return lease;
}

}  // namespace mk8s::client
