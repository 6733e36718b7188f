#include "server/store/store.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "apitypes/convert.h"
#include "common/status_macros.h"
#include "server/store/entry_validation.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/x509_builder.h"

namespace sigil::server {
namespace {

namespace types = ::spire::api::types;
using datastore::Compare;
using datastore::KeyValue;
using datastore::Op;
using datastore::RangeResult;
using datastore::Txn;

// Read-modify-write attempts before giving up with ABORTED. Each failed
// attempt means another writer committed in between, so running out takes
// sustained contention on one record.
constexpr int kMaxAttempts = 32;
// Keys fetched per Range call when scanning.
constexpr int64_t kScanChunk = 512;
// Ops per transaction when changing many entries; leaves room below
// datastore::kMaxTxnOps for one more entry's worth of ops.
constexpr size_t kBatchOps = 96;

absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

absl::Status Exhausted(absl::string_view what) {
  return absl::AbortedError(absl::StrCat(what, ": gave up after ", kMaxAttempts,
                                         " attempts against concurrent writers; retry"));
}

template <typename Message>
absl::StatusOr<Message> ParseValue(const KeyValue& kv) {
  Message m;
  if (!m.ParseFromString(kv.value)) {
    return absl::DataLossError(
        absl::StrCat("stored value of ", datastore::internal::QuoteKey(kv.key), " does not parse"));
  }
  return m;
}

// The Get of a key that may be absent: mod_revision 0 and no value when it
// is.
absl::StatusOr<std::optional<KeyValue>> GetOptional(datastore::KvStore* kv, absl::string_view key) {
  absl::StatusOr<KeyValue> got = kv->Get(key);
  if (got.ok()) return std::optional<KeyValue>(*std::move(got));
  if (got.status().code() == absl::StatusCode::kNotFound) return std::optional<KeyValue>();
  return got.status();
}

// Calls `fn` for every key with `prefix` after `start_after`, in order,
// until it returns false. Returns whether it was stopped with keys left.
absl::StatusOr<bool> Scan(datastore::KvStore* kv, absl::string_view prefix,
                          absl::string_view start_after,
                          const std::function<absl::StatusOr<bool>(const KeyValue&)>& fn) {
  std::string after(start_after);
  while (true) {
    SIGIL_ASSIGN_OR_RETURN(RangeResult page, kv->Range(prefix, after, kScanChunk));
    for (size_t i = 0; i < page.kvs.size(); ++i) {
      SIGIL_ASSIGN_OR_RETURN(bool go_on, fn(page.kvs[i]));
      if (!go_on) return i + 1 < page.kvs.size() || page.more;
    }
    if (!page.more || page.kvs.empty()) return false;
    after = page.kvs.back().key;
  }
}

std::string SelectorKey(const types::Selector& s) { return absl::StrCat(s.type(), ":", s.value()); }

absl::StatusOr<spiffe::SpiffeId> ParseProtoId(absl::string_view field,
                                              const types::SPIFFEID& id, bool present) {
  if (!present) return absl::InvalidArgumentError(absl::StrCat(field, " is missing"));
  absl::StatusOr<spiffe::SpiffeId> parsed = apitypes::SpiffeIdFromProto(id);
  if (!parsed.ok()) return Annotate(parsed.status(), field);
  return parsed;
}

absl::StatusOr<std::string> CanonicalIdString(absl::string_view field, absl::string_view id) {
  absl::StatusOr<spiffe::SpiffeId> parsed = spiffe::SpiffeId::FromString(id);
  if (!parsed.ok()) return Annotate(parsed.status(), field);
  return parsed->ToString();
}

absl::StatusOr<std::string> TrustDomainName(absl::string_view field, absl::string_view td) {
  absl::StatusOr<spiffe::TrustDomain> parsed = apitypes::ParseTrustDomain(td);
  if (!parsed.ok()) return Annotate(parsed.status(), field);
  return parsed->name();
}

// Puts the structural invariants the key layout relies on into `entry`
// (fields selected by `mask`, nullptr: all): parsable canonical IDs, well
// formed selectors, distinct federated trust domain names.
absl::Status NormalizeEntry(types::Entry* entry, const types::EntryMask* mask) {
  auto selected = [mask](bool (types::EntryMask::*field)() const) {
    return mask == nullptr || (mask->*field)();
  };
  if (selected(&types::EntryMask::spiffe_id)) {
    SIGIL_ASSIGN_OR_RETURN(
        spiffe::SpiffeId parsed,
        ParseProtoId("spiffe_id", entry->spiffe_id(), entry->has_spiffe_id()));
    *entry->mutable_spiffe_id() = apitypes::SpiffeIdToProto(parsed);
  }
  if (selected(&types::EntryMask::parent_id)) {
    SIGIL_ASSIGN_OR_RETURN(
        spiffe::SpiffeId parsed,
        ParseProtoId("parent_id", entry->parent_id(), entry->has_parent_id()));
    *entry->mutable_parent_id() = apitypes::SpiffeIdToProto(parsed);
  }
  if (selected(&types::EntryMask::selectors)) {
    if (entry->selectors().empty()) return absl::InvalidArgumentError("selectors: none given");
    for (int i = 0; i < entry->selectors_size(); ++i) {
      SIGIL_RETURN_IF_ERROR(
          Annotate(ValidateSelector(entry->selectors(i)), absl::StrCat("selectors[", i, "]")));
    }
  }
  if (selected(&types::EntryMask::federates_with)) {
    std::vector<std::string> names;
    std::set<std::string> seen;
    for (int i = 0; i < entry->federates_with_size(); ++i) {
      SIGIL_ASSIGN_OR_RETURN(std::string name,
                             TrustDomainName(absl::StrCat("federates_with[", i, "]"),
                                             entry->federates_with(i)));
      if (seen.insert(name).second) names.push_back(std::move(name));
    }
    entry->clear_federates_with();
    for (std::string& n : names) entry->add_federates_with(std::move(n));
  }
  return absl::OkStatus();
}

// Every index key of `entry` (the uniqueness key excluded).
std::vector<std::string> IndexKeys(const types::Entry& entry) {
  std::vector<std::string> keys;
  keys.push_back(store_keys::EntryBySpiffeKey(apitypes::SpiffeIdString(entry.spiffe_id()), entry.id()));
  keys.push_back(store_keys::EntryByParentKey(apitypes::SpiffeIdString(entry.parent_id()), entry.id()));
  for (const std::string& td : entry.federates_with()) {
    keys.push_back(store_keys::EntryByFederatesKey(td, entry.id()));
  }
  return keys;
}

// Ops that delete `entry` and its index and uniqueness keys.
void AppendEntryDeletes(const types::Entry& entry, Txn* txn) {
  txn->ops.push_back(Op::Delete(store_keys::EntryKey(entry.id())));
  for (std::string& k : IndexKeys(entry)) txn->ops.push_back(Op::Delete(std::move(k)));
  txn->ops.push_back(Op::Delete(store_keys::EntryUniqueKey(entry)));
}

// Compares that each trust domain in `tds` has a stored bundle, at the
// revision read now. FAILED_PRECONDITION naming the first that has none.
absl::Status AppendBundleExistsCompares(datastore::KvStore* kv,
                                        const std::vector<std::string>& tds, Txn* txn) {
  for (const std::string& td : tds) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<KeyValue> bundle,
                           GetOptional(kv, store_keys::BundleKey(td)));
    if (!bundle.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "federates_with: no bundle is stored for trust domain \"", td, "\""));
    }
    txn->compares.push_back(Compare{bundle->key, bundle->mod_revision});
    txn->ops.push_back(Op::Put(store_keys::FederationRefKey(td), ""));
  }
  return absl::OkStatus();
}

