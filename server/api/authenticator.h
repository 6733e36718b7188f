#pragma once

// The server's Authenticator: local callers by listener, everyone else by a
// verified X509-SVID of this trust domain (see auth.h for the kinds).

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
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
  absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& ctx) override;

 private:
  // What verifying a presented chain established. Parsing and verifying a
  // chain costs several ECDSA verifications' worth of OpenSSL time, and an
  // agent presents the same SVID on every call, so results are cached per
  // presented chain until the certificate expires or the bundle changes.
  struct VerifiedPeer {
    spiffe::SpiffeId id;
    std::string serial_decimal;
    absl::Time not_before;
    absl::Time not_after;
  };
  // Verifies (or finds in the cache) the chain the peer presented; nullopt
  // when it presented none or one that does not verify.
  std::optional<VerifiedPeer> VerifyPeer(const grpc::ServerContextBase& ctx);

  // Checks an agent SVID against the agent's record; promotes a renewed
  // SVID to current on its first use.
  absl::Status CheckAgent(const spiffe::SpiffeId& id, const std::string& serial, absl::Time not_after);

  Store* const store_;
  EntryIndex* const index_;
  ca::CaManager* const ca_;
  const Clock* const clock_;

  absl::Mutex cache_mu_;
  // The bundle authorities the cached results were verified against.
  std::vector<crypto::Certificate> cache_roots_ ABSL_GUARDED_BY(cache_mu_);
  absl::flat_hash_map<std::string, VerifiedPeer> cache_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace sigil::server::api
