#pragma once

// The server's typed records (registration entries, agents, bundles, join
// tokens, the CA journal) over the key-value datastore.
//
// Every write is one KvStore transaction whose compares make it safe against
// other writers of the same datastore (several servers sharing etcd, or
// several threads): a read-modify-write compares the mod_revision it read and
// is retried from a fresh read when another writer got there first, so
// invariants (one entry per uniqueness key, indexes matching entries, entries
// federating only with stored bundles) hold without any lock in this process.
//
// Key layout (stable: the entry index and other watchers depend on it):
//   entry/<id>                                   spire.api.types.Entry
//   entry_by_spiffe/<spiffe_id>\0<id>            ""   (secondary index)
//   entry_by_parent/<parent_id>\0<id>            ""   (secondary index)
//   entry_by_federates/<trust domain>\0<id>      ""   (secondary index)
//   entry_unique/<hex sha256 of uniqueness key>  <id>
//   federation_ref/<trust domain>                ""   (bumped by every entry
//                                                      write that federates
//                                                      with the domain)
//   agent/<agent SPIFFE ID>                      sigil.server.AgentRecord
//   bundle/<trust domain name>                   spire.api.types.Bundle
//   token/<join token>                           sigil.server.JoinTokenRecord
//   ca/journal                                   sigil.ca.Journal (bytes)
// The uniqueness key of an entry is
//   spiffe_id \0 parent_id \0 "type:value" of each distinct selector, sorted,
//   joined by \0
// so two entries with the same SPIFFE ID, parent and selector set (SPIRE's
// notion of "similar entries") cannot both exist.
//
// Pagination: page tokens are the last item's key (entry ID, agent ID, trust
// domain name) and the next page starts strictly after it. A page_size of 0
// or less returns everything, as SPIRE does for clients that do not page; a
// full page carries a next_page_token even when it happens to be the last
// one (the following page is then empty and has no token).
//
// Errors: NOT_FOUND / ALREADY_EXISTS / INVALID_ARGUMENT / FAILED_PRECONDITION
// as documented per method; ABORTED when a write lost every retry against
// concurrent writers; the datastore's own errors (UNAVAILABLE, INTERNAL,
// DATA_LOSS, FAILED_PRECONDITION when closed) are passed through, prefixed
// with what the store was doing.
//
// Thread-safety: every method may be called concurrently.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ca/manager.h"
#include "common/clock.h"
#include "server/datastore/kv_store.h"
#include "sigil/server/storage.pb.h"
#include "spiffe/id.h"
#include "spire/api/types/agent.pb.h"
#include "spire/api/types/bundle.pb.h"
#include "spire/api/types/entry.pb.h"
#include "spire/api/types/federateswith.pb.h"
#include "spire/api/types/selector.pb.h"

namespace sigil::server {

// Keys of the layout above, for code that watches or scans the datastore.
namespace store_keys {
inline constexpr absl::string_view kEntryPrefix = "entry/";
inline constexpr absl::string_view kEntryBySpiffePrefix = "entry_by_spiffe/";
inline constexpr absl::string_view kEntryByParentPrefix = "entry_by_parent/";
inline constexpr absl::string_view kEntryByFederatesPrefix = "entry_by_federates/";
inline constexpr absl::string_view kEntryUniquePrefix = "entry_unique/";
inline constexpr absl::string_view kFederationRefPrefix = "federation_ref/";
inline constexpr absl::string_view kAgentPrefix = "agent/";
inline constexpr absl::string_view kBundlePrefix = "bundle/";
inline constexpr absl::string_view kTokenPrefix = "token/";
inline constexpr absl::string_view kCaJournalKey = "ca/journal";

std::string EntryKey(absl::string_view id);
std::string EntryBySpiffeKey(absl::string_view spiffe_id, absl::string_view id);
std::string EntryByParentKey(absl::string_view parent_id, absl::string_view id);
std::string EntryByFederatesKey(absl::string_view trust_domain, absl::string_view id);
// entry_unique/<hex sha256> for the entry's SPIFFE ID, parent and selectors.
std::string EntryUniqueKey(const spire::api::types::Entry& entry);
std::string FederationRefKey(absl::string_view trust_domain);
std::string AgentKey(absl::string_view agent_id);
std::string BundleKey(absl::string_view trust_domain);
std::string TokenKey(absl::string_view token);
}  // namespace store_keys

// A random RFC 4122 version 4 UUID in its lowercase text form: the IDs the
// store gives entries, and the join tokens the server generates.
std::string RandomUuid();

// SPIRE's selector-set matching (types.SelectorMatch.MatchBehavior) of a
// candidate's selectors against `match.selectors`. Duplicates are ignored.
bool MatchSelectors(const google::protobuf::RepeatedPtrField<spire::api::types::Selector>& have,
                    const spire::api::types::SelectorMatch& match);
// The same over trust domain names (types.FederatesWithMatch).
bool MatchFederatesWith(const google::protobuf::RepeatedPtrField<std::string>& have,
                        const spire::api::types::FederatesWithMatch& match);

// Criteria of ListEntries / CountEntries; every set one must hold. IDs are
// full SPIFFE ID strings; trust domains are names.
struct EntryFilter {
  std::optional<std::string> by_spiffe_id;
  std::optional<std::string> by_parent_id;
  std::optional<spire::api::types::SelectorMatch> by_selectors;
  std::optional<spire::api::types::FederatesWithMatch> by_federates_with;
  std::optional<std::string> by_hint;
  std::optional<bool> by_downstream;

