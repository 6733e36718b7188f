#pragma once

// The Entry service of SPIRE's server API (spire.api.server.entry.v1):
// registration entry administration, for local callers (admin socket) and
// admin SVIDs. Behaviour follows SPIRE: batch calls answer one
// types.Status per item in request order (OK carries the entry;
// ALREADY_EXISTS "similar entry already exists" carries the existing one),
// output masks select the returned fields (id is always set), a page_size of
// 0 or less lists everything.
//
// GetAuthorizedEntries and SyncAuthorizedEntries (agent callers) are not
// overridden here (UNIMPLEMENTED); the server serves them from a subclass
// backed by its entry index, so the class is not final and keeps its
// dependencies protected.

#include <grpcpp/grpcpp.h>

#include "common/clock.h"
#include "server/api/auth.h"
#include "server/store/store.h"
#include "spiffe/id.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"

namespace sigil::server::api {

// `entry` with only the fields selected by `mask` (nullptr: all of them);
// the id is always kept.
spire::api::types::Entry ApplyEntryMask(const spire::api::types::Entry& entry,
                                        const spire::api::types::EntryMask* mask);

class EntryService : public spire::api::server::entry::v1::Entry::Service {
 public:
  // The pointers must outlive the service.
  EntryService(Store* store, Authenticator* authn, const Clock* clock, spiffe::TrustDomain td);

  // spire.api.server.entry.v1.Entry (admin part)
  grpc::Status CountEntries(grpc::ServerContext* ctx,
                            const spire::api::server::entry::v1::CountEntriesRequest* req,
                            spire::api::server::entry::v1::CountEntriesResponse* resp) override;
  grpc::Status ListEntries(grpc::ServerContext* ctx,
                           const spire::api::server::entry::v1::ListEntriesRequest* req,
                           spire::api::server::entry::v1::ListEntriesResponse* resp) override;
  grpc::Status GetEntry(grpc::ServerContext* ctx,
                        const spire::api::server::entry::v1::GetEntryRequest* req,
                        spire::api::types::Entry* resp) override;
  grpc::Status BatchCreateEntry(grpc::ServerContext* ctx,
                                const spire::api::server::entry::v1::BatchCreateEntryRequest* req,
                                spire::api::server::entry::v1::BatchCreateEntryResponse* resp) override;
  grpc::Status BatchUpdateEntry(grpc::ServerContext* ctx,
                                const spire::api::server::entry::v1::BatchUpdateEntryRequest* req,
                                spire::api::server::entry::v1::BatchUpdateEntryResponse* resp) override;
  grpc::Status BatchDeleteEntry(grpc::ServerContext* ctx,
                                const spire::api::server::entry::v1::BatchDeleteEntryRequest* req,
                                spire::api::server::entry::v1::BatchDeleteEntryResponse* resp) override;

 protected:
  Store* const store_;
  Authenticator* const authn_;
  const Clock* const clock_;
  const spiffe::TrustDomain td_;
};

}  // namespace sigil::server::api
