#include "kubelet/volumes/volume_manager.h"

#include <sys/stat.h>

#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "kubelet/volumes/atomic_writer.h"
#include "kubelet/volumes/downward_api.h"
#include "kubelet/volumes/env.h"
#include "kubelet/volumes/host_volumes.h"
#include "kubelet/volumes/service_account_token.h"
#include "kubelet/volumes/sources.h"

namespace mk8s::kubelet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using volumes::Payload;

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

// The volume's type key ("configMap", "emptyDir", ...) among those we know; "" if none.
std::string VolumeType(const json& volume) {
  static const char* kTypes[] = {"emptyDir", "hostPath",    "configMap",
                                 "secret",   "downwardAPI", "projected"};
  for (const char* type : kTypes) {
    if (volume.contains(type) && !volume[type].is_null()) return type;
  }
  return "";
}

// The first key of the volume other than name: what an unsupported volume is.
std::string AnyType(const json& volume) {
  for (const auto& [key, value] : volume.items()) {
    if (key != "name") return key;
  }
  return "(none)";
}

const char* PluginFolder(const std::string& type) {
  if (type == "emptyDir") return "kubernetes.io~empty-dir";
  if (type == "configMap") return "kubernetes.io~configmap";
  if (type == "secret") return "kubernetes.io~secret";
  if (type == "downwardAPI") return "kubernetes.io~downward-api";
  if (type == "projected") return "kubernetes.io~projected";
  return nullptr;
}

// A single path element we can use as a folder name.
bool SafeElement(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

std::optional<gid_t> FsGroup(const json& pod) {
  const json* group = nullptr;
  if (pod.contains("/spec/securityContext/fsGroup"_json_pointer)) {
    group = &pod.at("/spec/securityContext/fsGroup"_json_pointer);
  }
  if (group == nullptr || !group->is_number_integer() || group->get<int64_t>() < 0)
    return std::nullopt;
  return static_cast<gid_t>(group->get<int64_t>());
}

const json* FindVolume(const json& pod, const std::string& name) {
  if (!pod.contains("/spec/volumes"_json_pointer)) return nullptr;
  const json& list = pod.at("/spec/volumes"_json_pointer);
  if (!list.is_array()) return nullptr;
  for (const json& volume : list) {
    if (volume.is_object() && volume.value("name", "") == name) return &volume;
  }
  return nullptr;
}

// subPathExpr: $(VAR) from the container's literal env values and metadata fieldRefs (the
// variables that need no API reads), as upstream expands from the container's environment.
std::string ExpandSubPath(const std::string& expr, const json& pod, const json& container) {
  std::map<std::string, std::string> vars;
  auto lookup = [&](const std::string& name, std::string* value) {
    auto it = vars.find(name);
    if (it == vars.end()) return false;
    *value = it->second;
    return true;
  };
  for (const json& env : container.value("env", json::array())) {
    if (!env.is_object()) continue;
    const std::string name = env.value("name", "");
    if (env.contains("value") && env["value"].is_string()) {
      vars[name] = ExpandVariables(env["value"].get<std::string>(), lookup);
    } else if (env.contains("/valueFrom/fieldRef"_json_pointer)) {
      const json& ref = env.at("/valueFrom/fieldRef"_json_pointer);
      const std::string path = ref.value("fieldPath", "");
      static const std::map<std::string, std::string> kPodFields = {
          {"spec.nodeName", "/spec/nodeName"},
          {"spec.serviceAccountName", "/spec/serviceAccountName"},
          {"status.podIP", "/status/podIP"},
          {"status.hostIP", "/status/hostIP"}};
      if (auto field = kPodFields.find(path); field != kPodFields.end()) {
        vars[name] = pod.value(json::json_pointer(field->second), std::string());
      } else if (auto value = volumes::ExtractMetadataField(pod, ref.value("apiVersion", ""), path);
                 value.ok()) {
        vars[name] = *value;
      }
    }
  }
  return ExpandVariables(expr, lookup);
}

bool UnderOrEqual(const std::string& path, const std::string& base) {
  return path == base || path.rfind(base + "/", 0) == 0;
}

}  // namespace

VolumeManager::VolumeManager(std::shared_ptr<client::Client> client, std::string pods_root)
    : client_(std::move(client)),
      pods_root_(std::move(pods_root)),
      tokens_(std::make_unique<volumes::TokenCache>()),
      clock_([] { return std::chrono::system_clock::now(); }) {}

VolumeManager::~VolumeManager() = default;

void VolumeManager::SetNodeAllocatable(const json& allocatable) {
  node_allocatable_ = std::make_unique<json>(allocatable);
}

void VolumeManager::SetClockForTest(WallClock clock) { clock_ = std::move(clock); }

std::string VolumeManager::VolumePath(const std::string& pod_uid, const json& volume) const {
  const char* plugin = PluginFolder(VolumeType(volume));
  const std::string name = volume.is_object() ? volume.value("name", "") : "";
  if (plugin == nullptr || !SafeElement(pod_uid) || !SafeElement(name)) return "";
  return pods_root_ + "/" + pod_uid + "/volumes/" + plugin + "/" + name;
}

