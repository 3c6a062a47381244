// RestStorage dispatch and the pod subresources that are not plain storage.
#include "apiserver/registry/rest_storage.h"

#include "apiserver/body_codec.h"
#include "apiserver/registry/cached_object.h"
#include "apiserver/registry/object_meta.h"
#include "store/store.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

json SuccessStatus() {
  return {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()},
          {"status", "Success"}, {"code", 201}};
}

}  // namespace

RestStorage::RestStorage(store::Store* store, WatchCache* cache, TimerQueue* timers,
                         Admission* admission, const pki::JwtSigner* token_signer,
                         KubeletClient* kubelet)
    : store_(store), cache_(cache), timers_(timers), admission_(admission),
      token_signer_(token_signer), kubelet_(kubelet) {}

void RestStorage::Handle(RestRequest request, std::shared_ptr<http::Responder> responder) {
  const ResourceInfo& resource = *request.resource;
  const std::string& verb = request.info.verb;
  const std::string& sub = request.info.subresource;
  if (resource.namespaced && request.info.namespace_.empty() && !request.info.name.empty()) {
    return SendError(*responder, ApiError::NotFound(resource.group, resource.resource, request.info.name));
  }
  if (!sub.empty()) {
    const SubresourceInfo* info = resource.FindSubresource(sub);
    if (info == nullptr) {
      return SendError(*responder, ApiError{404, "NotFound", "the server could not find the requested resource"});
    }
    if (sub == "log" || sub == "exec" || sub == "attach" || sub == "portforward" || sub == "proxy") {
      return ProxyToKubelet(request, responder);  // pod_proxy.cc
    }
    if (sub == "binding" && verb == "create") {
      json binding;
      if (auto error = DecodeBody(request.http.HeaderValue("content-type"), request.http.body, &binding)) {
        return SendError(*responder, *error);
      }
      if (auto error = CheckBodyTypes("", "v1", "Binding", binding)) return SendError(*responder, *error);
      const std::string target = binding.value("/target/name"_json_pointer, std::string());
      if (target.empty()) {
        return SendError(*responder, ApiError::Invalid("", "Binding", request.info.name,
                                                       {{"FieldValueRequired", "Required value", "target.name"}}));
      }
      auto m = std::make_shared<Mutation>();
      m->request = request;
      m->key = Key(resource, request.info.namespace_, request.info.name);
      struct StatusReply final : http::Responder {
        std::shared_ptr<http::Responder> inner;
        void Send(http::Response response) override {
          if (response.status < 300) response = {201, "application/json", {}, SuccessStatus().dump()};
          inner->Send(std::move(response));
        }
        std::shared_ptr<http::ResponseStream> StartStream(int, std::string, std::vector<http::Header>) override {
          return nullptr;
        }
      };
      auto reply = std::make_shared<StatusReply>();
      reply->inner = responder;
      m->responder = reply;
      m->transform = [target, name = request.info.name](const json* current, json* updated) -> std::optional<ApiError> {
        // Runs for every binding: lookups that neither throw (an unbound pod has no nodeName)
        // nor parse a pointer.
        const json* node = nullptr;
        if (auto spec = current->find("spec"); spec != current->end() && spec->is_object()) {
          if (auto it = spec->find("nodeName"); it != spec->end() && it->is_string()) node = &*it;
        }
        if (node != nullptr && !node->get_ref<const std::string&>().empty()) {
          return ApiError::Conflict("", "pods", name, "pod " + name + " is already assigned to node \"" +
                                                          node->get<std::string>() + "\"");
        }
        if ((*current)["metadata"].contains("deletionTimestamp")) {
          return ApiError::Conflict("", "pods", name, "pod " + name + " is being deleted, cannot be assigned to a host");
        }
        *updated = *current;
        (*updated)["spec"]["nodeName"] = target;
        json& conditions = (*updated)["status"]["conditions"];
        if (!conditions.is_array()) conditions = json::array();
        conditions.push_back({{"type", "PodScheduled"}, {"status", "True"},
                              {"lastProbeTime", nullptr},
                              {"lastTransitionTime", FormatTime(std::chrono::system_clock::now())}});
        return std::nullopt;
      };
      return RunMutation(m);
    }
    if (sub == "token" && verb == "create") return CreateToken(request, responder);
    if (sub == "eviction" && verb == "create") return Evict(request, responder);
    if (sub == "scale") {
      if (verb == "get" || verb == "update" || verb == "patch") return ScaleSubresource(request, responder);
    }
    if (sub == "status" || sub == "finalize" || sub == "approval") {
      if (verb == "get") return Get(request, responder);
      if (verb == "update") return Update(request, responder);
      if (verb == "patch") return Patch(request, responder);
    }
    return SendError(*responder, ApiError::MethodNotAllowed(
                                     "the server does not allow this method on the requested resource"));
  }
  if (verb == "get") return Get(request, responder);
  if (verb == "list") return List(request, responder);
  if (verb == "watch") return Watch(request, responder);
  if (verb == "create") {
    if (!request.info.name.empty()) {
      return SendError(*responder, ApiError::MethodNotAllowed(
                                       "the server does not allow this method on the requested resource"));
    }
    return Create(request, responder);
  }
  if (verb == "update") return Update(request, responder);
  if (verb == "patch") return Patch(request, responder);
  if (verb == "delete") return Delete(request, responder);
  if (verb == "deletecollection") return DeleteCollection(request, responder);
  SendError(*responder, ApiError::MethodNotAllowed(
                            "the server does not allow this method on the requested resource"));
}

}  // namespace mk8s::apiserver
