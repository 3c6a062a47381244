// Internal to daemon/control: the gRPC service implementations. Includes gRPC headers, so only
// the control folder's .cc files include it.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>

#include "common/status.h"
#include "control/control_server.h"
#include "mk8s/v1/control.grpc.pb.h"

namespace mk8s::control {

// Maps a store/daemon Status onto the nearest gRPC status code, keeping the message.
grpc::Status ToGrpc(const Status& status);

// Appends every addon (with its health when `with_health`) to `out` (addons_rpc.cc).
void FillAddons(const ControlContext& context, bool with_health,
                google::protobuf::RepeatedPtrField<v1::AddonStatus>* out);

class ControlService final : public mk8s::v1::Control::Service {
 public:
  explicit ControlService(const ControlContext* context) : context_(context) {}

  grpc::Status Version(grpc::ServerContext*, const v1::VersionRequest*,
                       v1::VersionResponse* reply) override;
  grpc::Status Status(grpc::ServerContext*, const v1::StatusRequest*,
                      v1::StatusResponse* reply) override;
  grpc::Status Stop(grpc::ServerContext*, const v1::StopRequest*, v1::StopResponse*) override;
  grpc::Status Backup(grpc::ServerContext*, const v1::BackupRequest* request,
                      v1::BackupResponse* reply) override;
  grpc::Status Restore(grpc::ServerContext*, const v1::RestoreRequest* request,
                       v1::RestoreResponse* reply) override;
  grpc::Status GetKubeconfig(grpc::ServerContext*, const v1::GetKubeconfigRequest*,
                             v1::GetKubeconfigResponse* reply) override;
  // addons_rpc.cc
  grpc::Status EnableAddon(grpc::ServerContext*, const v1::EnableAddonRequest* request,
                           v1::EnableAddonResponse* reply) override;
  grpc::Status DisableAddon(grpc::ServerContext*, const v1::DisableAddonRequest* request,
                            v1::DisableAddonResponse* reply) override;
  grpc::Status ListAddons(grpc::ServerContext*, const v1::ListAddonsRequest* request,
                          v1::ListAddonsResponse* reply) override;
  // images_rpc.cc
  grpc::Status ImportImage(grpc::ServerContext*, const v1::ImportImageRequest* request,
                           v1::ImportImageResponse* reply) override;
  grpc::Status ListImages(grpc::ServerContext*, const v1::ListImagesRequest* request,
                          v1::ListImagesResponse* reply) override;

 private:
  const ControlContext* context_;  // not owned; outlives the service
};

class KvService final : public mk8s::v1::KV::Service {
 public:
  // `shutting_down` turns true when the server stops, ending open watch streams.
  KvService(const ControlContext* context, const std::atomic<bool>* shutting_down)
      : context_(context), shutting_down_(shutting_down) {}

  grpc::Status Get(grpc::ServerContext*, const v1::GetRequest* request,
                   v1::GetResponse* reply) override;
  grpc::Status List(grpc::ServerContext*, const v1::ListRequest* request,
                    v1::ListResponse* reply) override;
  grpc::Status Put(grpc::ServerContext*, const v1::PutRequest* request,
                   v1::PutResponse* reply) override;
  grpc::Status Delete(grpc::ServerContext*, const v1::DeleteRequest* request,
                      v1::DeleteResponse* reply) override;
  grpc::Status Watch(grpc::ServerContext* server_context, const v1::WatchRequest* request,
                     grpc::ServerWriter<v1::WatchEvent>* writer) override;

 private:
  const ControlContext* context_;          // not owned
  const std::atomic<bool>* shutting_down_;  // not owned
};

}  // namespace mk8s::control