Status VolumeManager::SetUpPod(const json& pod) {
  if (!pod.is_object()) return Status(Code::kInvalidArgument, "pod is not an object");
  const std::string uid = pod.value("/metadata/uid"_json_pointer, std::string());
  if (!SafeElement(uid)) {
    return Status(Code::kInvalidArgument, "pod has no usable metadata.uid: " + Quoted(uid));
  }
  std::error_code ec;
  fs::create_directories(pods_root_ + "/" + uid + "/volumes", ec);
  if (ec) {
    return Status(Code::kInternal, "cannot create the folder of pod " + uid + ": " + ec.message());
  }
  Status first;
  if (!pod.contains("/spec/volumes"_json_pointer)) return first;
  const json& list = pod.at("/spec/volumes"_json_pointer);
  if (!list.is_array()) return Status(Code::kInvalidArgument, "spec.volumes is not a list");
  for (const json& volume : list) {
    Status status = SetUpVolume(pod, volume);
    if (!status.ok() && first.ok()) first = std::move(status);
  }
  return first;
}

Status VolumeManager::SetUpVolume(const json& pod, const json& volume) {
  const std::string name = volume.is_object() ? volume.value("name", "") : "";
  auto fail = [&](const Status& cause) {
    return Status(cause.code(), "volume " + Quoted(name) + ": " + cause.message());
  };
  if (!SafeElement(name)) return fail(Status(Code::kInvalidArgument, "invalid volume name"));
  const std::string type = VolumeType(volume);
  if (type.empty()) {
    return fail(Status(Code::kInvalidArgument,
                       AnyType(volume) + " volumes are not supported by this kubelet"));
  }
  const json& source = volume[type];
  if (type == "hostPath") {
    Status checked = volumes::CheckHostPath(source.value("path", ""), source.value("type", ""));
    return checked.ok() ? checked : fail(checked);
  }
  const std::string uid = pod.value("/metadata/uid"_json_pointer, std::string());
  const std::string path = VolumePath(uid, volume);
  const std::optional<gid_t> fs_group = FsGroup(pod);
  if (type == "emptyDir") {
    Status made = volumes::SetUpEmptyDir(path, source, fs_group);
    return made.ok() ? made : fail(made);
  }

  volumes::SourceContext ctx;
  ctx.client = client_.get();
  ctx.pod = &pod;
  ctx.ns = pod.value("/metadata/namespace"_json_pointer, std::string());
  ctx.node_allocatable = node_allocatable_.get();
  ctx.tokens = tokens_.get();
  ctx.now = clock_();
  Result<uint32_t> default_mode = volumes::ModeField(source, "defaultMode", 0644);
  if (!default_mode.ok()) return fail(default_mode.status());

  // As upstream, secret and projected (token) volumes live on a tmpfs: never written to disk.
  if (type == "secret" || type == "projected") {
    if (Status mounted = volumes::EnsureTmpfs(path, "mode=0755"); !mounted.ok()) {
      return fail(mounted);
    }
  }
  Payload payload;
  Status built;
  if (type == "configMap") {
    built = volumes::AddConfigMapFiles(ctx, source, *default_mode, &payload);
  } else if (type == "secret") {
    built = volumes::AddSecretFiles(ctx, source, *default_mode, &payload);
  } else if (type == "downwardAPI") {
    built = volumes::AddDownwardApiFiles(ctx, source.value("items", json::array()), *default_mode,
                                         &payload);
  } else {  // projected
    const json sources = source.value("sources", json::array());
    if (!sources.is_array()) return fail(Status(Code::kInvalidArgument, "sources is not a list"));
    for (const json& item : sources) {
      if (!item.is_object()) {
        built = Status(Code::kInvalidArgument, "a projection source is not an object");
      } else if (item.contains("configMap")) {
        built = volumes::AddConfigMapFiles(ctx, item["configMap"], *default_mode, &payload);
      } else if (item.contains("secret")) {
        built = volumes::AddSecretFiles(ctx, item["secret"], *default_mode, &payload);
      } else if (item.contains("downwardAPI")) {
        built = volumes::AddDownwardApiFiles(ctx, item["downwardAPI"].value("items", json::array()),
                                             *default_mode, &payload);
      } else if (item.contains("serviceAccountToken")) {
        built = volumes::AddTokenFile(ctx, item["serviceAccountToken"], *default_mode, &payload);
      } else {
        built = Status(Code::kInvalidArgument,
                       "projection source " + AnyType(item) + " is not supported by this kubelet");
      }
      if (!built.ok()) break;
    }
  }
  if (!built.ok()) return fail(built);
  Result<bool> written = volumes::WriteAtomically(path, payload, fs_group);
  return written.ok() ? Status::Ok() : fail(written.status());
}

