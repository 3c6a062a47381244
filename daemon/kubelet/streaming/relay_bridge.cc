// Byte relay between an upgraded client and the runtime's streaming server. See bridges.h.
#include <atomic>
#include <chrono>
#include <thread>

#include "kubelet/streaming/bridges.h"
#include "kubelet/streaming/websocket.h"

namespace mk8s::kubelet {
namespace {

namespace http = apiserver::http;

struct RelayState {
  std::unique_ptr<UpstreamSocket> upstream;
  std::shared_ptr<http::UpgradedConnection> client;
  bool tunnel = false;
  ws::FrameParser parser;  // transport thread only
  std::atomic<bool> client_gone{false};

  void OnClientBytes(std::string_view bytes) {
    if (!tunnel) {
      if (!upstream->SendAll(bytes)) client->Close();
      return;
    }
    parser.Feed(bytes);
    while (true) {
      Result<std::optional<ws::Message>> message = parser.Next();
      if (!message.ok()) {
        client->Write(ws::EncodeClose(1002));
        client->Close();
        upstream->Shutdown();
        return;
      }
      if (!message->has_value()) return;
      ws::Message& m = **message;
      if (m.opcode == ws::Opcode::kClose) {
        client->Write(ws::EncodeClose(1000));
        client->Close();
        upstream->Shutdown();
        return;
      }
      if (m.opcode == ws::Opcode::kPing) {
        client->Write(ws::EncodeFrame(ws::Opcode::kPong, m.payload));
      } else if (m.opcode == ws::Opcode::kBinary || m.opcode == ws::Opcode::kText) {
        if (!upstream->SendAll(m.payload)) client->Close();
      }
    }
  }
};

}  // namespace

void RunRelay(std::unique_ptr<UpstreamSocket> upstream,
              std::shared_ptr<http::UpgradedConnection> client, bool websocket_tunnel) {
  auto state = std::make_shared<RelayState>();
  state->upstream = std::move(upstream);
  state->client = std::move(client);
  state->tunnel = websocket_tunnel;
  state->client->Start([state](std::string_view bytes) { state->OnClientBytes(bytes); },
                       [state] {
                         state->client_gone = true;
                         state->upstream->Shutdown();
                       });
  while (true) {
    const std::string bytes = state->upstream->Read();
    if (bytes.empty()) break;
    while (state->client->buffered_bytes() > kClientBacklogBytes && !state->client_gone) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (state->client_gone) break;
    state->client->Write(websocket_tunnel ? ws::EncodeFrame(ws::Opcode::kBinary, bytes) : bytes);
  }
  state->upstream->Shutdown();
  if (!state->client_gone) {
    if (websocket_tunnel) state->client->Write(ws::EncodeClose(1000));
    state->client->Close();
  }
}

}  // namespace mk8s::kubelet