std::set<std::string> SelectorSet(const google::protobuf::RepeatedPtrField<types::Selector>& s) {
  std::set<std::string> out;
  for (const types::Selector& sel : s) {
    out.insert(absl::StrCat(sel.type(), absl::string_view("\0", 1), sel.value()));
  }
  return out;
}

// FederatesWithMatch mirrors SelectorMatch value for value, so one matcher
// serves both.
static_assert(static_cast<int>(types::FederatesWithMatch::MATCH_EXACT) ==
                  static_cast<int>(types::SelectorMatch::MATCH_EXACT) &&
              static_cast<int>(types::FederatesWithMatch::MATCH_SUBSET) ==
                  static_cast<int>(types::SelectorMatch::MATCH_SUBSET) &&
              static_cast<int>(types::FederatesWithMatch::MATCH_SUPERSET) ==
                  static_cast<int>(types::SelectorMatch::MATCH_SUPERSET) &&
              static_cast<int>(types::FederatesWithMatch::MATCH_ANY) ==
                  static_cast<int>(types::SelectorMatch::MATCH_ANY));

bool MatchSets(const std::set<std::string>& have, const std::set<std::string>& want,
               int behavior) {
  switch (behavior) {
    case types::SelectorMatch::MATCH_EXACT:
      return have == want;
    case types::SelectorMatch::MATCH_SUBSET:
      return !have.empty() && std::includes(want.begin(), want.end(), have.begin(), have.end());
    case types::SelectorMatch::MATCH_SUPERSET:
      return std::includes(have.begin(), have.end(), want.begin(), want.end());
    case types::SelectorMatch::MATCH_ANY:
      for (const std::string& h : have) {
        if (want.count(h) != 0) return true;
      }
      return false;
    default:
      // An enum value this server does not know matches nothing.
      return false;
  }
}

// Applies the fields of `src` selected by `mask` to `dst` (types.EntryMask
// order); id, revision_number and created_at are left alone.
void MergeEntry(const types::Entry& src, const types::EntryMask* mask, types::Entry* dst) {
  auto selected = [mask](bool (types::EntryMask::*field)() const) {
    return mask == nullptr || (mask->*field)();
  };
  if (selected(&types::EntryMask::spiffe_id)) *dst->mutable_spiffe_id() = src.spiffe_id();
  if (selected(&types::EntryMask::parent_id)) *dst->mutable_parent_id() = src.parent_id();
  if (selected(&types::EntryMask::selectors)) *dst->mutable_selectors() = src.selectors();
  if (selected(&types::EntryMask::x509_svid_ttl)) dst->set_x509_svid_ttl(src.x509_svid_ttl());
  if (selected(&types::EntryMask::federates_with)) {
    *dst->mutable_federates_with() = src.federates_with();
  }
  if (selected(&types::EntryMask::admin)) dst->set_admin(src.admin());
  if (selected(&types::EntryMask::downstream)) dst->set_downstream(src.downstream());
  if (selected(&types::EntryMask::expires_at)) dst->set_expires_at(src.expires_at());
  if (selected(&types::EntryMask::dns_names)) *dst->mutable_dns_names() = src.dns_names();
  if (selected(&types::EntryMask::store_svid)) dst->set_store_svid(src.store_svid());
  if (selected(&types::EntryMask::jwt_svid_ttl)) dst->set_jwt_svid_ttl(src.jwt_svid_ttl());
  if (selected(&types::EntryMask::hint)) dst->set_hint(src.hint());
}

absl::StatusOr<spiffe::SpiffeId> AgentIdOf(const AgentRecord& record) {
  return ParseProtoId("agent id", record.agent().id(), record.agent().has_id());
}

bool SameJwtKey(const types::JWTKey& a, const types::JWTKey& b) {
  return a.key_id() == b.key_id() && a.public_key() == b.public_key();
}

// Merges the authorities of `add` into `b`; returns whether it changed.
absl::StatusOr<bool> MergeAuthorities(const types::Bundle& add, types::Bundle* b) {
  bool changed = false;
  for (const types::X509Certificate& cert : add.x509_authorities()) {
    bool present = std::any_of(b->x509_authorities().begin(), b->x509_authorities().end(),
                               [&](const types::X509Certificate& c) { return c.asn1() == cert.asn1(); });
    if (!present) {
      *b->add_x509_authorities() = cert;
      changed = true;
    }
  }
  for (const types::JWTKey& key : add.jwt_authorities()) {
    auto it = std::find_if(b->jwt_authorities().begin(), b->jwt_authorities().end(),
                           [&](const types::JWTKey& k) { return k.key_id() == key.key_id(); });
    if (it == b->jwt_authorities().end()) {
      *b->add_jwt_authorities() = key;
      changed = true;
    } else if (!SameJwtKey(*it, key)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "jwt_authorities: key ID \"", key.key_id(), "\" is already used by a different key"));
    }
  }
  return changed;
}

}  // namespace

// ---- Keys ----