Result<std::vector<Mount>> VolumeManager::MountsFor(const json& pod, const json& container) const {
  const std::string uid = pod.value("/metadata/uid"_json_pointer, std::string());
  const std::string container_name = container.is_object() ? container.value("name", "") : "";
  std::vector<Mount> mounts;
  if (!container.is_object() || !container.contains("volumeMounts")) return mounts;
  const json& list = container["volumeMounts"];
  if (!list.is_array()) {
    return Status(Code::kInvalidArgument,
                  "container " + Quoted(container_name) + ": volumeMounts is not a list");
  }
  for (const json& entry : list) {
    const std::string volume_name = entry.is_object() ? entry.value("name", "") : "";
    const std::string mount_path = entry.is_object() ? entry.value("mountPath", "") : "";
    auto fail = [&](const std::string& why) -> Result<std::vector<Mount>> {
      return Status(Code::kInvalidArgument, "container " + Quoted(container_name) +
                                                ", volumeMount " + Quoted(volume_name) + " at " +
                                                Quoted(mount_path) + ": " + why);
    };
    if (mount_path.empty()) return fail("mountPath is required");
    const json* volume = FindVolume(pod, volume_name);
    if (volume == nullptr) return fail("no volume named " + Quoted(volume_name) + " in the pod");
    const std::string type = VolumeType(*volume);
    if (type.empty()) return fail(AnyType(*volume) + " volumes are not supported by this kubelet");

    Mount mount;
    mount.container_path = mount_path;
    if (type == "hostPath") {
      mount.host_path = (*volume)["hostPath"].value("path", "");
    } else {
      mount.host_path = VolumePath(uid, *volume);
      if (mount.host_path.empty()) return fail("the pod has no usable metadata.uid");
    }
    // configMap, secret, downwardAPI and projected volumes are always read-only (upstream).
    const bool api_data = type != "hostPath" && type != "emptyDir";
    mount.read_only = entry.value("readOnly", false) || api_data;

    const std::string propagation = entry.value("mountPropagation", "");
    if (propagation == "Bidirectional") {
      if (!container.value("/securityContext/privileged"_json_pointer, false)) {
        return fail("Bidirectional mount propagation is available only to privileged containers");
      }
      mount.propagation = propagation;
    } else if (propagation == "HostToContainer") {
      mount.propagation = propagation;
    } else if (!propagation.empty() && propagation != "None") {
      return fail("unsupported mountPropagation " + Quoted(propagation) +
                  " (None, HostToContainer, Bidirectional)");
    }

    std::string sub_path = entry.value("subPath", "");
    const std::string sub_path_expr = entry.value("subPathExpr", "");
    if (!sub_path.empty() && !sub_path_expr.empty()) {
      return fail("subPath and subPathExpr are mutually exclusive");
    }
    if (!sub_path_expr.empty()) sub_path = ExpandSubPath(sub_path_expr, pod, container);
    if (!sub_path.empty()) {
      if (sub_path[0] == '/') return fail("subPath " + Quoted(sub_path) + " must be relative");
      for (const auto& element : fs::path(sub_path)) {
        if (element == "..") return fail("subPath " + Quoted(sub_path) + " must not contain '..'");
      }
      std::error_code ec;
      const fs::path base = fs::canonical(mount.host_path, ec);
      if (ec) {
        return fail("volume path " + mount.host_path + " is not set up (" + ec.message() + ")");
      }
      const fs::path wanted = (base / sub_path).lexically_normal();
      struct stat st {};
      if (stat(wanted.c_str(), &st) != 0) {
        if (api_data) return fail("subPath " + Quoted(sub_path) + " does not exist in the volume");
        // As upstream: create it now with the volume folder's mode.
        struct stat base_st {};
        const mode_t mode = stat(base.c_str(), &base_st) == 0 ? (base_st.st_mode & 07777) : 0755;
        fs::create_directories(wanted, ec);
        if (ec) return fail("cannot create subPath: " + ec.message());
        chmod(wanted.c_str(), mode);
      }
      const fs::path resolved = fs::canonical(wanted, ec);
      if (ec) return fail("cannot resolve subPath: " + ec.message());
      if (!UnderOrEqual(resolved.string(), base.string())) {
        return fail("subPath " + Quoted(sub_path) + " resolves outside the volume (" +
                    resolved.string() + ")");
      }
      mount.host_path = resolved.string();
    }
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

Status VolumeManager::TearDownPod(const std::string& pod_uid) {
  if (!SafeElement(pod_uid)) {
    return Status(Code::kInvalidArgument, "invalid pod uid " + Quoted(pod_uid));
  }
  tokens_->ForgetPod(pod_uid);
  const std::string dir = pods_root_ + "/" + pod_uid;
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) return Status::Ok();
  if (Status unmounted = volumes::UnmountAllUnder(dir); !unmounted.ok()) {
    return Status(unmounted.code(),
                  "pod " + pod_uid + ": " + unmounted.message() + "; its folder is kept");
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return Status(Code::kInternal, "cannot remove " + dir + ": " + ec.message());
  return Status::Ok();
}

}  // namespace mk8s::kubelet
