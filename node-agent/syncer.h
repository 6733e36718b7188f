#pragma once

// Holds the agent's one AgentSync.WatchAuthorized stream and applies what
// the server pushes (the full authorized state first, then deltas) to the
// cache. When the stream fails or ends, the cache keeps serving what it has
// and the stream is reopened after an exponential, jittered backoff
// (initial_backoff doubling up to max_backoff; back to initial_backoff
// after a stream that delivered at least one update). Each new stream uses
// the client's current channel, i.e. the current agent SVID.
//
// PERMISSION_DENIED ends of the stream are reported through
// ServerClient::CheckStatus (the agent then re-attests or stops).

#include <cstdint>
#include <memory>
#include <random>
#include <thread>

#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "node-agent/server_client.h"
#include "node-agent/svid_cache.h"

namespace sigil::agent {

struct SyncerOptions {
  // Reconnection backoff. Default: 1 s doubling to 30 s, each wait
  // jittered to 50..100% of its value.
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(30);
};

class Syncer {
 public:
  // `client` and `cache` are not owned and must outlive the syncer.
  Syncer(ServerClient* client, SvidCache* cache, SyncerOptions options = {});
  // Stop().
  ~Syncer();

  // Starts the stream thread. Once only.
  void Start();
  // Cancels the stream and joins the thread. Idempotent.
  void Stop();

  // Streams opened so far, and updates applied (diagnostics, tests).
  int64_t streams_opened() const;
  int64_t updates_applied() const;

 private:
  void Run();
  // Waits `d` unless Stop() is called; false when stopping.
  bool Sleep(absl::Duration d);

  ServerClient* const client_;
  SvidCache* const cache_;
  const SyncerOptions options_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t streams_opened_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t updates_applied_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
};

}  // namespace sigil::agent