namespace store_keys {

std::string EntryKey(absl::string_view id) { return absl::StrCat(kEntryPrefix, id); }
std::string EntryBySpiffeKey(absl::string_view spiffe_id, absl::string_view id) {
  return absl::StrCat(kEntryBySpiffePrefix, spiffe_id, absl::string_view("\0", 1), id);
}
std::string EntryByParentKey(absl::string_view parent_id, absl::string_view id) {
  return absl::StrCat(kEntryByParentPrefix, parent_id, absl::string_view("\0", 1), id);
}
std::string EntryByFederatesKey(absl::string_view trust_domain, absl::string_view id) {
  return absl::StrCat(kEntryByFederatesPrefix, trust_domain, absl::string_view("\0", 1), id);
}
std::string EntryUniqueKey(const types::Entry& entry) {
  std::set<std::string> selectors;
  for (const types::Selector& s : entry.selectors()) selectors.insert(SelectorKey(s));
  const absl::string_view nul("\0", 1);
  std::string material = absl::StrCat(apitypes::SpiffeIdString(entry.spiffe_id()), nul,
                                      apitypes::SpiffeIdString(entry.parent_id()), nul, absl::StrJoin(selectors, nul));
  return absl::StrCat(kEntryUniquePrefix, crypto::HexEncode(crypto::Sha256(material)));
}
std::string FederationRefKey(absl::string_view trust_domain) {
  return absl::StrCat(kFederationRefPrefix, trust_domain);
}
std::string AgentKey(absl::string_view agent_id) { return absl::StrCat(kAgentPrefix, agent_id); }
std::string BundleKey(absl::string_view trust_domain) {
  return absl::StrCat(kBundlePrefix, trust_domain);
}
std::string TokenKey(absl::string_view token) { return absl::StrCat(kTokenPrefix, token); }

}  // namespace store_keys

std::string RandomUuid() {
  std::string b = crypto::RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string hex = crypto::HexEncode(b);
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20));
}

bool MatchSelectors(const google::protobuf::RepeatedPtrField<types::Selector>& have,
                    const types::SelectorMatch& match) {
  return MatchSets(SelectorSet(have), SelectorSet(match.selectors()), match.match());
}

bool MatchFederatesWith(const google::protobuf::RepeatedPtrField<std::string>& have,
                        const types::FederatesWithMatch& match) {
  std::set<std::string> h(have.begin(), have.end());
  std::set<std::string> w(match.trust_domains().begin(), match.trust_domains().end());
  return MatchSets(h, w, match.match());
}

bool EntryFilter::Matches(const types::Entry& entry) const {
  if (by_spiffe_id.has_value() && apitypes::SpiffeIdString(entry.spiffe_id()) != *by_spiffe_id) return false;
  if (by_parent_id.has_value() && apitypes::SpiffeIdString(entry.parent_id()) != *by_parent_id) return false;
  if (by_selectors.has_value() && !MatchSelectors(entry.selectors(), *by_selectors)) return false;
  if (by_federates_with.has_value() &&
      !MatchFederatesWith(entry.federates_with(), *by_federates_with)) {
    return false;
  }
  if (by_hint.has_value() && entry.hint() != *by_hint) return false;
  if (by_downstream.has_value() && entry.downstream() != *by_downstream) return false;
  return true;
}

bool AgentFilter::Matches(const types::Agent& agent) const {
  if (!by_attestation_type.empty() && agent.attestation_type() != by_attestation_type) return false;
  if (by_selector_match.has_value() && !MatchSelectors(agent.selectors(), *by_selector_match)) {
    return false;
  }
  if (by_banned.has_value() && agent.banned() != *by_banned) return false;
  if (by_can_reattest.has_value() && agent.can_reattest() != *by_can_reattest) return false;
  if (by_expires_before.has_value() &&
      !(absl::FromUnixSeconds(agent.x509svid_expires_at()) < *by_expires_before)) {
    return false;
  }
  return true;
}

bool PruneExpiredAuthorities(types::Bundle* bundle, absl::Time now) {
  bool pruned = false;
  auto* x509 = bundle->mutable_x509_authorities();
  for (int i = x509->size() - 1; i >= 0; --i) {
    absl::StatusOr<crypto::Certificate> cert = crypto::Certificate::FromDer(x509->Get(i).asn1());
    if (cert.ok() && cert->not_after() <= now) {
      x509->DeleteSubrange(i, 1);
      pruned = true;
    }
  }
  auto* jwt = bundle->mutable_jwt_authorities();
  for (int i = jwt->size() - 1; i >= 0; --i) {
    int64_t exp = jwt->Get(i).expires_at();
    if (exp != 0 && absl::FromUnixSeconds(exp) <= now) {
      jwt->DeleteSubrange(i, 1);
      pruned = true;
    }
  }
  return pruned;
}

// ---- Store ----

Store::Store(datastore::KvStore* kv, const Clock* clock) : kv_(kv), clock_(clock) {}

struct Store::EntryTxn {
  types::Entry entry;
  bool generated_id = false;
};

absl::StatusOr<Store::EntryTxn> Store::PrepareCreate(types::Entry entry) {
  EntryTxn out;
  if (entry.id().empty()) {
    entry.set_id(RandomUuid());
    out.generated_id = true;
  } else {
    SIGIL_RETURN_IF_ERROR(Annotate(ValidateEntryId(entry.id()), "id"));
  }
  SIGIL_RETURN_IF_ERROR(NormalizeEntry(&entry, nullptr));
  entry.set_revision_number(0);
  entry.set_created_at(absl::ToUnixSeconds(clock_->Now()));
  out.entry = std::move(entry);
  return out;
}

absl::StatusOr<CreateEntryResult> Store::CommitCreate(const types::Entry& requested,
                                                      const JoinTokenRecord* token) {
  SIGIL_ASSIGN_OR_RETURN(EntryTxn prepared, PrepareCreate(requested));
  types::Entry& entry = prepared.entry;
  const std::string unique_key = store_keys::EntryUniqueKey(entry);
  std::vector<std::string> tds(entry.federates_with().begin(), entry.federates_with().end());
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    Txn txn;
    // The uniqueness compare goes first so that re-creating an existing
    // entry (even under its own ID) reports the similar entry.
    txn.compares.push_back(Compare{unique_key, 0});
    txn.compares.push_back(Compare{store_keys::EntryKey(entry.id()), 0});
    if (token != nullptr) txn.compares.push_back(Compare{store_keys::TokenKey(token->token()), 0});
    SIGIL_RETURN_IF_ERROR(AppendBundleExistsCompares(kv_, tds, &txn));
    txn.ops.push_back(Op::Put(store_keys::EntryKey(entry.id()), entry.SerializeAsString()));
    for (std::string& k : IndexKeys(entry)) txn.ops.push_back(Op::Put(std::move(k), ""));
    txn.ops.push_back(Op::Put(unique_key, entry.id()));
    if (token != nullptr) {
      txn.ops.push_back(Op::Put(store_keys::TokenKey(token->token()), token->SerializeAsString()));
    }
    absl::StatusOr<int64_t> committed = kv_->Commit(txn);
    if (committed.ok()) return CreateEntryResult{entry, true};
    std::optional<std::string> failed = datastore::FailedCompareKey(committed.status());
    if (!failed.has_value()) return Annotate(committed.status(), "creating entry");
    if (*failed == unique_key) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<KeyValue> owner, GetOptional(kv_, unique_key));
      if (!owner.has_value()) continue;
      absl::StatusOr<types::Entry> existing = GetEntry(owner->value);
      if (existing.status().code() == absl::StatusCode::kNotFound) continue;
      if (!existing.ok()) return existing.status();
      return CreateEntryResult{*std::move(existing), false};
    }
    if (*failed == store_keys::EntryKey(entry.id())) {
      if (prepared.generated_id) {
        entry.set_id(RandomUuid());
        continue;
      }
      return absl::AlreadyExistsError(absl::StrCat("an entry with id \"", entry.id(),
                                                    "\" already exists"));
    }
    if (token != nullptr && *failed == store_keys::TokenKey(token->token())) {
      return absl::AlreadyExistsError("join token already exists");
    }
    // A federated bundle changed under us: read it again.
  }
  return Exhausted("creating entry");
}

