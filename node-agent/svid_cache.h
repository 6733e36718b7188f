#pragma once

// The agent's cache: the registration entries the server authorized this
// agent for, the trust domain's bundle and the federated bundles those
// entries need, one X509-SVID (with its private key) per entry, and JWT-SVIDs
// minted on demand. It is what the Workload API serves (IdentitySource).
//
// Writers: the sync stream (ApplyUpdate) and the SVID rotator (DueSvids,
// StoreSvid, MarkFailed, Maintain). Readers: Workload API calls and streams.
//
// Matching: an entry matches a workload when the entry's selectors are a
// subset of the workload's. Entries without selectors match nothing, and
// node alias entries (parented to spiffe://<td>/spire/server) are never
// served and get no SVID: they only group agents.
//
// Renewal schedule (the rotator decides when; the cache records and
// reschedules):
//  - an entry without an SVID is due at once; a new entry or one whose
//    SPIFFE ID, DNS names or TTL changed loses its SVID at once;
//  - a deleted entry's SVID and JWT-SVIDs are dropped at once;
//  - SVIDs chaining to an authority that the bundle marks tainted, or that
//    left the bundle, become due at once;
//  - CA rotation: when the server announces a new active X.509 authority
//    (WatchAuthorizedUpdate.active_x509_authority_id), or the first SVID
//    signed by a CA never seen before arrives and is newer than the CA of
//    other cached SVIDs, the SVIDs of other CAs become due at a random moment
//    within ca_rotation_window (bounded by half their remaining lifetime):
//    all of them move to the new CA soon, but not in one burst;
//  - an SVID that expires before it could be renewed is dropped (Maintain).
//
// Notifications: after a change, subscribers whose view may differ are
// called (outside the cache's lock): those whose selectors are a superset
// of a changed entry's (old or new) selectors, those affected by a changed
// federated bundle, and everyone when the trust domain's bundle changes.
// Subscribers with identical selectors are grouped, so the cost of a change
// grows with the number of distinct selector sets, not of streams. A
// subscriber's callbacks never overlap; destroying its handle waits for a
// running callback, so a callback must not destroy its own handle.
//
// Thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "node-agent/server_api.h"
#include "node-agent/workload_api/identity_source.h"
#include "sigil/agent/v1/sync.pb.h"
#include "spire/api/types/entry.pb.h"

namespace sigil::agent {

struct SvidCacheOptions {
  // Not owned; must be set and outlive the cache.
  const Clock* clock = nullptr;
  // See "CA rotation" above. Default: 60 s.
  absl::Duration ca_rotation_window = absl::Seconds(60);
  // Seed of the jitter; 0 picks a random one. Default: 0.
  uint64_t seed = 0;
};

// What the rotator needs to mint an SVID for one entry.
struct DueSvid {
  std::string entry_id;
  spiffe::SpiffeId spiffe_id;
  // Identifies the entry's SVID-relevant content; StoreSvid refuses an SVID
  // minted for an older version.
  uint64_t version = 0;
  bool has_svid = false;
  // Consecutive failures to mint this entry's SVID.
  int failures = 0;
};

// A read-only look at one cached SVID (diagnostics and tests).
struct CachedSvidInfo {
  spiffe::SpiffeId spiffe_id;
  std::vector<crypto::Certificate> chain;
  absl::Time renew_at;
  absl::Time expires_at;
};

class SvidCache final : public IdentitySource {
 public:
  SvidCache(spiffe::TrustDomain td, SvidCacheOptions options);
  ~SvidCache() override;
  SvidCache(const SvidCache&) = delete;
  SvidCache& operator=(const SvidCache&) = delete;

  // ---- Sync side.

  // Applies one WatchAuthorized update (full: replaces entries and federated
  // bundles; delta: upserts and removals). Elements that do not validate (an
  // entry without id or with a bad SPIFFE ID, a bundle that does not parse
  // or is of the wrong trust domain) are skipped and everything else is
  // applied; the result is then InvalidArgument listing what was skipped.
  absl::Status ApplyUpdate(const sigil::agent::v1::WatchAuthorizedUpdate& update);

  // The trust domain's bundle known before the first sync (stored in
  // data_dir or configured). Replaced by the server's with every update.
  void SetBootstrapBundle(const spiffe::Bundle& bundle);
  // The current bundle of the agent's trust domain; nullptr if none.
  std::shared_ptr<const spiffe::Bundle> bundle() const;
  // True once a full update has been applied.
  bool synced() const;
  // Revision of the last applied update; 0 before.
  int64_t revision() const;

  struct ChangeEvent {
    bool entries_changed = false;
    bool bundle_changed = false;
  };
  // Called after every change (outside the lock, on the thread that made
  // it). Set it before the cache is shared.
  void SetChangeListener(std::function<void(const ChangeEvent&)> listener);

  // Where JWT-SVIDs are minted; not owned; may be changed or cleared
  // (nullptr) at any time, e.g. around re-attestation.
  void SetServerApi(ServerApi* api);

  // ---- Rotation side.

  // Entries whose SVID is missing or due at `now` and that are not backing
  // off after a failure, most urgent first (missing, then soonest to
  // expire), at most `max`.
  std::vector<DueSvid> DueSvids(absl::Time now, size_t max) const;
  // The next moment something is due or an SVID expires; InfiniteFuture
  // when nothing is scheduled.
  absl::Time NextEvent() const;
  // Stores an SVID the caller minted and verified for `entry_id` (leaf
  // first; `key` matches the leaf). False, and nothing is stored, when the
  // entry was removed or changed since DueSvids returned `version`.
  bool StoreSvid(const std::string& entry_id, uint64_t version, std::vector<crypto::Certificate> chain,
                 crypto::PrivateKey key, absl::Time renew_at);
  // Records a failed attempt; the entry is not due again before `retry_at`.
  void MarkFailed(const std::string& entry_id, uint64_t version, absl::Time retry_at);
  // Drops SVIDs that expired by `now` and JWT-SVIDs past their expiry.
  void Maintain(absl::Time now);

