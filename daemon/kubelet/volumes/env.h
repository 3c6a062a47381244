// ResolveEnv: a container's environment, as the upstream kubelet computes it.
//
// Order of the result (names are unique; a later definition replaces an earlier one's value and
// keeps the earlier position, except that a Service variable redefined by envFrom/env moves to
// where envFrom/env defines it):
//   1. Service variables (FOO_SERVICE_HOST, FOO_SERVICE_PORT, FOO_SERVICE_PORT_<PORTNAME>,
//      FOO_PORT, FOO_PORT_<port>_<PROTO>{,_PROTO,_PORT,_ADDR}) for the Services of the pod's
//      namespace with a cluster IP (sorted by name), plus `kubernetes` from `default` (a Service of
//      that name in the pod's own namespace wins). enableServiceLinks=false: only `kubernetes`.
//   2. envFrom, in order: every key of the ConfigMap's data / Secret's data (decoded), with the
//      prefix; keys that are not valid variable names are skipped (reported in warnings);
//      a missing source fails unless optional.
//   3. env, in order: `value` with $(VAR) expanded from the variables defined so far (then the
//      Service variables); $$ gives a literal $; unknown $(VAR) stay as written. Or valueFrom:
//      configMapKeyRef / secretKeyRef (missing object or key: error unless optional, then the
//      variable is skipped), fieldRef (see downward_api.h), resourceFieldRef (containerName
//      defaults to this container; divisor; limits fall back to the node's allocatable).
//
// Errors (kNotFound, kInvalidArgument, kUnavailable) name the variable and the cause, e.g.
//   env "DB_HOST": couldn't find key host in ConfigMap ns/db-config
// Blocking: reads ConfigMaps/Secrets through `client` (never call from a transport thread).
// Thread-safe (no shared state).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "client/client.h"
#include "common/status.h"

namespace mk8s::kubelet {

// Optional inputs and outputs of ResolveEnv.
struct EnvOptions {
  // The node's status.allocatable, for resourceFieldRef limits of containers without limits.
  // Null: the host's CPUs, memory and root file system size.
  const nlohmann::json* node_allocatable = nullptr;
  // Out (appended): messages worth a Warning event, e.g. keys skipped by envFrom
  // ("Keys [1BAD, a=b] from the EnvFrom configMap ns/cm were skipped since they are considered
  // invalid environment variable names."). Null: dropped.
  std::vector<std::string>* warnings = nullptr;
};

// `services`: the Services of the cluster (every namespace, e.g. the kubelet's informer);
// `pod_ip`/`host_ip`: known at container creation (status.podIPs/hostIPs of the pod add the
// other families).
Result<std::vector<std::pair<std::string, std::string>>> ResolveEnv(
    const nlohmann::json& pod, const nlohmann::json& container, client::Client& client,
    const std::vector<client::ObjectPtr>& services, const std::string& pod_ip,
    const std::string& host_ip, const EnvOptions& options = {});

// Exposed for tests and for subPathExpr: expands $(VAR) in `input` with `lookup` (which returns
// false for unknown names), with the upstream rules ($$ -> $, unknown and unterminated references
// kept as written).
std::string ExpandVariables(const std::string& input,
                            const std::function<bool(const std::string&, std::string*)>& lookup);

}  // namespace mk8s::kubelet