absl::StatusOr<CreateEntryResult> Store::CreateEntry(const types::Entry& entry) {
  return CommitCreate(entry, nullptr);
}

absl::StatusOr<types::Entry> Store::GetEntryAt(absl::string_view id, int64_t* mod_revision) {
  if (id.empty()) return absl::InvalidArgumentError("entry id is empty");
  absl::StatusOr<KeyValue> kv = kv_->Get(store_keys::EntryKey(id));
  if (kv.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("entry \"", id, "\" not found"));
  }
  if (!kv.ok()) return Annotate(kv.status(), "reading entry");
  if (mod_revision != nullptr) *mod_revision = kv->mod_revision;
  return ParseValue<types::Entry>(*kv);
}

absl::StatusOr<types::Entry> Store::GetEntry(absl::string_view id) {
  return GetEntryAt(id, nullptr);
}

absl::StatusOr<types::Entry> Store::UpdateEntry(const types::Entry& requested,
                                                const types::EntryMask* mask) {
  types::Entry changes = requested;
  SIGIL_RETURN_IF_ERROR(NormalizeEntry(&changes, mask));
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    int64_t revision = 0;
    SIGIL_ASSIGN_OR_RETURN(types::Entry old, GetEntryAt(requested.id(), &revision));
    types::Entry updated = old;
    MergeEntry(changes, mask, &updated);
    updated.set_revision_number(old.revision_number() + 1);

    Txn txn;
    txn.compares.push_back(Compare{store_keys::EntryKey(old.id()), revision});
    const std::string old_unique = store_keys::EntryUniqueKey(old);
    const std::string new_unique = store_keys::EntryUniqueKey(updated);
    if (old_unique != new_unique) {
      txn.compares.push_back(Compare{new_unique, 0});
      txn.ops.push_back(Op::Delete(old_unique));
      txn.ops.push_back(Op::Put(new_unique, updated.id()));
    }
    std::vector<std::string> old_keys = IndexKeys(old);
    std::vector<std::string> new_keys = IndexKeys(updated);
    std::set<std::string> old_set(old_keys.begin(), old_keys.end());
    std::set<std::string> new_set(new_keys.begin(), new_keys.end());
    for (const std::string& k : old_set) {
      if (new_set.count(k) == 0) txn.ops.push_back(Op::Delete(k));
    }
    for (const std::string& k : new_set) {
      if (old_set.count(k) == 0) txn.ops.push_back(Op::Put(k, ""));
    }
    std::set<std::string> old_tds(old.federates_with().begin(), old.federates_with().end());
    std::vector<std::string> added_tds;
    for (const std::string& td : updated.federates_with()) {
      if (old_tds.count(td) == 0) added_tds.push_back(td);
    }
    SIGIL_RETURN_IF_ERROR(AppendBundleExistsCompares(kv_, added_tds, &txn));
    txn.ops.push_back(Op::Put(store_keys::EntryKey(updated.id()), updated.SerializeAsString()));

    absl::StatusOr<int64_t> committed = kv_->Commit(txn);
    if (committed.ok()) return updated;
    std::optional<std::string> failed = datastore::FailedCompareKey(committed.status());
    if (!failed.has_value()) return Annotate(committed.status(), "updating entry");
    if (*failed == new_unique) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<KeyValue> owner, GetOptional(kv_, new_unique));
      if (owner.has_value()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "a similar entry (same spiffe_id, parent_id and selectors) already exists: \"",
            owner->value, "\""));
      }
    }
  }
  return Exhausted("updating entry");
}

absl::StatusOr<types::Entry> Store::DeleteEntry(absl::string_view id) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    int64_t revision = 0;
    SIGIL_ASSIGN_OR_RETURN(types::Entry old, GetEntryAt(id, &revision));
    Txn txn;
    txn.compares.push_back(Compare{store_keys::EntryKey(id), revision});
    AppendEntryDeletes(old, &txn);
    absl::StatusOr<int64_t> committed = kv_->Commit(txn);
    if (committed.ok()) return old;
    if (!datastore::FailedCompareKey(committed.status()).has_value()) {
      return Annotate(committed.status(), "deleting entry");
    }
  }
  return Exhausted("deleting entry");
}

namespace {

// Where ListEntries reads candidates from: an index range (keys end in
// "\0<id>") or the entries themselves.
struct EntrySource {
  std::string prefix;
  bool index = false;
};

EntrySource SourceFor(const EntryFilter& filter) {
  const absl::string_view nul("\0", 1);
  if (filter.by_spiffe_id.has_value()) {
    return {absl::StrCat(store_keys::kEntryBySpiffePrefix, *filter.by_spiffe_id, nul), true};
  }
  if (filter.by_parent_id.has_value()) {
    return {absl::StrCat(store_keys::kEntryByParentPrefix, *filter.by_parent_id, nul), true};
  }
  return {std::string(store_keys::kEntryPrefix), false};
}

}  // namespace

absl::StatusOr<EntryPage> Store::ListEntries(const EntryFilter& filter, int32_t page_size,
                                             absl::string_view page_token) {
  EntrySource source = SourceFor(filter);
  EntryPage page;
  std::string start_after = page_token.empty() ? "" : absl::StrCat(source.prefix, page_token);
  auto visit = [&](const KeyValue& kv) -> absl::StatusOr<bool> {
    types::Entry entry;
    if (source.index) {
      absl::string_view id = absl::string_view(kv.key).substr(source.prefix.size());
      absl::StatusOr<types::Entry> got = GetEntry(id);
      // Deleted since the index was read.
      if (got.status().code() == absl::StatusCode::kNotFound) return true;
      if (!got.ok()) return got.status();
      entry = *std::move(got);
    } else {
      SIGIL_ASSIGN_OR_RETURN(entry, ParseValue<types::Entry>(kv));
    }
    if (filter.Matches(entry)) page.entries.push_back(std::move(entry));
    return page_size <= 0 || static_cast<int32_t>(page.entries.size()) < page_size;
  };
  absl::StatusOr<bool> more = Scan(kv_, source.prefix, start_after, visit);
  if (!more.ok()) return Annotate(more.status(), "listing entries");
  if (*more && !page.entries.empty()) page.next_page_token = page.entries.back().id();
  return page;
}

