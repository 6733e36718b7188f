#pragma once

// What the Workload API needs from the rest of the agent: the identities and
// bundles a set of selectors entitles a workload to, and a way to hear about
// changes. The agent's SVID cache implements it; tests use fakes.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attestors/selector.h"
#include "spiffe/bundle.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/id.h"

namespace sigil::agent {

// One X509-SVID a workload may hold (one per matching registration entry).
struct X509Identity {
  std::string entry_id;
  spiffe::SpiffeId spiffe_id;
  std::string hint;
  // Leaf first, then intermediates; minted for `key`.
  std::vector<crypto::Certificate> chain;
  crypto::PrivateKey key;
  // Trust domain names whose bundles the workload receives as federated.
  std::vector<std::string> federates_with;
};

// Everything a workload with given selectors sees, at one moment.
struct WorkloadView {
  // Sorted by entry id. Entries whose SVID has not been minted yet are
  // absent (the view changes again once they are).
  std::vector<X509Identity> identities;
  // The agent's own trust domain bundle.
  std::shared_ptr<const spiffe::Bundle> bundle;
  // Federated bundles the identities federate with, keyed by trust domain name.
  std::map<std::string, std::shared_ptr<const spiffe::Bundle>> federated_bundles;
  // True once the agent has synchronized with the server at least once; a
  // view before that may be empty only because nothing has arrived yet.
  bool synced = false;
};

struct JwtIdentity {
  spiffe::SpiffeId spiffe_id;
  std::string token;
  std::string hint;
  absl::Time expires_at;
};

class IdentitySource {
 public:
  virtual ~IdentitySource() = default;

  class Subscription {
   public:
    virtual ~Subscription() = default;
  };

  // The current view for `selectors` (a matching entry's selectors must be a
  // subset of them). Thread-safe.
  virtual WorkloadView View(const attestors::Selectors& selectors) const = 0;

  // Calls `on_change` (from an agent thread; keep it quick) whenever the view
  // for `selectors` may have changed: entries, SVIDs or bundles. The caller
  // re-reads View() and decides whether anything it sends changed.
  // Unsubscribes when the handle is destroyed; after that `on_change` is not
  // running and will not run again. Thread-safe.
  virtual std::unique_ptr<Subscription> Subscribe(const attestors::Selectors& selectors,
                                                  std::function<void()> on_change) = 0;

  // JWT-SVIDs for `audience`, one per matching identity, or only for
  // `spiffe_id` when it is not empty (PermissionDenied when the selectors do
  // not entitle the workload to it). Served from a cache until half their
  // lifetime; otherwise minted by the server (Unavailable when it cannot be
  // reached). Thread-safe; may block on the server for a bounded time.
  virtual absl::StatusOr<std::vector<JwtIdentity>> FetchJwtSvids(const attestors::Selectors& selectors,
                                                                 const std::string& spiffe_id,
                                                                 const std::vector<std::string>& audience) = 0;

  // Every bundle the agent knows (own and federated), for validating
  // JWT-SVIDs of any trust domain. Thread-safe.
  virtual spiffe::BundleSet AllBundles() const = 0;
};

}  // namespace sigil::agent