  bool Matches(const spire::api::types::Entry& entry) const;
};

struct EntryPage {
  std::vector<spire::api::types::Entry> entries;
  // Empty when there is no further page.
  std::string next_page_token;
};

struct CreateEntryResult {
  // The new entry, or the existing similar one when `created` is false.
  spire::api::types::Entry entry;
  bool created = false;
};

struct AgentFilter {
  // Empty: any.
  std::string by_attestation_type;
  std::optional<spire::api::types::SelectorMatch> by_selector_match;
  std::optional<bool> by_banned;
  std::optional<bool> by_can_reattest;
  // Agents whose x509svid_expires_at is before this instant.
  std::optional<absl::Time> by_expires_before;

  bool Matches(const spire::api::types::Agent& agent) const;
};

struct AgentPage {
  std::vector<AgentRecord> agents;
  std::string next_page_token;
};

// An agent record and the mod_revision it was read at (for PutAgent's
// compare).
struct StoredAgent {
  AgentRecord record;
  int64_t mod_revision = 0;
};

struct BundlePage {
  std::vector<spire::api::types::Bundle> bundles;
  std::string next_page_token;
};

// What happens to entries that federate with a bundle being deleted
// (bundle.v1.BatchDeleteFederatedBundleRequest.Mode).
enum class BundleDeleteMode { kRestrict, kDelete, kDissociate };

// Changes `bundle` in place; returns whether it changed anything. `exists` is
// false when the bundle is being created (it then holds only trust_domain).
using BundleMutator =
    std::function<absl::StatusOr<bool>(spire::api::types::Bundle* bundle, bool exists)>;
// Changes an agent record in place (see ModifyAgent).
using AgentMutator = std::function<absl::Status(AgentRecord* record)>;

class Store : public ca::JournalStore {
 public:
  // The pointers must outlive the store.
  Store(datastore::KvStore* kv, const Clock* clock);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // ---- Registration entries ----

  // Creates `entry`. An empty id gets a random UUIDv4; a given one must be
  // 1..255 characters of [A-Za-z0-9._-] (SPIRE's rule). created_at is set to
  // the clock's time (seconds) and revision_number to 0; federates_with is
  // reduced to distinct names. When a similar entry (same uniqueness key)
  // exists, nothing is written and the result holds that entry with
  // created = false.
  // INVALID_ARGUMENT: malformed id, missing or unparsable spiffe_id /
  //   parent_id, no selectors, a federates_with that is not a trust domain.
  // ALREADY_EXISTS: an entry with the given id exists.
  // FAILED_PRECONDITION: federates_with names a trust domain without a
  //   stored bundle.
  // Validation of everything else (trust domain membership, TTLs, DNS
  // names, ...) is the caller's (entry_validation.h).
  absl::StatusOr<CreateEntryResult> CreateEntry(const spire::api::types::Entry& entry);

  // NOT_FOUND when no entry has `id`.
  absl::StatusOr<spire::api::types::Entry> GetEntry(absl::string_view id);

  // Overwrites the fields of entry `entry.id` selected by `mask` (nullptr:
  // every field) with those of `entry`; id, revision_number and created_at
  // are server-owned and never taken from `entry`. revision_number is
  // incremented. Indexes and the uniqueness key follow the change.
  // INVALID_ARGUMENT as CreateEntry for the fields written, or an empty id.
  // NOT_FOUND: no such entry. ALREADY_EXISTS: the change would make the
  // entry similar to another one (message names it). FAILED_PRECONDITION:
  // federates_with gains a trust domain without a stored bundle.
  absl::StatusOr<spire::api::types::Entry> UpdateEntry(const spire::api::types::Entry& entry,
                                                       const spire::api::types::EntryMask* mask);