absl::StatusOr<int64_t> Store::CountEntries(const EntryFilter& filter) {
  SIGIL_ASSIGN_OR_RETURN(EntryPage all, ListEntries(filter, 0, ""));
  return static_cast<int64_t>(all.entries.size());
}

absl::StatusOr<std::vector<types::Entry>> Store::ListEntriesBySpiffeId(absl::string_view spiffe_id) {
  EntryFilter filter;
  filter.by_spiffe_id = std::string(spiffe_id);
  SIGIL_ASSIGN_OR_RETURN(EntryPage page, ListEntries(filter, 0, ""));
  return std::move(page.entries);
}

absl::StatusOr<std::vector<types::Entry>> Store::ListEntriesByParentId(absl::string_view parent_id) {
  EntryFilter filter;
  filter.by_parent_id = std::string(parent_id);
  SIGIL_ASSIGN_OR_RETURN(EntryPage page, ListEntries(filter, 0, ""));
  return std::move(page.entries);
}

// ---- Agents ----

absl::StatusOr<StoredAgent> Store::GetAgent(absl::string_view agent_id) {
  SIGIL_ASSIGN_OR_RETURN(std::string id, CanonicalIdString("agent id", agent_id));
  absl::StatusOr<KeyValue> kv = kv_->Get(store_keys::AgentKey(id));
  if (kv.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("agent \"", id, "\" not found"));
  }
  if (!kv.ok()) return Annotate(kv.status(), "reading agent");
  SIGIL_ASSIGN_OR_RETURN(AgentRecord record, ParseValue<AgentRecord>(*kv));
  return StoredAgent{std::move(record), kv->mod_revision};
}

absl::StatusOr<int64_t> Store::PutAgent(const AgentRecord& record,
                                        std::optional<int64_t> expected_mod_revision) {
  SIGIL_ASSIGN_OR_RETURN(spiffe::SpiffeId parsed, AgentIdOf(record));
  if (expected_mod_revision.has_value() && *expected_mod_revision < 0) {
    return absl::InvalidArgumentError("expected_mod_revision is negative");
  }
  const std::string id = parsed.ToString();
  AgentRecord stored = record;
  *stored.mutable_agent()->mutable_id() = apitypes::SpiffeIdToProto(parsed);
  Txn txn;
  if (expected_mod_revision.has_value()) {
    txn.compares.push_back(Compare{store_keys::AgentKey(id), *expected_mod_revision});
  }
  txn.ops.push_back(Op::Put(store_keys::AgentKey(id), stored.SerializeAsString()));
  absl::StatusOr<int64_t> committed = kv_->Commit(txn);
  if (committed.ok()) return *committed;
  if (datastore::FailedCompareKey(committed.status()).has_value()) {
    if (*expected_mod_revision == 0) {
      return absl::AlreadyExistsError(absl::StrCat("agent \"", id, "\" already exists"));
    }
    return absl::AbortedError(absl::StrCat("agent \"", id, "\" changed since revision ",
                                           *expected_mod_revision));
  }
  return Annotate(committed.status(), "writing agent");
}

absl::StatusOr<StoredAgent> Store::ModifyAgent(absl::string_view agent_id,
                                               const AgentMutator& mutate) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(StoredAgent current, GetAgent(agent_id));
    AgentRecord record = current.record;
    SIGIL_RETURN_IF_ERROR(mutate(&record));
    if (apitypes::SpiffeIdString(record.agent().id()) != apitypes::SpiffeIdString(current.record.agent().id())) {
      return absl::InvalidArgumentError("the agent id of a record cannot change");
    }
    absl::StatusOr<int64_t> revision = PutAgent(record, current.mod_revision);
    if (revision.ok()) return StoredAgent{std::move(record), *revision};
    if (revision.status().code() != absl::StatusCode::kAborted) return revision.status();
  }
  return Exhausted("updating agent");
}

absl::StatusOr<AgentRecord> Store::DeleteAgent(absl::string_view agent_id) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(StoredAgent current, GetAgent(agent_id));
    std::string key = store_keys::AgentKey(apitypes::SpiffeIdString(current.record.agent().id()));
    Txn txn;
    txn.compares.push_back(Compare{key, current.mod_revision});
    txn.ops.push_back(Op::Delete(key));
    absl::StatusOr<int64_t> committed = kv_->Commit(txn);
    if (committed.ok()) return std::move(current.record);
    if (!datastore::FailedCompareKey(committed.status()).has_value()) {
      return Annotate(committed.status(), "deleting agent");
    }
  }
  return Exhausted("deleting agent");
}

absl::Status Store::BanAgent(absl::string_view agent_id) {
  return ModifyAgent(agent_id, [](AgentRecord* record) {
           record->mutable_agent()->set_banned(true);
           record->mutable_agent()->clear_x509svid_serial_number();
           record->clear_new_x509svid_serial_number();
           return absl::OkStatus();
         })
      .status();
}

absl::StatusOr<AgentPage> Store::ListAgents(const AgentFilter& filter, int32_t page_size,
                                            absl::string_view page_token) {
  AgentPage page;
  std::string start_after =
      page_token.empty() ? "" : absl::StrCat(store_keys::kAgentPrefix, page_token);
  auto visit = [&](const KeyValue& kv) -> absl::StatusOr<bool> {
    SIGIL_ASSIGN_OR_RETURN(AgentRecord record, ParseValue<AgentRecord>(kv));
    if (filter.Matches(record.agent())) page.agents.push_back(std::move(record));
    return page_size <= 0 || static_cast<int32_t>(page.agents.size()) < page_size;
  };
  absl::StatusOr<bool> more = Scan(kv_, store_keys::kAgentPrefix, start_after, visit);
  if (!more.ok()) return Annotate(more.status(), "listing agents");
  if (*more && !page.agents.empty()) {
    page.next_page_token = apitypes::SpiffeIdString(page.agents.back().agent().id());
  }
  return page;
}

