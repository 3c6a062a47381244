// mk8s.v1.Control's addon RPCs: enable, disable and list, answered by the daemon's AddonHost.
#include <spdlog/spdlog.h>

#include "addonhost/addon_host.h"
#include "control/services.h"

namespace mk8s::control {
namespace {

grpc::Status NoAddonHost() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "this mk8sd runs without an addon host: upgrade or restart it");
}

// The host's messages already say what to do next. kConflict is a state that forbids the
// operation (a dependency, root, a refused library): FAILED_PRECONDITION.
grpc::Status Failed(const Status& status) {
  if (status.code() == Code::kConflict) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, status.message());
  }
  return ToGrpc(status);
}

void ToProto(const addonhost::AddonInfo& info, v1::AddonStatus* out) {
  out->set_name(info.name);
  out->set_enabled(info.enabled);
  out->set_description(info.description);
  out->set_repository(info.repository);
  out->set_message(info.message);
  out->set_version(info.version);
  out->set_state(info.state);
  out->set_healthy(info.healthy);
  out->set_args(info.args);
  for (const addonhost::ArgSpec& spec : info.arg_specs) {
    v1::AddonArgument* arg = out->add_arguments();
    arg->set_name(spec.name);
    arg->set_help(spec.help);
    arg->set_type(addonhost::DescribeType(spec));
    arg->set_required(spec.required);
    arg->set_has_default(spec.default_value.has_value());
    if (spec.default_value) arg->set_default_value(*spec.default_value);
  }
  for (const std::string& dep : info.depends_on) out->add_depends_on(dep);
  out->set_needs_root(info.needs_root);
  out->set_path(info.path);
}

}  // namespace

void FillAddons(const ControlContext& context, bool with_health,
                google::protobuf::RepeatedPtrField<v1::AddonStatus>* out) {
  if (context.addons == nullptr) return;
  for (const addonhost::AddonInfo& info : context.addons->List(with_health)) {
    ToProto(info, out->Add());
  }
}

grpc::Status ControlService::EnableAddon(grpc::ServerContext*,
                                         const v1::EnableAddonRequest* request,
                                         v1::EnableAddonResponse* reply) {
  if (context_->addons == nullptr) return NoAddonHost();
  Result<addonhost::AddonOutcome> outcome =
      context_->addons->Enable(request->name(), request->args(), request->dry_run());
  if (!outcome.ok()) return Failed(outcome.status());
  reply->set_changed(outcome->changed);
  reply->set_message(outcome->message);
  for (const addonhost::AddonInfo& info : context_->addons->List(false)) {
    if (info.name == request->name()) ToProto(info, reply->mutable_addon());
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::DisableAddon(grpc::ServerContext*,
                                          const v1::DisableAddonRequest* request,
                                          v1::DisableAddonResponse* reply) {
  if (context_->addons == nullptr) return NoAddonHost();
  Result<addonhost::AddonOutcome> outcome = context_->addons->Disable(request->name());
  if (!outcome.ok()) return Failed(outcome.status());
  reply->set_changed(outcome->changed);
  reply->set_message(outcome->message);
  return grpc::Status::OK;
}

grpc::Status ControlService::ListAddons(grpc::ServerContext*, const v1::ListAddonsRequest* request,
                                        v1::ListAddonsResponse* reply) {
  if (context_->addons == nullptr) return NoAddonHost();
  FillAddons(*context_, request->with_health(), reply->mutable_addons());
  return grpc::Status::OK;
}

}  // namespace mk8s::control
