// Applying and deleting Kubernetes manifests for addons: YAML (multi-document) or JSON (one
// object, or a v1 List) -> objects -> resources found through API discovery -> server-side apply
// or delete through the addon's own API client. Blocking: call from the addon's thread or its
// own threads, never from a transport callback.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace mk8s::client {
class Client;
}

namespace mk8s::addonhost {

// The objects of a manifest, in order. Empty documents are skipped; kind List is flattened.
// kInvalidArgument for text that is neither YAML nor JSON, or an object without apiVersion,
// kind or metadata.name.
Result<std::vector<nlohmann::json>> ParseManifest(std::string_view text);

// Server-side apply (force, field manager `field_manager`) of each object, in order. Stops at
// the first failure; the message names the object.
Status ApplyObjects(client::Client& client, const std::vector<nlohmann::json>& objects,
                    const std::string& field_manager);

// Deletes each object, in reverse order; objects already gone are fine.
Status DeleteObjects(client::Client& client, const std::vector<nlohmann::json>& objects);

}  // namespace mk8s::addonhost
