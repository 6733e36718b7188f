#pragma once

// sigil-agent: wires the agent's parts together and runs them.
//
//   AgentIdentity  resume the stored agent SVID, or attest; renew it
//   ServerClient   verified TLS channels to the server
//   Syncer         the WatchAuthorized push stream → SvidCache
//   SvidRotator    workload X509-SVIDs minted in batches, renewed at ~half life
//   SvidCache      entries, bundles, SVIDs; the Workload API's IdentitySource
//   WorkloadApiServer  the SPIFFE Workload API on a Unix socket
//
// Threads: a control thread establishes the identity (retrying while the
// server is unreachable), then runs the syncer and a rotation thread (SVID
// rotation, agent SVID renewal, expiry) until shutdown or until the server
// refuses the agent's identity (PERMISSION_DENIED: evicted, banned). Then
// the stored SVID is deleted and the agent attests again; if that is not
// possible (no attestor, or e.g. a join token that was already used) the
// agent stops and Wait() returns the cause. Workloads keep being served
// from the cache throughout.

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "attestors/node/agent_attestor.h"
#include "attestors/workload/workload_attestor.h"
#include "common/clock.h"
#include "node-agent/agent_identity.h"
#include "node-agent/config.h"
#include "node-agent/server_client.h"
#include "node-agent/state.h"
#include "node-agent/svid_cache.h"
#include "node-agent/svid_rotator.h"
#include "node-agent/syncer.h"

namespace sigil::agent {

class WorkloadApiServer;

struct AgentOptions {
  // Not owned. Default: RealClock.
  const Clock* clock = nullptr;
  // Serve the Workload API on settings.socket_path. Default: true.
  bool serve_workload_api = true;
  // Deadline of unary server calls. Default: 30 s.
  absl::Duration rpc_timeout = absl::Seconds(30);
  // Backoff between attestation attempts while the server is unreachable.
  // Default: 1 s doubling to 30 s.
  absl::Duration attest_initial_backoff = absl::Seconds(1);
  absl::Duration attest_max_backoff = absl::Seconds(30);
  SyncerOptions sync;
  // `clock` fields of these are filled in by the agent.
  SvidRotatorOptions rotation;
  AgentIdentityOptions identity;
  SvidCacheOptions cache;
};

class Agent {
 public:
  // Prepares data_dir, loads the stored state, checks that the agent can
  // obtain an identity, binds the Workload API socket and starts the control
  // thread. FailedPrecondition when another agent uses data_dir, or when
  // there is no usable agent state and the
  // agent cannot attest: no node attestor, or no trust bundle (neither
  // stored nor trust_bundle_path) without insecure_bootstrap; the errors of
  // the Workload API socket (e.g. AlreadyExists when another agent serves
  // it) and of the file system otherwise.
  static absl::StatusOr<std::unique_ptr<Agent>> Start(const AgentSettings& settings, AgentOptions options = {});
  // Shutdown().
  ~Agent();

  // Blocks until Shutdown() (OK) or until the agent cannot go on: its
  // identity was refused and re-attestation failed, or attestation failed
  // for a reason retrying cannot fix. The status says why.
  absl::Status Wait();
  // Stops everything (idempotent).
  void Shutdown();

  // Waits until the first full sync was applied; false on timeout.
  bool WaitUntilSynced(absl::Duration timeout);

  SvidCache* cache() { return cache_.get(); }
  AgentIdentity* identity() { return identity_.get(); }
  ServerClient* client() { return client_.get(); }
  Syncer* syncer();

 private:
  Agent(const AgentSettings& settings, AgentOptions options);
  absl::Status Init();
  void ControlLoop();
  // One session with an established identity: runs the syncer and the
  // rotation thread until shutdown or refusal. Returns the refusal (OK on
  // shutdown).
  absl::Status RunSession();
  void RotationLoop();
  void OnIdentityRefused(const absl::Status& status);
  void OnCacheChange(const SvidCache::ChangeEvent& event);
  // Waits `d` unless stopping; false when stopping.
  bool SleepUnlessStopping(absl::Duration d);
  absl::Status ReattestFailure(const absl::Status& refusal, const absl::Status& attest) const;

  const AgentSettings settings_;
  AgentOptions options_;
  const Clock* const clock_;

  std::unique_ptr<AgentStateStore> store_;
  std::unique_ptr<DataDirLock> lock_;
  std::unique_ptr<SvidCache> cache_;
  std::unique_ptr<ServerClient> client_;
  std::unique_ptr<attestors::node::AgentAttestor> attestor_;
  std::unique_ptr<AgentIdentity> identity_;
  std::unique_ptr<SvidRotator> rotator_;
  std::unique_ptr<attestors::workload::WorkloadAttestorRegistry> workload_attestors_;
  std::unique_ptr<WorkloadApiServer> workload_api_;
  bool resumed_ = false;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
  // Set by OnIdentityRefused during a session.
  absl::Status refused_ ABSL_GUARDED_BY(mu_);
  bool session_stop_ ABSL_GUARDED_BY(mu_) = false;
  bool rotation_poke_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<Syncer> syncer_ ABSL_GUARDED_BY(mu_);

  absl::Mutex bundle_mu_;
  std::string saved_bundle_pem_ ABSL_GUARDED_BY(bundle_mu_);

  std::thread control_thread_;
};

}  // namespace sigil::agent
