#pragma once

// How agents learn which entries they are authorized for:
//  - SPIRE's Entry.GetAuthorizedEntries and Entry.SyncAuthorizedEntries (for
//    SPIRE agents and tools), served from the in-memory EntryIndex;
//  - Sigil's AgentSync.WatchAuthorized push stream: the full set on
//    connect, then a delta the moment an entry, the agent's node selectors or
//    a needed bundle changes.
// All of them require an active agent X509-SVID.

#include <grpcpp/grpcpp.h>

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

class AgentSyncService final : public sigil::agent::v1::AgentSync::Service {
 public:
  // `recheck_interval`: how often an idle stream re-checks that the agent is
  // still attested and unbanned (changes to agent records also wake it).
  // `ca` tells streams which X.509 authority signs new SVIDs.
  AgentSyncService(EntryIndex* index, Store* store, Authenticator* authn, const ca::CaManager* ca,
                   spiffe::TrustDomain td, absl::Duration recheck_interval = absl::Seconds(1))
      : index_(index),
        store_(store),
        authn_(authn),
        ca_(ca),
        td_(std::move(td)),
        recheck_interval_(recheck_interval) {}

  // sigil::agent::v1::AgentSync::Service
  grpc::Status WatchAuthorized(grpc::ServerContext* ctx, const sigil::agent::v1::WatchAuthorizedRequest* req,
                               grpc::ServerWriter<sigil::agent::v1::WatchAuthorizedUpdate>* writer) override;

 private:
  EntryIndex* const index_;
  Store* const store_;
  Authenticator* const authn_;
  const ca::CaManager* const ca_;
  const spiffe::TrustDomain td_;
  const absl::Duration recheck_interval_;
};

}  // namespace sigil::server::api
