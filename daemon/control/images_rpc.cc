// mk8s.v1.Control's image RPCs (`mk8s images import|ls`), answered by the node's containerd
// through daemon/runtime.
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "control/services.h"
#include "runtime/cri_client.h"
#include "runtime/images.h"

namespace mk8s::control {
namespace {

grpc::Status NoRuntime() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "this mk8sd runs no container runtime (started with --components without "
                      "kubelet): run the command on a node that runs the kubelet");
}

// containerd is down or (re)starting: not a daemon failure the CLI should call "not running".
grpc::Status RuntimeNotReady(const std::string& socket, const mk8s::Status& status) {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "the container runtime is not ready (" + status.message() + " at " + socket +
                          "): retry in a moment; 'mk8s status' shows the kubelet's state");
}

}  // namespace

grpc::Status ControlService::ImportImage(grpc::ServerContext*,
                                         const v1::ImportImageRequest* request,
                                         v1::ImportImageResponse* reply) {
  const std::string& socket = context_->containerd_socket;
  if (socket.empty()) return NoRuntime();
  const std::string& path = request->path();
  if (path.empty() || path.front() != '/') {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the image tarball path must be absolute, got '" + path + "'");
  }
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, path + " is not a file");
  }
  auto cri = runtime::CriClient::Connect(socket);
  if (!cri.ok()) return ToGrpc(cri.status());
  if (auto version = (*cri)->Version(); !version.ok()) {
    return RuntimeNotReady(socket, version.status());
  }
  auto imported = runtime::ImportImage(socket, path);
  if (!imported.ok()) {
    if (imported.status().code() == Code::kInvalidArgument) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          imported.status().message() + " (expected an OCI image layout or 'docker save' tarball)");
    }
    return ToGrpc(imported.status());
  }
  std::string names;
  for (const auto& name : *imported) {
    reply->add_images(name);
    names += (names.empty() ? "" : ", ") + name;
  }
  spdlog::info("image import of {}: {}", path, names);
  return grpc::Status::OK;
}

grpc::Status ControlService::ListImages(grpc::ServerContext*, const v1::ListImagesRequest*,
                                        v1::ListImagesResponse* reply) {
  const std::string& socket = context_->containerd_socket;
  if (socket.empty()) return NoRuntime();
  auto cri = runtime::CriClient::Connect(socket);
  if (!cri.ok()) return ToGrpc(cri.status());
  auto images = (*cri)->ListImages();
  if (!images.ok()) {
    if (images.status().code() == Code::kUnavailable) {
      return RuntimeNotReady(socket, images.status());
    }
    return ToGrpc(images.status());
  }
  for (const auto& image : *images) {
    v1::ImageInfo* out = reply->add_images();
    out->set_id(image.id());
    for (const auto& tag : image.repo_tags()) out->add_repo_tags(tag);
    for (const auto& digest : image.repo_digests()) out->add_repo_digests(digest);
    out->set_size_bytes(image.size());
    out->set_pinned(image.pinned());
  }
  return grpc::Status::OK;
}

}  // namespace mk8s::control