absl::StatusOr<int64_t> Store::CountAgents(const AgentFilter& filter) {
  SIGIL_ASSIGN_OR_RETURN(AgentPage all, ListAgents(filter, 0, ""));
  return static_cast<int64_t>(all.agents.size());
}

// ---- Join tokens ----

absl::Status Store::CreateJoinToken(const JoinTokenRecord& token) {
  if (token.token().empty()) return absl::InvalidArgumentError("join token is empty");
  Txn txn;
  txn.compares.push_back(Compare{store_keys::TokenKey(token.token()), 0});
  txn.ops.push_back(Op::Put(store_keys::TokenKey(token.token()), token.SerializeAsString()));
  absl::StatusOr<int64_t> committed = kv_->Commit(txn);
  if (committed.ok()) return absl::OkStatus();
  if (datastore::FailedCompareKey(committed.status()).has_value()) {
    return absl::AlreadyExistsError("join token already exists");
  }
  return Annotate(committed.status(), "creating join token");
}

absl::StatusOr<types::Entry> Store::CreateJoinTokenWithEntry(const JoinTokenRecord& token,
                                                             const types::Entry& alias) {
  if (token.token().empty()) return absl::InvalidArgumentError("join token is empty");
  SIGIL_ASSIGN_OR_RETURN(CreateEntryResult result, CommitCreate(alias, &token));
  if (!result.created) {
    return absl::AlreadyExistsError(
        absl::StrCat("a similar entry already exists: \"", result.entry.id(), "\""));
  }
  return std::move(result.entry);
}

absl::StatusOr<JoinTokenRecord> Store::ConsumeJoinToken(absl::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError("join token is empty");
  const std::string key = store_keys::TokenKey(token);
  absl::StatusOr<KeyValue> kv = kv_->Get(key);
  if (kv.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError("join token not found");
  }
  if (!kv.ok()) return Annotate(kv.status(), "reading join token");
  SIGIL_ASSIGN_OR_RETURN(JoinTokenRecord record, ParseValue<JoinTokenRecord>(*kv));
  Txn txn;
  txn.compares.push_back(Compare{key, kv->mod_revision});
  txn.ops.push_back(Op::Delete(key));
  absl::StatusOr<int64_t> committed = kv_->Commit(txn);
  if (!committed.ok()) {
    // Someone else consumed it between our read and delete.
    if (datastore::FailedCompareKey(committed.status()).has_value()) {
      return absl::NotFoundError("join token not found");
    }
    return Annotate(committed.status(), "consuming join token");
  }
  if (absl::FromUnixSeconds(record.expires_at()) <= clock_->Now()) {
    return absl::PermissionDeniedError("join token expired");
  }
  return record;
}

absl::StatusOr<int64_t> Store::PruneJoinTokens() {
  const absl::Time now = clock_->Now();
  std::vector<KeyValue> expired;
  auto visit = [&](const KeyValue& kv) -> absl::StatusOr<bool> {
    SIGIL_ASSIGN_OR_RETURN(JoinTokenRecord record, ParseValue<JoinTokenRecord>(kv));
    if (absl::FromUnixSeconds(record.expires_at()) <= now) expired.push_back(kv);
    return true;
  };
  absl::StatusOr<bool> scanned = Scan(kv_, store_keys::kTokenPrefix, "", visit);
  if (!scanned.ok()) return Annotate(scanned.status(), "listing join tokens");
  int64_t deleted = 0;
  for (const KeyValue& kv : expired) {
    Txn txn;
    txn.compares.push_back(Compare{kv.key, kv.mod_revision});
    txn.ops.push_back(Op::Delete(kv.key));
    absl::StatusOr<int64_t> committed = kv_->Commit(txn);
    if (committed.ok()) {
      ++deleted;
    } else if (!datastore::FailedCompareKey(committed.status()).has_value()) {
      return Annotate(committed.status(), "pruning join tokens");
    }
  }
  return deleted;
}

// ---- Bundles ----

absl::StatusOr<types::Bundle> Store::GetBundle(absl::string_view trust_domain) {
  SIGIL_ASSIGN_OR_RETURN(std::string td, TrustDomainName("trust domain", trust_domain));
  absl::StatusOr<KeyValue> kv = kv_->Get(store_keys::BundleKey(td));
  if (kv.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("no bundle is stored for trust domain \"", td, "\""));
  }
  if (!kv.ok()) return Annotate(kv.status(), "reading bundle");
  return ParseValue<types::Bundle>(*kv);
}

absl::StatusOr<types::Bundle> Store::CreateBundle(const types::Bundle& bundle) {
  SIGIL_ASSIGN_OR_RETURN(std::string td, TrustDomainName("trust_domain", bundle.trust_domain()));
  types::Bundle stored = bundle;
  stored.set_trust_domain(td);
  Txn txn;
  txn.compares.push_back(Compare{store_keys::BundleKey(td), 0});
  txn.ops.push_back(Op::Put(store_keys::BundleKey(td), stored.SerializeAsString()));
  absl::StatusOr<int64_t> committed = kv_->Commit(txn);
  if (committed.ok()) return stored;
  if (datastore::FailedCompareKey(committed.status()).has_value()) {
    return absl::AlreadyExistsError(
        absl::StrCat("a bundle for trust domain \"", td, "\" already exists"));
  }
  return Annotate(committed.status(), "creating bundle");
}

absl::StatusOr<types::Bundle> Store::SetBundle(const types::Bundle& bundle) {
  SIGIL_ASSIGN_OR_RETURN(std::string td, TrustDomainName("trust_domain", bundle.trust_domain()));
  types::Bundle stored = bundle;
  stored.set_trust_domain(td);
  Txn txn;
  txn.ops.push_back(Op::Put(store_keys::BundleKey(td), stored.SerializeAsString()));
  absl::StatusOr<int64_t> committed = kv_->Commit(txn);
  if (!committed.ok()) return Annotate(committed.status(), "writing bundle");
  return stored;
}

