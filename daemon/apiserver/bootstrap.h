// What every cluster has from its first start: the namespaces default, kube-system, kube-public
// and kube-node-lease, and the `default/kubernetes` Service (10.152.183.1:443) with Endpoints
// pointing at the API server. Idempotent: existing objects are left alone, except that the
// Endpoints follow the current node IPs and port.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace mk8s::store {
class Store;
}

namespace mk8s::apiserver {

class Admission;

Status Bootstrap(store::Store* store, Admission* admission, const std::vector<std::string>& node_ips,
                 uint16_t port);

}  // namespace mk8s::apiserver
