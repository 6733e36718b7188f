#pragma once

// The agent's own identity: its agent X509-SVID, how it is obtained (node
// attestation, AttestAgent), kept (AgentStateStore) and renewed (RenewAgent).
//
//  - Resume(): after a restart, the stored SVID is used again (no
//    re-attestation) when it is unexpired; whether the server still accepts
//    it shows on the first authenticated call (PERMISSION_DENIED otherwise).
//  - Attest(): a fresh key and CSR, the attestor's evidence and challenge
//    answers, then the trust bundle is fetched (GetBundle) over the now
//    authenticated channel, the SVID is verified against it, and SVID, key
//    and bundle are written to data_dir before they are used.
//  - RenewIfDue(): at a random point between 45% and 55% of the SVID's
//    lifetime, RenewAgent with a new key; the new files are written before
//    the old ones are replaced, then the client's channel is rebuilt with
//    the new SVID (which becomes the agent's only valid one on first use).
//    Failures are retried with a jittered exponential backoff.
//  - Forget(): deletes the stored SVID and key (the bundle stays: it is
//    still the best knowledge of the trust domain's authorities).
//
// Thread-safe.

#include <memory>
#include <optional>
#include <random>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "attestors/node/agent_attestor.h"
#include "common/clock.h"
#include "node-agent/server_client.h"
#include "node-agent/state.h"
#include "node-agent/svid_cache.h"
#include "spiffe/crypto/key.h"
#include "spiffe/x509svid.h"

namespace sigil::agent {

struct AgentIdentityOptions {
  // Not owned; must be set.
  const Clock* clock = nullptr;
  // Key type of the agent SVID. Default: EC P-256.
  crypto::KeyType key_type = crypto::KeyType::kEcP256;
  // Renewal window as fractions of the lifetime. Default: 0.45 .. 0.55.
  double renew_window_start = 0.45;
  double renew_window_end = 0.55;
  // Retry backoff of failed renewals. Default: 1 s doubling to 30 s.
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(30);
};

class AgentIdentity {
 public:
  // The pointers are not owned and must outlive this object; `attestor` may
  // be null when none is configured (then only Resume() can succeed).
  AgentIdentity(AgentStateStore* store, ServerClient* client, SvidCache* cache,
                attestors::node::AgentAttestor* attestor, AgentIdentityOptions options);

  // Uses the stored SVID when there is one and it has not expired: true.
  // False when there is none or it is unusable (corrupt, expired; the reason
  // is logged). Errors of the file system otherwise.
  absl::StatusOr<bool> Resume();
  // Attests the node. FailedPrecondition when no attestor is configured;
  // otherwise the errors of ServerClient::AttestAgent / GetBundle, of
  // verification (InvalidArgument) and of writing the state.
  absl::Status Attest();
  // Renews when due; OK when nothing was due. The server's error otherwise
  // (the next attempt is then delayed by the backoff).
  absl::Status RenewIfDue();
  // Renews now.
  absl::Status Renew();
  // Deletes the stored SVID and stops presenting it.
  absl::Status Forget();

  // When RenewIfDue() will next do something; InfiniteFuture without an SVID.
  absl::Time NextRenewal() const;
  std::optional<spiffe::X509Svid> current() const;

 private:
  absl::StatusOr<std::pair<crypto::PrivateKey, std::string>> NewKeyAndCsr(const std::vector<std::string>& uris) const;
  // Verifies and adopts `svid`: persisted, presented, renewal scheduled.
  absl::Status Adopt(spiffe::X509Svid svid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time PickRenewal(const spiffe::X509Svid& svid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  AgentStateStore* const store_;
  ServerClient* const client_;
  SvidCache* const cache_;
  attestors::node::AgentAttestor* const attestor_;
  const AgentIdentityOptions options_;

  mutable absl::Mutex mu_;
  std::optional<spiffe::X509Svid> current_ ABSL_GUARDED_BY(mu_);
  absl::Time renew_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
};

}  // namespace sigil::agent