  // Deletes an entry with its index keys; returns what was deleted.
  // NOT_FOUND when no entry has `id`.
  absl::StatusOr<spire::api::types::Entry> DeleteEntry(absl::string_view id);

  // Entries matching `filter`, ordered by ID, one page at a time (see
  // Pagination above). Filters by SPIFFE ID or parent read only the
  // matching index range.
  absl::StatusOr<EntryPage> ListEntries(const EntryFilter& filter, int32_t page_size,
                                        absl::string_view page_token);
  absl::StatusOr<int64_t> CountEntries(const EntryFilter& filter);

  // Every entry with that SPIFFE ID / parent ID, through the indexes.
  absl::StatusOr<std::vector<spire::api::types::Entry>> ListEntriesBySpiffeId(
      absl::string_view spiffe_id);
  absl::StatusOr<std::vector<spire::api::types::Entry>> ListEntriesByParentId(
      absl::string_view parent_id);

  // ---- Agents ----

  // NOT_FOUND when no agent has that ID.
  absl::StatusOr<StoredAgent> GetAgent(absl::string_view agent_id);

  // Writes `record` under record.agent().id(). `expected_mod_revision`:
  // nullopt writes unconditionally; 0 requires that no record exists
  // (ALREADY_EXISTS otherwise); > 0 requires the record to be unchanged since
  // it was read at that revision (ABORTED otherwise). Returns the new
  // mod_revision. INVALID_ARGUMENT: the agent ID is missing or not a SPIFFE
  // ID.
  absl::StatusOr<int64_t> PutAgent(const AgentRecord& record,
                                   std::optional<int64_t> expected_mod_revision);

  // Reads, applies `mutate` and writes back with a compare, retrying on
  // concurrent changes (so `mutate` may run several times). The agent ID
  // cannot be changed. An error from `mutate` is returned as is and nothing
  // is written. NOT_FOUND when no agent has that ID.
  absl::StatusOr<StoredAgent> ModifyAgent(absl::string_view agent_id, const AgentMutator& mutate);

  // Evicts: removes the record (the agent may attest again). Returns it.
  // NOT_FOUND when no agent has that ID.
  absl::StatusOr<AgentRecord> DeleteAgent(absl::string_view agent_id);

  // Sets banned and clears both SVID serial numbers, so the agent's SVIDs
  // are no longer accepted and it cannot attest again until deleted.
  // NOT_FOUND when no agent has that ID.
  absl::Status BanAgent(absl::string_view agent_id);

  absl::StatusOr<AgentPage> ListAgents(const AgentFilter& filter, int32_t page_size,
                                       absl::string_view page_token);
  absl::StatusOr<int64_t> CountAgents(const AgentFilter& filter);

  // ---- Join tokens ----

  // INVALID_ARGUMENT: empty token. ALREADY_EXISTS: the token exists.
  absl::Status CreateJoinToken(const JoinTokenRecord& token);
  // Creates the token and `alias` (as CreateEntry) in one transaction, so
  // neither exists without the other. Returns the created entry.
  // ALREADY_EXISTS when the token exists or a similar entry does; otherwise
  // CreateEntry's errors.
  absl::StatusOr<spire::api::types::Entry> CreateJoinTokenWithEntry(
      const JoinTokenRecord& token, const spire::api::types::Entry& alias);
  // Deletes the token atomically, so it is used at most once, and returns
  // it. NOT_FOUND: unknown (or just consumed by someone else).
  // PERMISSION_DENIED "join token expired": it had expired (it is deleted).
  absl::StatusOr<JoinTokenRecord> ConsumeJoinToken(absl::string_view token);
  // Deletes every expired token; returns how many.
  absl::StatusOr<int64_t> PruneJoinTokens();

  // ---- Bundles ----