absl::StatusOr<types::Bundle> Store::UpdateBundle(const types::Bundle& bundle,
                                                  const types::BundleMask* mask) {
  SIGIL_ASSIGN_OR_RETURN(std::string td, TrustDomainName("trust_domain", bundle.trust_domain()));
  auto selected = [mask](bool (types::BundleMask::*field)() const) {
    return mask == nullptr || (mask->*field)();
  };
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    absl::StatusOr<KeyValue> kv = kv_->Get(store_keys::BundleKey(td));
    if (kv.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat("no bundle is stored for trust domain \"", td, "\""));
    }
    if (!kv.ok()) return Annotate(kv.status(), "reading bundle");
    SIGIL_ASSIGN_OR_RETURN(types::Bundle stored, ParseValue<types::Bundle>(*kv));
    if (selected(&types::BundleMask::x509_authorities)) {
      *stored.mutable_x509_authorities() = bundle.x509_authorities();
    }
    if (selected(&types::BundleMask::jwt_authorities)) {
      *stored.mutable_jwt_authorities() = bundle.jwt_authorities();
    }
    if (selected(&types::BundleMask::refresh_hint)) stored.set_refresh_hint(bundle.refresh_hint());
    if (selected(&types::BundleMask::sequence_number)) {
      stored.set_sequence_number(bundle.sequence_number());
    }
    Txn txn;
    txn.compares.push_back(Compare{kv->key, kv->mod_revision});
    txn.ops.push_back(Op::Put(kv->key, stored.SerializeAsString()));
    absl::StatusOr<int64_t> committed = kv_->Commit(txn);
    if (committed.ok()) return stored;
    if (!datastore::FailedCompareKey(committed.status()).has_value()) {
      return Annotate(committed.status(), "updating bundle");
    }
  }
  return Exhausted("updating bundle");
}

absl::StatusOr<types::Bundle> Store::ModifyBundle(absl::string_view trust_domain,
                                                  bool create_if_missing,
                                                  const BundleMutator& mutate) {
  SIGIL_ASSIGN_OR_RETURN(std::string td, TrustDomainName("trust domain", trust_domain));
  const std::string key = store_keys::BundleKey(td);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<KeyValue> kv, GetOptional(kv_, key));
    if (!kv.has_value() && !create_if_missing) {
      return absl::NotFoundError(absl::StrCat("no bundle is stored for trust domain \"", td, "\""));
    }
    types::Bundle bundle;
    if (kv.has_value()) {
      SIGIL_ASSIGN_OR_RETURN(bundle, ParseValue<types::Bundle>(*kv));
    } else {
      bundle.set_trust_domain(td);
    }
    SIGIL_ASSIGN_OR_RETURN(bool changed, mutate(&bundle, kv.has_value()));
    bool pruned = PruneExpiredAuthorities(&bundle, clock_->Now());
    if (!changed && !pruned) return bundle;
    bundle.set_trust_domain(td);
    bundle.set_sequence_number(bundle.sequence_number() + 1);
    Txn txn;
    txn.compares.push_back(Compare{key, kv.has_value() ? kv->mod_revision : 0});
    txn.ops.push_back(Op::Put(key, bundle.SerializeAsString()));
    absl::StatusOr<int64_t> committed = kv_->Commit(txn);
    if (committed.ok()) return bundle;
    if (!datastore::FailedCompareKey(committed.status()).has_value()) {
      return Annotate(committed.status(), "writing bundle");
    }
  }
  return Exhausted("writing bundle");
}

absl::StatusOr<types::Bundle> Store::AppendBundle(const types::Bundle& bundle,
                                                  bool create_if_missing) {
  return ModifyBundle(bundle.trust_domain(), create_if_missing,
                      [&bundle](types::Bundle* stored, bool) {
                        return MergeAuthorities(bundle, stored);
                      });
}

absl::Status Store::DetachEntryFromBundle(absl::string_view id, absl::string_view trust_domain,
                                          BundleDeleteMode mode, Txn* txn) {
  int64_t revision = 0;
  absl::StatusOr<types::Entry> entry = GetEntryAt(id, &revision);
  // Deleted since the index was read; the next pass sees the index without it.
  if (entry.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  if (!entry.ok()) return entry.status();
  txn->compares.push_back(Compare{store_keys::EntryKey(id), revision});
  if (mode == BundleDeleteMode::kDelete) {
    AppendEntryDeletes(*entry, txn);
    return absl::OkStatus();
  }
  auto* tds = entry->mutable_federates_with();
  tds->erase(std::remove(tds->begin(), tds->end(), std::string(trust_domain)), tds->end());
  entry->set_revision_number(entry->revision_number() + 1);
  txn->ops.push_back(Op::Put(store_keys::EntryKey(id), entry->SerializeAsString()));
  txn->ops.push_back(Op::Delete(store_keys::EntryByFederatesKey(trust_domain, id)));
  return absl::OkStatus();
}

absl::Status Store::DeleteBundle(absl::string_view trust_domain, BundleDeleteMode mode) {
  SIGIL_ASSIGN_OR_RETURN(std::string td, TrustDomainName("trust domain", trust_domain));
  const std::string bundle_key = store_keys::BundleKey(td);
  const std::string ref_key = store_keys::FederationRefKey(td);
  const std::string index_prefix =
      absl::StrCat(store_keys::kEntryByFederatesPrefix, td, absl::string_view("\0", 1));
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<KeyValue> bundle, GetOptional(kv_, bundle_key));
    if (!bundle.has_value()) {
      return absl::NotFoundError(absl::StrCat("no bundle is stored for trust domain \"", td, "\""));
    }
    // Read before the index: any entry that starts federating with the
    // domain after this point bumps the ref key and fails the final compare.
    SIGIL_ASSIGN_OR_RETURN(std::optional<KeyValue> ref, GetOptional(kv_, ref_key));
    std::vector<std::string> ids;
    absl::StatusOr<bool> scanned =
        Scan(kv_, index_prefix, "", [&](const KeyValue& kv) -> absl::StatusOr<bool> {
          ids.push_back(kv.key.substr(index_prefix.size()));
          return true;
        });
    if (!scanned.ok()) return Annotate(scanned.status(), "listing federated entries");

    if (ids.empty()) {
      Txn txn;
      txn.compares.push_back(Compare{bundle_key, bundle->mod_revision});
      txn.compares.push_back(Compare{ref_key, ref.has_value() ? ref->mod_revision : 0});
      txn.ops.push_back(Op::Delete(bundle_key));
      txn.ops.push_back(Op::Delete(ref_key));
      absl::StatusOr<int64_t> committed = kv_->Commit(txn);
      if (committed.ok()) return absl::OkStatus();
      if (!datastore::FailedCompareKey(committed.status()).has_value()) {
        return Annotate(committed.status(), "deleting bundle");
      }
      continue;
    }
    if (mode == BundleDeleteMode::kRestrict) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "cannot delete bundle; federated with %d registration entries", ids.size()));
    }
    Txn batch;
    for (const std::string& id : ids) {
      Txn one;
      SIGIL_RETURN_IF_ERROR(DetachEntryFromBundle(id, td, mode, &one));
      if (!batch.ops.empty() && batch.ops.size() + one.ops.size() > kBatchOps) {
        absl::StatusOr<int64_t> committed = kv_->Commit(batch);
        if (!committed.ok() && !datastore::FailedCompareKey(committed.status()).has_value()) {
          return Annotate(committed.status(), "detaching entries from bundle");
        }
        batch = Txn();
      }
      batch.compares.insert(batch.compares.end(), one.compares.begin(), one.compares.end());
      batch.ops.insert(batch.ops.end(), one.ops.begin(), one.ops.end());
    }
    if (!batch.ops.empty()) {
      absl::StatusOr<int64_t> committed = kv_->Commit(batch);
      if (!committed.ok() && !datastore::FailedCompareKey(committed.status()).has_value()) {
        return Annotate(committed.status(), "detaching entries from bundle");
      }
    }
    // Entries that changed under a batch are handled by the next pass.
  }
  return Exhausted("deleting bundle");
}

