// The heartbeat Lease a kubelet keeps in kube-node-lease (upstream's node lease), shared by the
// kubelet and the hollow nodes so both write the same object.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace mk8s::client {

// The namespace of node Leases.
inline constexpr const char* kNodeLeaseNamespace = "kube-node-lease";

// The Lease of `node`: holderIdentity = the node's name, leaseDurationSeconds, renewTime (RFC 3339
// with microseconds). With the Node's uid it carries an ownerReference to the Node, as upstream's
// kubelet sets, so deleting the Node has the garbage collector delete its Lease.
nlohmann::json NodeLease(const std::string& node, int64_t duration_seconds,
                         const std::string& renew_time, const std::string& node_uid);

}  // namespace mk8s::client
