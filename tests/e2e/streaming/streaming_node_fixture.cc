// streaming_node_fixture: a minimal node for the kubectl exec/port-forward e2e test. Inside
// the caller's network namespace (in-netns.sh) it starts containerd through the supervisor,
// runs one pod (namespace default, the given name; container "main": busybox httpd on :80 with
// /www/index.html = "hello from the pod"; container "ticker": "tick <n>" every 200 ms), labelled
// like the kubelet labels pods, and serves the kubelet API (logs + /exec /attach /portforward
// through StreamingService) with the node's serving certificate from the given credentials folder
// (whose cluster CA an mk8sd created). Prints "port=<n>" once ready; tears everything down when
// stdin closes.
//
//   streaming_node_fixture --credentials-dir DIR --work-dir DIR --pod NAME --oci-image-script P
#include <poll.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "kubelet/server/kubelet_server.h"
#include "kubelet/streaming/cri_streaming_runtime.h"
#include "kubelet/streaming/streaming_service.h"
#include "pki/kubelet_certs.h"
#include "runtime/containerd.h"
#include "runtime/containerd_config.h"
#include "runtime/cri_client.h"
#include "runtime/images.h"
#include "runtime/process_util.h"

namespace {

namespace fs = std::filesystem;
namespace rt = mk8s::runtime;
namespace cri = ::runtime::v1;

int Fail(const std::string& why) {
  std::fprintf(stderr, "streaming_node_fixture: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string credentials_dir, work_dir, pod = "web", script;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--credentials-dir")
      credentials_dir = value;
    else if (flag == "--work-dir")
      work_dir = value;
    else if (flag == "--pod")
      pod = value;
    else if (flag == "--oci-image-script")
      script = value;
    else
      return Fail("unknown flag " + flag);
  }
  if (credentials_dir.empty() || work_dir.empty() || script.empty()) return Fail("missing flags");
  spdlog::set_default_logger(spdlog::stderr_color_mt("node"));  // stdout carries the port
  signal(SIGPIPE, SIG_IGN);

  const std::string image = "localhost/mk8s-test/stream:1";
  const std::string page = work_dir + "/index.html";
  std::ofstream(page) << "hello from the pod\n";
  auto built = rt::RunCommand({"/usr/bin/python3", script, "--name", image, "--busybox",
                               "--entrypoint", "/bin/httpd", "--cmd", "-f -p 80 -h /www", "--file",
                               page + ":/www/index.html", "-o", work_dir + "/image.tar"},
                              std::chrono::seconds(60));
  if (!built.ok() || built->exit_code != 0) return Fail("building the image failed");
  auto pause_tar = rt::FindPauseImageTarball();
  if (!pause_tar.ok()) return Fail(pause_tar.status().ToString());

  rt::CniNetworkOptions net;
  net.network_name = "mk8s-stream";
  net.bridge_name = "mk8sst" + std::to_string(::getpid() % 100000);
  net.subnet = "10.1.9.0/24";
  net.ipam_data_dir = work_dir + "/cni/ipam";
  if (auto s = rt::WriteCniConflist(work_dir + "/cni/net.d", net); !s.ok())
    return Fail(s.ToString());
  rt::ContainerdOptions options;
  options.state_dir = work_dir + "/containerd";
  options.cni_conf_dir = work_dir + "/cni/net.d";
  options.sandbox_image = rt::PauseImageRef();
  auto containerd = rt::Containerd::Start(options);
  if (!containerd.ok()) return Fail(containerd.status().ToString());
  auto client = rt::CriClient::Connect((*containerd)->socket());
  if (!client.ok()) return Fail(client.status().ToString());
  std::unique_ptr<rt::CriClient> cri_client = std::move(*client);
  int exit_code = 0;
  std::string sandbox_id;
  [&] {
    for (int i = 0; i < 200 && !cri_client->ConditionTrue("NetworkReady"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto pause =
        rt::EnsurePauseImage(*cri_client, (*containerd)->socket(), *pause_tar, rt::PauseImageRef());
    if (!pause.ok()) return void(exit_code = Fail(pause.status().ToString()));
    auto imported = rt::ImportImage((*containerd)->socket(), work_dir + "/image.tar");
    if (!imported.ok()) return void(exit_code = Fail(imported.status().ToString()));

    const std::string uid = "uid-" + std::to_string(::getpid());
    const std::string log_dir = work_dir + "/logs/default_" + pod + "_" + uid;
    fs::create_directories(log_dir);
    cri::PodSandboxConfig sandbox;
    sandbox.mutable_metadata()->set_name(pod);
    sandbox.mutable_metadata()->set_namespace_("default");
    sandbox.mutable_metadata()->set_uid(uid);
    sandbox.set_hostname(pod);
    sandbox.set_log_directory(log_dir);
    auto& labels = *sandbox.mutable_labels();
    labels["io.kubernetes.pod.name"] = pod;
    labels["io.kubernetes.pod.namespace"] = "default";
    labels["io.kubernetes.pod.uid"] = uid;
    auto id = cri_client->RunPodSandbox(sandbox);
    if (!id.ok()) return void(exit_code = Fail(id.status().ToString()));
    sandbox_id = *id;
    // "main": httpd on :80; "ticker": prints a line every 200 ms (for attach).
    for (const char* name : {"main", "ticker"}) {
      cri::ContainerConfig container;
      container.mutable_metadata()->set_name(name);
      container.mutable_image()->set_image(image);
      container.set_log_path(std::string(name) + "/0.log");
      if (std::string(name) == "ticker") {
        container.add_command("/bin/sh");
        container.add_args("-c");
        container.add_args("i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done");
      }
      for (const auto& [k, v] : labels) (*container.mutable_labels())[k] = v;
      (*container.mutable_labels())["io.kubernetes.container.name"] = name;
      (*container.mutable_annotations())["io.kubernetes.container.restartCount"] = "0";
      auto container_id = cri_client->CreateContainer(sandbox_id, container, sandbox);
      if (!container_id.ok()) return void(exit_code = Fail(container_id.status().ToString()));
      if (auto s = cri_client->StartContainer(*container_id); !s.ok())
        return void(exit_code = Fail(s.ToString()));
    }

    auto files =
        mk8s::pki::LoadOrCreateKubeletServingCert(credentials_dir, "stream-node", {"127.0.0.1"});
    if (!files.ok()) return void(exit_code = Fail(files.status().ToString()));
    mk8s::kubelet::StreamingService streaming(
        mk8s::kubelet::MakeCriStreamingRuntime(cri_client.get()));
    mk8s::kubelet::KubeletServerOptions server_options;
    server_options.bind_address = "127.0.0.1";
    server_options.port = 0;
    server_options.log_root = work_dir + "/logs";
    server_options.cert_file = files->cert_file;
    server_options.key_file = files->key_file;
    server_options.client_ca_file = files->ca_file;
    server_options.streaming = [&streaming](auto& request, auto& responder) {
      return streaming.Serve(request, responder);
    };
    auto server = mk8s::kubelet::KubeletServer::Start(std::move(server_options));
    if (!server.ok()) return void(exit_code = Fail(server.status().ToString()));
    std::printf("port=%u\n", (*server)->port());
    std::fflush(stdout);
    char buffer[256];
    while (::read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
    }
    (*server)->Stop();
    streaming.Stop();
  }();
  if (!sandbox_id.empty()) {
    (void)cri_client->StopPodSandbox(sandbox_id);
    (void)cri_client->RemovePodSandbox(sandbox_id);
  }
  cri_client.reset();
  (void)(*containerd)->Stop();
  return exit_code;
}
