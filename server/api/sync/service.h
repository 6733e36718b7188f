#pragma once

// How agents learn which entries they are authorized for:
//  - SPIRE's Entry.GetAuthorizedEntries and Entry.SyncAuthorizedEntries (for
//    SPIRE agents and tools), served from the in-memory EntryIndex;
//  - Sigil's AgentSync.WatchAuthorized push stream: the full set on
//    connect, then a delta the moment an entry, the agent's node selectors or
//    a needed bundle changes.
// All of them require an active agent X509-SVID.

#include <grpcpp/grpcpp.h>

#include <deque>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ca/manager.h"
#include "server/api/auth.h"
#include "server/api/entry/service.h"
#include "server/entry_index.h"
#include "server/store/store.h"
#include "sigil/agent/v1/sync.grpc.pb.h"

namespace sigil::server::api {

// SPIRE's page size for SyncAuthorizedEntries.
inline constexpr int kSyncEntryPageSize = 500;

// The Entry service with the agent-facing RPCs added.
class EntryServiceWithAuthorized final : public EntryService {
 public:
  EntryServiceWithAuthorized(Store* store, Authenticator* authn, const Clock* clock, spiffe::TrustDomain td,
                             EntryIndex* index)
      : EntryService(store, authn, clock, std::move(td)), index_(index) {}

  // spire::api::server::entry::v1::Entry::Service
  grpc::Status GetAuthorizedEntries(grpc::ServerContext* ctx,
                                    const spire::api::server::entry::v1::GetAuthorizedEntriesRequest* req,
                                    spire::api::server::entry::v1::GetAuthorizedEntriesResponse* resp) override;
  grpc::Status SyncAuthorizedEntries(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<spire::api::server::entry::v1::SyncAuthorizedEntriesResponse,
                               spire::api::server::entry::v1::SyncAuthorizedEntriesRequest>* stream) override;

 private:
  EntryIndex* const index_;
};

// WatchAuthorized on gRPC's callback API: an open stream costs memory, not a
// thread, so one server holds the streams of many thousands of agents. The
// entry index's change notifications mark streams dirty; a small pool of
// worker threads computes each dirty stream's delta and starts its write.
class AgentSyncService final : public sigil::agent::v1::AgentSync::CallbackService {
 public:
  // `ca` tells streams which X.509 authority signs new SVIDs. Every
  // `recheck_interval` all streams re-check their agent and the active
  // authority even without a notification (a safety net: bans, evictions and
  // rotations already notify). `workers`: threads computing deltas.
  AgentSyncService(EntryIndex* index, Store* store, Authenticator* authn, const ca::CaManager* ca,
                   spiffe::TrustDomain td, absl::Duration recheck_interval = absl::Seconds(5), int workers = 2);
  // Ends every open stream (UNAVAILABLE) and stops the workers. The gRPC
  // server must have been shut down first, or be shutting down.
  ~AgentSyncService() override;

  // sigil::agent::v1::AgentSync::CallbackService
  grpc::ServerWriteReactor<sigil::agent::v1::WatchAuthorizedUpdate>* WatchAuthorized(
      grpc::CallbackServerContext* ctx, const sigil::agent::v1::WatchAuthorizedRequest* req) override;

  // Ends every open stream with UNAVAILABLE and refuses new ones, so agents
  // reconnect (elsewhere, or after a restart) at once instead of waiting for
  // the server's shutdown grace period. Idempotent.
  void EndAll();

 private:
  class Stream;
  // Queues `stream` for a worker unless it is already queued.
  void Schedule(const std::shared_ptr<Stream>& stream);
  void MarkAllDirty();
  void Work();
  void Tick();
  // Builds and sends the next delta of `stream` if anything changed.
  void Process(const std::shared_ptr<Stream>& stream);
  void ProcessClaimed(const std::shared_ptr<Stream>& stream);

  EntryIndex* const index_;
  Store* const store_;
  Authenticator* const authn_;
  const ca::CaManager* const ca_;
  const spiffe::TrustDomain td_;
  const absl::Duration recheck_interval_;

  absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<Stream>> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_stream_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<EntryIndex::Subscription> subscription_;
  std::vector<std::thread> threads_;
};

}  // namespace sigil::server::api