  // ---- Inspection.
  size_t entry_count() const;
  size_t svid_count() const;
  std::optional<CachedSvidInfo> GetSvid(const std::string& entry_id) const;
  size_t subscriber_groups() const;

  // ---- IdentitySource.
  WorkloadView View(const attestors::Selectors& selectors) const override;
  std::unique_ptr<Subscription> Subscribe(const attestors::Selectors& selectors,
                                          std::function<void()> on_change) override;
  // Errors: InvalidArgument for an empty audience (or an empty value in it);
  // PermissionDenied when no entry matches (or none for `spiffe_id`);
  // Unavailable when a token must be minted and the server cannot mint it
  // (unreachable, or the agent not attested at the moment).
  absl::StatusOr<std::vector<JwtIdentity>> FetchJwtSvids(const attestors::Selectors& selectors,
                                                         const std::string& spiffe_id,
                                                         const std::vector<std::string>& audience) override;
  spiffe::BundleSet AllBundles() const override;

  struct SubscriptionState;

 private:
  struct SvidState {
    SvidState(std::vector<crypto::Certificate> c, crypto::PrivateKey k) : chain(std::move(c)), key(std::move(k)) {}
    std::vector<crypto::Certificate> chain;
    crypto::PrivateKey key;
    absl::Time not_before;
    absl::Time not_after;
    absl::Time renew_at;
    // Subject key ID of the CA that signed the leaf, and that CA's
    // not_before when known (InfinitePast otherwise).
    std::string issuer_id;
    absl::Time issuer_not_before;
    // Key IDs of every authority the chain depends on (the leaf's and
    // intermediates' issuers, the intermediates themselves), and the key ID
    // of the trust anchor (the issuer of the last certificate).
    std::set<std::string> authority_ids;
    std::string anchor_id;
  };
  struct EntryState {
    explicit EntryState(spiffe::SpiffeId id) : spiffe_id(std::move(id)) {}
    spire::api::types::Entry entry;
    std::string serialized;
    spiffe::SpiffeId spiffe_id;
    attestors::Selectors selectors;
    std::vector<std::string> federates_with;
    bool node_alias = false;
    uint64_t version = 0;
    std::optional<SvidState> svid;
    int failures = 0;
    absl::Time retry_at = absl::InfinitePast();
  };
  struct ParsedEntry;
  struct JwtCached {
    MintedJwtSvid svid;
  };

  friend class SubscriptionHandle;
  void Unsubscribe(const std::shared_ptr<SubscriptionState>& state);
  // Calls subscribers affected by `changed` (every one when `all`), then the
  // change listener. Must be called without mu_ held.
  void Notify(const std::set<attestors::Selectors>& changed, bool all, const ChangeEvent& event);
  void IndexEntry(const std::string& id, const attestors::Selectors& selectors) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexEntry(const std::string& id, const attestors::Selectors& selectors) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<const EntryState*> MatchLocked(const attestors::Selectors& sorted) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Makes SVIDs chaining to tainted or removed authorities due at `now`.
  int RescheduleForBundleLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the renewal of every SVID for which `needs` holds to a random
  // moment within ca_rotation_window (bounded by half its remaining life).
  // Returns how many were moved earlier.
  int SpreadRenewalsLocked(absl::Time now, const std::function<bool(const SvidState&)>& needs)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  SvidState MakeSvidState(std::vector<crypto::Certificate> chain, crypto::PrivateKey key, absl::Time renew_at) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void DropJwtsOf(const std::set<std::string>& entry_ids);

  const spiffe::TrustDomain td_;
  const SvidCacheOptions options_;
  const std::string server_id_;

  mutable absl::Mutex mu_;
  std::map<std::string, EntryState> entries_ ABSL_GUARDED_BY(mu_);
  // Entry IDs by their smallest selector: a workload's candidates are found
  // through its own selectors.
  std::map<attestors::Selector, std::set<std::string>> by_first_selector_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const spiffe::Bundle> bundle_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> tainted_ids_ ABSL_GUARDED_BY(mu_);
  // Hex SKI of the server's active X.509 authority, as last announced.
  std::string active_authority_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const spiffe::Bundle>> federated_ ABSL_GUARDED_BY(mu_);
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_version_ ABSL_GUARDED_BY(mu_) = 1;
  std::set<std::string> seen_issuers_ ABSL_GUARDED_BY(mu_);
  mutable std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);

  absl::Mutex listener_mu_;
  std::function<void(const ChangeEvent&)> listener_ ABSL_GUARDED_BY(listener_mu_);

  mutable absl::Mutex sub_mu_;
  std::map<attestors::Selectors, std::vector<std::shared_ptr<SubscriptionState>>> groups_ ABSL_GUARDED_BY(sub_mu_);

  absl::Mutex api_mu_;
  ServerApi* api_ ABSL_GUARDED_BY(api_mu_) = nullptr;

  absl::Mutex jwt_mu_;
  std::map<std::pair<std::string, std::string>, JwtCached> jwt_cache_ ABSL_GUARDED_BY(jwt_mu_);
};

}  // namespace sigil::agent