absl::StatusOr<BundlePage> Store::ListBundles(int32_t page_size, absl::string_view page_token) {
  BundlePage page;
  std::string start_after =
      page_token.empty() ? "" : absl::StrCat(store_keys::kBundlePrefix, page_token);
  auto visit = [&](const KeyValue& kv) -> absl::StatusOr<bool> {
    SIGIL_ASSIGN_OR_RETURN(types::Bundle bundle, ParseValue<types::Bundle>(kv));
    page.bundles.push_back(std::move(bundle));
    return page_size <= 0 || static_cast<int32_t>(page.bundles.size()) < page_size;
  };
  absl::StatusOr<bool> more = Scan(kv_, store_keys::kBundlePrefix, start_after, visit);
  if (!more.ok()) return Annotate(more.status(), "listing bundles");
  if (*more && !page.bundles.empty()) page.next_page_token = page.bundles.back().trust_domain();
  return page;
}

absl::StatusOr<int64_t> Store::CountBundles() {
  int64_t count = 0;
  absl::StatusOr<bool> scanned =
      Scan(kv_, store_keys::kBundlePrefix, "", [&](const KeyValue&) -> absl::StatusOr<bool> {
        ++count;
        return true;
      });
  if (!scanned.ok()) return Annotate(scanned.status(), "counting bundles");
  return count;
}

// ---- ca::JournalStore ----

absl::StatusOr<std::optional<std::string>> Store::LoadJournal() {
  SIGIL_ASSIGN_OR_RETURN(std::optional<KeyValue> kv, GetOptional(kv_, store_keys::kCaJournalKey));
  if (!kv.has_value()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(kv->value));
}

absl::Status Store::SaveJournal(const std::string& journal) {
  Txn txn;
  txn.ops.push_back(Op::Put(std::string(store_keys::kCaJournalKey), journal));
  return Annotate(kv_->Commit(txn).status(), "saving CA journal");
}

// ---- LocalBundlePublisher ----

LocalBundlePublisher::LocalBundlePublisher(Store* store, spiffe::TrustDomain trust_domain)
    : store_(store), trust_domain_(std::move(trust_domain)) {}

void LocalBundlePublisher::set_refresh_hint(absl::Duration hint) {
  absl::MutexLock lock(&mu_);
  refresh_hint_ = hint;
}

absl::Status LocalBundlePublisher::Modify(const BundleMutator& mutate) {
  int64_t hint_seconds;
  {
    absl::MutexLock lock(&mu_);
    hint_seconds = absl::ToInt64Seconds(refresh_hint_);
  }
  auto with_hint = [&](types::Bundle* bundle, bool exists) -> absl::StatusOr<bool> {
    SIGIL_ASSIGN_OR_RETURN(bool changed, mutate(bundle, exists));
    if (hint_seconds > 0 && bundle->refresh_hint() != hint_seconds) {
      bundle->set_refresh_hint(hint_seconds);
      changed = true;
    }
    return changed;
  };
  return store_->ModifyBundle(trust_domain_.name(), /*create_if_missing=*/true, with_hint).status();
}

absl::Status LocalBundlePublisher::PublishLocalAuthorities(
    const std::vector<ca::PublishedX509Authority>& x509,
    const std::vector<ca::PublishedJwtAuthority>& jwt) {
  return Modify([&](types::Bundle* bundle, bool) -> absl::StatusOr<bool> {
    bool changed = false;
    for (const ca::PublishedX509Authority& a : x509) {
      types::X509Certificate* found = nullptr;
      for (types::X509Certificate& c : *bundle->mutable_x509_authorities()) {
        if (c.asn1() == a.cert.der()) found = &c;
      }
      if (found == nullptr) {
        found = bundle->add_x509_authorities();
        found->set_asn1(a.cert.der());
        found->set_tainted(a.tainted);
        changed = true;
      } else if (found->tainted() != a.tainted) {
        found->set_tainted(a.tainted);
        changed = true;
      }
    }
    for (const ca::PublishedJwtAuthority& a : jwt) {
      types::JWTKey* found = nullptr;
      for (types::JWTKey& k : *bundle->mutable_jwt_authorities()) {
        if (k.key_id() == a.authority.key_id) found = &k;
      }
      if (found == nullptr) {
        found = bundle->add_jwt_authorities();
        found->set_key_id(a.authority.key_id);
        found->set_public_key(a.authority.public_key.spki_der());
        if (a.authority.expires_at != absl::InfinitePast()) {
          found->set_expires_at(absl::ToUnixSeconds(a.authority.expires_at));
        }
        found->set_tainted(a.tainted);
        changed = true;
      } else if (found->public_key() != a.authority.public_key.spki_der()) {
        return absl::FailedPreconditionError(
            absl::StrCat("the bundle already holds a different key under JWT key ID \"",
                         a.authority.key_id, "\""));
      } else if (found->tainted() != a.tainted) {
        found->set_tainted(a.tainted);
        changed = true;
      }
    }
    return changed;
  });
}

absl::Status LocalBundlePublisher::RemoveX509Authority(const crypto::Certificate& cert) {
  return Modify([&](types::Bundle* bundle, bool) -> absl::StatusOr<bool> {
    auto* list = bundle->mutable_x509_authorities();
    int before = list->size();
    list->erase(std::remove_if(list->begin(), list->end(),
                               [&](const types::X509Certificate& c) {
                                 return c.asn1() == cert.der();
                               }),
                list->end());
    return list->size() != before;
  });
}

absl::Status LocalBundlePublisher::RemoveJwtAuthority(const std::string& key_id) {
  return Modify([&](types::Bundle* bundle, bool) -> absl::StatusOr<bool> {
    auto* list = bundle->mutable_jwt_authorities();
    int before = list->size();
    list->erase(std::remove_if(list->begin(), list->end(),
                               [&](const types::JWTKey& k) { return k.key_id() == key_id; }),
                list->end());
    return list->size() != before;
  });
}

}  // namespace sigil::server
