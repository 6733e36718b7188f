#pragma once

// The server's Authenticator: local callers by listener, everyone else by a
// verified X509-SVID of this trust domain (see auth.h for the kinds).

#include "ca/manager.h"
#include "common/clock.h"
#include "server/api/auth.h"
#include "server/entry_index.h"
#include "server/store/store.h"

namespace sigil::server::api {

class ServerAuthenticator final : public Authenticator {
 public:
  // The pointers must outlive the authenticator.
  ServerAuthenticator(Store* store, EntryIndex* index, ca::CaManager* ca, const Clock* clock)
      : store_(store), index_(index), ca_(ca), clock_(clock) {}

  // api::Authenticator
  absl::StatusOr<Caller> Authenticate(const grpc::ServerContext& ctx) override;

 private:
  // Checks an agent SVID against the agent's record; promotes a renewed
  // SVID to current on its first use.
  absl::Status CheckAgent(const spiffe::SpiffeId& id, const crypto::Certificate& leaf);

  Store* const store_;
  EntryIndex* const index_;
  ca::CaManager* const ca_;
  const Clock* const clock_;
};

}  // namespace sigil::server::api
