// Payload builders for the projected kinds of volume: configMap, secret, downwardAPI and the
// sources of a projected volume (the same three plus serviceAccountToken). Each turns a volume
// (or projection source) spec plus API objects into files for the atomic writer.
//
// Blocking (API reads through the client); thread-safe (no state of their own).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "client/client.h"
#include "common/status.h"
#include "kubelet/volumes/atomic_writer.h"
#include "kubelet/volumes/service_account_token.h"

namespace mk8s::kubelet::volumes {

// What every builder needs about the pod. Pointers are borrowed for the call.
struct SourceContext {
  client::Client* client = nullptr;
  const nlohmann::json* pod = nullptr;
  std::string ns;
  const nlohmann::json* node_allocatable = nullptr;  // null: the host's values
  TokenCache* tokens = nullptr;
  std::chrono::system_clock::time_point now;
};

// Key -> bytes.
using DataMap = std::map<std::string, std::string>;

// A ConfigMap or Secret of the namespace; nullopt if it does not exist. Other API failures are
// kUnavailable: "cannot get configmap "x": 503 ...". `kind` is "configmap" or "secret".
Result<std::optional<nlohmann::json>> GetObject(client::Client& client, const std::string& kind,
                                                const std::string& ns, const std::string& name);
// data + binaryData (base64-decoded) of a ConfigMap.
Result<DataMap> ConfigMapData(const nlohmann::json& config_map);
// data (base64-decoded) of a Secret, plus stringData if a writer left it unconverted.
Result<DataMap> SecretData(const nlohmann::json& secret);

// A mode field (defaultMode, items[].mode): absent -> `fallback`; must be 0..0777.
Result<uint32_t> ModeField(const nlohmann::json& object, const char* field, uint32_t fallback);

// configMap / secret volume or projection source ({name|secretName, items, optional,
// defaultMode}): adds its files to `out`. A missing optional object adds nothing; a missing
// key in items fails unless optional ("configmap references non-existent config key: k").
Status AddConfigMapFiles(const SourceContext& ctx, const nlohmann::json& source,
                         uint32_t default_mode, Payload* out);
Status AddSecretFiles(const SourceContext& ctx, const nlohmann::json& source, uint32_t default_mode,
                      Payload* out);
// downwardAPI items ([{path, fieldRef|resourceFieldRef, mode}]).
Status AddDownwardApiFiles(const SourceContext& ctx, const nlohmann::json& items,
                           uint32_t default_mode, Payload* out);
// serviceAccountToken ({audience, expirationSeconds (default 3600, min 600), path}).
Status AddTokenFile(const SourceContext& ctx, const nlohmann::json& source, uint32_t default_mode,
                    Payload* out);

}  // namespace mk8s::kubelet::volumes
