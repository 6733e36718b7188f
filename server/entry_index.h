#pragma once

// An in-memory index of registration entries and agents' node selectors, kept
// current from the datastore's change feed. It answers "which entries is this
// agent authorized for" without touching the datastore, and tells subscribers
// (agents' sync streams) the moment anything changes — Sigil pushes instead of
// re-reading the database on an interval.
//
// An agent is authorized for:
//  - entries parented to its own ID;
//  - node alias entries (parented to spiffe://<td>/spire/server) whose
//    selectors are a subset of the agent's node selectors;
//  - entries parented to the ID of any entry already authorized, recursively
//    (descendants), cycles ignored.
//
// It also keeps the stored trust bundles (own and federated), so the agent
// sync streams can push bundle changes with entry changes.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/datastore/kv_store.h"
#include "spiffe/id.h"
#include "spire/api/types/bundle.pb.h"
#include "spire/api/types/entry.pb.h"

namespace sigil::server {

// Immutable snapshots: a changed record is a new object, so callers detect
// changes by pointer identity.
using EntryPtr = std::shared_ptr<const spire::api::types::Entry>;
using BundlePtr = std::shared_ptr<const spire::api::types::Bundle>;

class EntryIndex {
 public:
  // Lists every entry and agent and follows the change feed from there.
  // Errors of the initial listing are returned. If the feed is lost
  // (compaction outran it), the index re-lists by itself.
  static absl::StatusOr<std::unique_ptr<EntryIndex>> Create(datastore::KvStore* kv,
                                                            const spiffe::TrustDomain& td);
  ~EntryIndex();

  // The entries `agent_id` is authorized for, sorted by entry id.
  // Thread-safe.
  std::vector<EntryPtr> AuthorizedEntries(const spiffe::SpiffeId& agent_id) const;

  // Entries whose spiffe_id is `id`. Thread-safe.
  std::vector<EntryPtr> EntriesBySpiffeId(const std::string& id) const;
  // One entry; nullptr when unknown. Thread-safe.
  EntryPtr GetEntry(const std::string& entry_id) const;
  // The stored bundle of a trust domain (by name); nullptr when none.
  BundlePtr GetBundle(const std::string& trust_domain) const;

  // The datastore revision the index reflects.
  int64_t revision() const;
  // Waits until the index reflects `revision` or later; false on timeout.
  bool WaitForRevision(int64_t revision, absl::Duration timeout) const;

  // Calls `callback(revision)` after every applied change to entries,
  // agents, bundles or the CA journal (rotations), from the datastore's
  // dispatcher thread; keep it quick.
  // Unsubscribes when the handle is destroyed.
  class Subscription {
   public:
    virtual ~Subscription() = default;
  };
  std::unique_ptr<Subscription> Subscribe(std::function<void(int64_t)> callback);

  size_t entry_count() const;

 private:
  class SubscriptionImpl;
  EntryIndex(datastore::KvStore* kv, spiffe::TrustDomain td);
  absl::Status Load();
  absl::Status StartWatch(int64_t from_revision);
  void OnWatch(absl::StatusOr<datastore::WatchResponse> response);
  void ApplyPutEntry(const std::string& value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds a new entry (none with its id may be present) to every map.
  void AddEntry(EntryPtr entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveEntry(const std::string& entry_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Notify(int64_t revision);

  datastore::KvStore* const kv_;
  const spiffe::TrustDomain td_;
  const std::string server_id_;

  mutable absl::Mutex mu_;
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, EntryPtr> entries_ ABSL_GUARDED_BY(mu_);
  // parent_id → entry ids.
  absl::flat_hash_map<std::string, std::set<std::string>> children_ ABSL_GUARDED_BY(mu_);
  // spiffe_id → entry ids.
  absl::flat_hash_map<std::string, std::set<std::string>> by_spiffe_id_ ABSL_GUARDED_BY(mu_);
  // Node alias entry id → its sorted "type:value" selectors.
  absl::flat_hash_map<std::string, std::vector<std::string>> alias_selectors_ ABSL_GUARDED_BY(mu_);
  // agent id → sorted "type:value" node selectors.
  absl::flat_hash_map<std::string, std::vector<std::string>> agent_selectors_ ABSL_GUARDED_BY(mu_);
  // trust domain name → bundle.
  absl::flat_hash_map<std::string, BundlePtr> bundles_ ABSL_GUARDED_BY(mu_);

  absl::Mutex subs_mu_;
  std::map<uint64_t, std::function<void(int64_t)>> subscribers_ ABSL_GUARDED_BY(subs_mu_);
  uint64_t next_sub_id_ ABSL_GUARDED_BY(subs_mu_) = 0;

  absl::Mutex watch_mu_;
  std::unique_ptr<datastore::WatchHandle> watch_ ABSL_GUARDED_BY(watch_mu_);
};

}  // namespace sigil::server