  // `trust_domain` is a trust domain name ("example.org").
  // NOT_FOUND when no bundle is stored for it; INVALID_ARGUMENT when it is
  // not a trust domain name.
  absl::StatusOr<spire::api::types::Bundle> GetBundle(absl::string_view trust_domain);
  // Stores a new bundle as given. ALREADY_EXISTS when one exists.
  absl::StatusOr<spire::api::types::Bundle> CreateBundle(const spire::api::types::Bundle& bundle);
  // Creates or replaces, as given.
  absl::StatusOr<spire::api::types::Bundle> SetBundle(const spire::api::types::Bundle& bundle);
  // Overwrites the fields selected by `mask` (nullptr: all). NOT_FOUND when
  // no bundle exists.
  absl::StatusOr<spire::api::types::Bundle> UpdateBundle(const spire::api::types::Bundle& bundle,
                                                         const spire::api::types::BundleMask* mask);
  // Adds the X.509 authorities (by DER) and JWT authorities (by key ID) of
  // `bundle` that are missing, prunes expired authorities, and bumps
  // sequence_number when anything changed. A JWT authority whose key ID is
  // present with a different key is INVALID_ARGUMENT. A missing bundle is
  // created when `create_if_missing`, else NOT_FOUND.
  absl::StatusOr<spire::api::types::Bundle> AppendBundle(const spire::api::types::Bundle& bundle,
                                                         bool create_if_missing);
  // Read-modify-write of one bundle with retries: `mutate` may run several
  // times. Expired authorities are then pruned; when `mutate` reported a
  // change or anything was pruned, sequence_number is incremented and the
  // bundle is written. Returns the bundle as stored. NOT_FOUND when absent
  // and not `create_if_missing`; errors of `mutate` are returned as they are
  // and nothing is written.
  absl::StatusOr<spire::api::types::Bundle> ModifyBundle(absl::string_view trust_domain,
                                                         bool create_if_missing,
                                                         const BundleMutator& mutate);
  // Deletes a bundle. Entries federating with it: kRestrict refuses with
  // FAILED_PRECONDITION naming how many there are; kDelete deletes them;
  // kDissociate removes the trust domain from their federates_with.
  // NOT_FOUND when no bundle is stored. With kDelete / kDissociate the
  // entries are changed in batches before the bundle goes, so a failure in
  // between leaves some entries changed and the bundle in place.
  absl::Status DeleteBundle(absl::string_view trust_domain, BundleDeleteMode mode);
  // Bundles ordered by trust domain name.
  absl::StatusOr<BundlePage> ListBundles(int32_t page_size, absl::string_view page_token);
  absl::StatusOr<int64_t> CountBundles();

  // ---- ca::JournalStore ----
  absl::StatusOr<std::optional<std::string>> LoadJournal() override;
  absl::Status SaveJournal(const std::string& journal) override;

  const Clock* clock() const { return clock_; }

 private:
  struct EntryTxn;
  absl::StatusOr<EntryTxn> PrepareCreate(spire::api::types::Entry entry);
  absl::StatusOr<CreateEntryResult> CommitCreate(const spire::api::types::Entry& entry,
                                                 const JoinTokenRecord* token);
  absl::StatusOr<spire::api::types::Entry> GetEntryAt(absl::string_view id, int64_t* mod_revision);
  absl::StatusOr<std::vector<spire::api::types::Entry>> EntriesFromIndex(absl::string_view prefix);
  // Removes `trust_domain` from entry `id` (or deletes it) in `txn`.
  absl::Status DetachEntryFromBundle(absl::string_view id, absl::string_view trust_domain,
                                     BundleDeleteMode mode, datastore::Txn* txn);

  datastore::KvStore* const kv_;
  const Clock* const clock_;
};

// Keeps the server's own trust bundle in the store for the CA manager
// (ca::BundlePublisher): every write prunes expired authorities, applies the
// configured refresh hint and bumps sequence_number when anything changed.
// Thread-safe.
class LocalBundlePublisher final : public ca::BundlePublisher {
 public:
  // `store` must outlive the publisher.
  LocalBundlePublisher(Store* store, spiffe::TrustDomain trust_domain);

  // Refresh hint written into the bundle from the next write on; zero or
  // negative leaves the stored hint alone. Default: zero.
  void set_refresh_hint(absl::Duration hint);

  // ca::BundlePublisher
  absl::Status PublishLocalAuthorities(const std::vector<ca::PublishedX509Authority>& x509,
                                       const std::vector<ca::PublishedJwtAuthority>& jwt) override;
  absl::Status RemoveX509Authority(const crypto::Certificate& cert) override;
  absl::Status RemoveJwtAuthority(const std::string& key_id) override;

 private:
  absl::Status Modify(const BundleMutator& mutate);

  Store* const store_;
  const spiffe::TrustDomain trust_domain_;
  mutable absl::Mutex mu_;
  absl::Duration refresh_hint_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
};

// Drops authorities that have expired at `now`: X.509 certificates whose
// NotAfter is not after `now` (certificates that do not parse are kept),
// JWT keys with a non-zero expires_at not after `now`. Returns whether any
// was dropped.
bool PruneExpiredAuthorities(spire::api::types::Bundle* bundle, absl::Time now);

}  // namespace sigil::server
