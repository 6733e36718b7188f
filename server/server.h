#pragma once

// sigil-server: wires the datastore, the CA, the entry index and the API
// services to two listeners (the admin Unix socket and the TLS port) and
// runs the rotation loop.

#include <atomic>
#include <memory>
#include <thread>

#include <grpcpp/server.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "attestors/node/server_attestor.h"
#include "ca/key_manager.h"
#include "ca/manager.h"
#include "ca/upstream_authority.h"
#include "common/clock.h"
#include "server/config.h"
#include "server/datastore/kv_store.h"
#include "server/entry_index.h"
#include "server/node_attestation.h"
#include "server/server_svid.h"
#include "server/store/store.h"

namespace sigil::server {

namespace api {
class AgentSyncService;
class ServerAuthenticator;
}  // namespace api

class Server {
 public:
  // Opens everything and starts serving: data_dir (0700), datastore, keys,
  // CA (first authorities on first start), server SVID, both listeners.
  // FailedPrecondition when the data_dir is locked by another server or the
  // socket is served by another process; errors name what failed.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerSettings& settings, const Clock* clock);
  ~Server();

  // Blocks until Shutdown() is called (from another thread or a signal).
  void Wait();
  // Stops accepting calls, lets running calls finish for up to `grace`,
  // stops the rotation loop and closes the datastore. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

  // The TCP port actually bound (useful with bind_port 0).
  int tcp_port() const { return tcp_port_; }
  ca::CaManager* ca() { return ca_.get(); }
  Store* store() { return store_.get(); }

 private:
  explicit Server(const ServerSettings& settings, const Clock* clock);
  absl::Status Init();
  absl::Status PrepareSocketPath();
  void RotationLoop();

  ServerSettings settings_;
  const Clock* const clock_;
  const absl::Time started_;

  std::unique_ptr<datastore::KvStore> kv_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<LocalBundlePublisher> publisher_;
  std::unique_ptr<ca::KeyManager> keys_;
  std::unique_ptr<ca::UpstreamAuthority> upstream_;
  std::unique_ptr<ca::CaManager> ca_;
  std::unique_ptr<EntryIndex> index_;
  std::unique_ptr<ServerSvid> server_svid_;
  std::unique_ptr<StoreTokenAdapter> token_adapter_;
  std::unique_ptr<attestors::node::ServerAttestorRegistry> attestors_;
  std::unique_ptr<NodeAttestation> attestation_;
  std::unique_ptr<api::ServerAuthenticator> authn_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  // Also in services_; ended first at shutdown.
  api::AgentSyncService* sync_service_ = nullptr;
  std::unique_ptr<grpc::Server> grpc_server_;
  int tcp_port_ = 0;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread rotation_thread_;
};

}  // namespace sigil::server
