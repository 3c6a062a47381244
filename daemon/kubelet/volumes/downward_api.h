// Downward API values shared by env (fieldRef/resourceFieldRef) and downwardAPI volumes.
//
// Pure functions over the pod JSON; thread-safe. Errors are kInvalidArgument with the upstream
// wording where there is one ("unsupported fieldPath: spec.foo").
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace mk8s::kubelet::volumes {

// Go's %q of a string (strconv.Quote): "…" with \" \\ \n \t \r \a \b \f \v escaped, other
// control bytes and invalid UTF-8 as \xNN, printable UTF-8 kept.
std::string GoQuote(const std::string& s);

// The downward API's map format: `key="value"` lines sorted by key, joined with '\n' (no
// trailing newline), values GoQuote()d. Non-string values are dumped as JSON first.
std::string FormatMap(const nlohmann::json& map);

// The metadata fields both env and volumes support: metadata.name, metadata.namespace,
// metadata.uid, metadata.labels, metadata.annotations (FormatMap), metadata.labels['k'] and
// metadata.annotations['k'] (the value, "" if absent). `api_version` is fieldRef.apiVersion
// ("" = "v1"; anything else is an error).
Result<std::string> ExtractMetadataField(const nlohmann::json& pod, const std::string& api_version,
                                         const std::string& field_path);

// resourceFieldRef: limits.cpu, limits.memory, limits.ephemeral-storage, requests.* of the same,
// limits./requests.hugepages-<size>; `divisor` a quantity (absent/"0" = "1"). CPU values are
// ceil(milli / divisor milli), others ceil(value / divisor value), as upstream. A container
// without a cpu/memory/ephemeral-storage limit gets `node_allocatable`'s (or the host's, when
// null) as upstream. `container_name` "" = `default_container`.
Result<std::string> ExtractResourceField(const nlohmann::json& pod,
                                         const nlohmann::json& resource_field_ref,
                                         const std::string& default_container,
                                         const nlohmann::json* node_allocatable);

// The host's allocatable stand-in: {"cpu": <CPUs>, "memory": <MemTotal bytes>,
// "ephemeral-storage": <size of the file system holding `path`>}.
nlohmann::json HostAllocatable(const std::string& path = "/");

}  // namespace mk8s::kubelet::volumes
