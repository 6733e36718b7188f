#include "node-agent/svid_cache.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "apitypes/convert.h"
#include "node-agent/convert.h"
#include "spdlog/spdlog.h"
#include "spiffe/crypto/encoding.h"

namespace sigil::agent {

struct SvidCache::SubscriptionState {
  attestors::Selectors selectors;
  std::function<void()> on_change;
  absl::Mutex mu;
  bool active ABSL_GUARDED_BY(mu) = true;
};

struct SvidCache::ParsedEntry {
  spire::api::types::Entry entry;
  std::string serialized;
  spiffe::SpiffeId spiffe_id;
  attestors::Selectors selectors;
  std::vector<std::string> federates_with;
  bool node_alias;
};

class SubscriptionHandle final : public IdentitySource::Subscription {
 public:
  SubscriptionHandle(SvidCache* cache, std::shared_ptr<SvidCache::SubscriptionState> state)
      : cache_(cache), state_(std::move(state)) {}
  ~SubscriptionHandle() override {
    {
      // Waits for a running callback; none starts after this.
      absl::MutexLock lock(&state_->mu);
      state_->active = false;
    }
    cache_->Unsubscribe(state_);
  }

 private:
  SvidCache* const cache_;
  const std::shared_ptr<SvidCache::SubscriptionState> state_;
};

namespace {

attestors::Selectors Normalize(const attestors::Selectors& in) {
  attestors::Selectors out = in;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool IsSubset(const attestors::Selectors& sub, const attestors::Selectors& super) {
  return std::includes(super.begin(), super.end(), sub.begin(), sub.end());
}

// Whether two entries would need different SVIDs.
bool MintFieldsDiffer(const spire::api::types::Entry& a, const spire::api::types::Entry& b) {
  if (a.spiffe_id().trust_domain() != b.spiffe_id().trust_domain() || a.spiffe_id().path() != b.spiffe_id().path()) {
    return true;
  }
  if (a.x509_svid_ttl() != b.x509_svid_ttl()) return true;
  if (a.dns_names_size() != b.dns_names_size()) return true;
  for (int i = 0; i < a.dns_names_size(); ++i) {
    if (a.dns_names(i) != b.dns_names(i)) return true;
  }
  return false;
}

std::string AudienceKey(const std::vector<std::string>& audience) {
  std::vector<std::string> sorted = audience;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  return absl::StrJoin(sorted, std::string(1, '\0'));
}

}  // namespace

SvidCache::SvidCache(spiffe::TrustDomain td, SvidCacheOptions options)
    : td_(std::move(td)),
      options_(options),
      server_id_(absl::StrCat(td_.IdString(), "/spire/server")),
      rng_(options.seed != 0 ? options.seed : std::random_device{}()) {}

SvidCache::~SvidCache() = default;

void SvidCache::SetChangeListener(std::function<void(const ChangeEvent&)> listener) {
  absl::MutexLock lock(&listener_mu_);
  listener_ = std::move(listener);
}

void SvidCache::SetServerApi(ServerApi* api) {
  absl::MutexLock lock(&api_mu_);
  api_ = api;
}

void SvidCache::SetBootstrapBundle(const spiffe::Bundle& bundle) {
  {
    absl::MutexLock lock(&mu_);
    bundle_ = std::make_shared<const spiffe::Bundle>(bundle);
  }
  Notify({}, true, ChangeEvent{false, true});
}

std::shared_ptr<const spiffe::Bundle> SvidCache::bundle() const {
  absl::ReaderMutexLock lock(&mu_);
  return bundle_;
}

bool SvidCache::synced() const {
  absl::ReaderMutexLock lock(&mu_);
  return synced_;
}

int64_t SvidCache::revision() const {
  absl::ReaderMutexLock lock(&mu_);
  return revision_;
}

void SvidCache::IndexEntry(const std::string& id, const attestors::Selectors& selectors) {
  if (selectors.empty()) return;
  by_first_selector_[selectors.front()].insert(id);
}

void SvidCache::UnindexEntry(const std::string& id, const attestors::Selectors& selectors) {
  if (selectors.empty()) return;
  auto it = by_first_selector_.find(selectors.front());
  if (it == by_first_selector_.end()) return;
  it->second.erase(id);
  if (it->second.empty()) by_first_selector_.erase(it);
}

absl::Status SvidCache::ApplyUpdate(const sigil::agent::v1::WatchAuthorizedUpdate& update) {
  std::vector<std::string> problems;
  // Everything is parsed before the lock is taken.
  std::optional<ReceivedBundle> own;
  if (update.has_bundle()) {
    auto parsed = ReceiveBundle(update.bundle());
    if (!parsed.ok()) {
      problems.push_back(std::string(parsed.status().message()));
    } else if (parsed->bundle.trust_domain() != td_) {
      problems.push_back(absl::StrCat("bundle: expected the bundle of ", td_.name(), ", got ",
                                      parsed->bundle.trust_domain().name()));
    } else if (parsed->bundle.x509_authorities().empty()) {
      problems.push_back(absl::StrCat("bundle ", td_.name(), ": no X.509 authorities"));
    } else {
      own = std::move(*parsed);
    }
  }
  std::vector<ReceivedBundle> federated;
  for (const auto& b : update.federated_bundles()) {
    auto parsed = ReceiveBundle(b);
    if (!parsed.ok()) {
      problems.push_back(absl::StrCat("federated ", parsed.status().message()));
    } else if (parsed->bundle.trust_domain() == td_) {
      problems.push_back(absl::StrCat("federated bundles: the agent's own trust domain ", td_.name(), " is not federated"));
    } else {
      federated.push_back(std::move(*parsed));
    }
  }
  std::vector<std::string> removed_federated;
  for (const auto& name : update.removed_federated_bundles()) {
    auto td = spiffe::TrustDomain::FromString(name);
    if (td.ok()) removed_federated.push_back(td->name());
  }
  std::vector<ParsedEntry> upserts;
  upserts.reserve(update.upserted_size());
  for (int i = 0; i < update.upserted_size(); ++i) {
    const auto& e = update.upserted(i);
    const std::string where = absl::StrCat("upserted[", i, "]");
    if (e.id().empty()) {
      problems.push_back(absl::StrCat(where, ": entry without id"));
      continue;
    }
    auto id = apitypes::SpiffeIdFromProto(e.spiffe_id());
    if (!id.ok()) {
      problems.push_back(absl::StrCat("entry ", e.id(), " spiffe_id: ", id.status().message()));
      continue;
    }
    auto parent = apitypes::SpiffeIdFromProto(e.parent_id());
    if (!parent.ok()) {
      problems.push_back(absl::StrCat("entry ", e.id(), " parent_id: ", parent.status().message()));
      continue;
    }
    ParsedEntry p{e, e.SerializeAsString(), *id, SortedSelectors(e), {}, parent->ToString() == server_id_};
    for (const auto& f : e.federates_with()) {
      auto td = spiffe::TrustDomain::FromString(f);
      if (td.ok()) p.federates_with.push_back(td->name());
    }
    upserts.push_back(std::move(p));
  }

  const absl::Time now = options_.clock->Now();
  std::set<attestors::Selectors> changed;
  std::set<std::string> dropped_jwt_entries;
  bool bundle_changed = false;
  bool entries_changed = false;
  {
    absl::MutexLock lock(&mu_);
    auto remove_entry = [&](std::map<std::string, EntryState>::iterator it) {
      changed.insert(it->second.selectors);
      UnindexEntry(it->first, it->second.selectors);
      dropped_jwt_entries.insert(it->first);
      entries_.erase(it);
      entries_changed = true;
    };
    if (update.full()) {
      std::set<std::string> keep;
      for (const auto& p : upserts) keep.insert(p.entry.id());
      for (auto it = entries_.begin(); it != entries_.end();) {
        auto next = std::next(it);
        if (keep.count(it->first) == 0) remove_entry(it);
        it = next;
      }
    } else {
      for (const auto& id : update.removed_entry_ids()) {
        auto it = entries_.find(id);
        if (it != entries_.end()) remove_entry(it);
      }
    }
    for (auto& p : upserts) {
      auto it = entries_.find(p.entry.id());
      if (it != entries_.end() && it->second.serialized == p.serialized) continue;
      entries_changed = true;
      changed.insert(p.selectors);
      if (it == entries_.end()) {
        EntryState state(p.spiffe_id);
        state.version = next_version_++;
        it = entries_.emplace(p.entry.id(), std::move(state)).first;
      } else {
        EntryState& old = it->second;
        changed.insert(old.selectors);
        UnindexEntry(it->first, old.selectors);
        if (MintFieldsDiffer(old.entry, p.entry)) {
          // The SVID no longer describes the entry: never serve it again.
          old.version = next_version_++;
          old.svid.reset();
          old.failures = 0;
          old.retry_at = absl::InfinitePast();
          dropped_jwt_entries.insert(it->first);
        }
      }
      EntryState& e = it->second;
      e.entry = std::move(p.entry);
      e.serialized = std::move(p.serialized);
      e.spiffe_id = p.spiffe_id;
      e.selectors = std::move(p.selectors);
      e.federates_with = std::move(p.federates_with);
      e.node_alias = p.node_alias;
      if (e.node_alias) e.svid.reset();
      IndexEntry(it->first, e.selectors);
    }

    if (own.has_value() && (bundle_ == nullptr || *bundle_ != own->bundle || tainted_ids_ != own->tainted_x509_key_ids)) {
      bundle_ = std::make_shared<const spiffe::Bundle>(std::move(own->bundle));
      tainted_ids_ = std::move(own->tainted_x509_key_ids);
      bundle_changed = true;
      int due = RescheduleForBundleLocked(now);
      if (due > 0) {
        spdlog::info("{} SVIDs chain to an authority that is tainted or no longer in the bundle; renewing them now",
                     due);
      }
    }

    if (!update.active_x509_authority_id().empty() && update.active_x509_authority_id() != active_authority_) {
      const bool rotated = !active_authority_.empty();
      active_authority_ = update.active_x509_authority_id();
      if (rotated) {
        const std::string active = active_authority_;
        int rescheduled = SpreadRenewalsLocked(
            now, [&](const SvidState& svid) { return crypto::HexEncode(svid.issuer_id) != active; });
        if (rescheduled > 0) {
          spdlog::info("the server's X.509 CA rotated to {}; renewing {} SVIDs signed by earlier CAs within {}",
                       active, rescheduled, absl::FormatDuration(options_.ca_rotation_window));
        }
      }
    }

    std::set<std::string> changed_tds;
    if (update.full()) {
      std::set<std::string> incoming;
      for (const auto& f : federated) incoming.insert(f.bundle.trust_domain().name());
      for (const auto& [name, _] : federated_) {
        if (incoming.count(name) == 0) changed_tds.insert(name);
      }
      for (const auto& name : changed_tds) federated_.erase(name);
    }
    for (const auto& name : removed_federated) {
      if (federated_.erase(name) > 0) changed_tds.insert(name);
    }
    for (auto& f : federated) {
      const std::string name = f.bundle.trust_domain().name();
      auto it = federated_.find(name);
      if (it != federated_.end() && *it->second == f.bundle) continue;
      federated_[name] = std::make_shared<const spiffe::Bundle>(std::move(f.bundle));
      changed_tds.insert(name);
    }
    if (!changed_tds.empty()) {
      for (const auto& [_, e] : entries_) {
        for (const auto& td : e.federates_with) {
          if (changed_tds.count(td) > 0) {
            changed.insert(e.selectors);
            break;
          }
        }
      }
    }
    if (update.full()) synced_ = true;
    if (update.revision() > revision_) revision_ = update.revision();
  }
  DropJwtsOf(dropped_jwt_entries);
  Notify(changed, bundle_changed, ChangeEvent{entries_changed, bundle_changed});
  if (!problems.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("skipped invalid parts of the sync update: ", absl::StrJoin(problems, "; ")));
  }
  return absl::OkStatus();
}

int SvidCache::RescheduleForBundleLocked(absl::Time now) {
  std::set<std::string> in_bundle;
  if (bundle_ != nullptr) {
    for (const auto& a : bundle_->x509_authorities()) {
      std::string kid = AuthorityKeyIdOf(a);
      if (!kid.empty()) in_bundle.insert(kid);
    }
  }
  int count = 0;
  for (auto& [_, e] : entries_) {
    if (!e.svid.has_value()) continue;
    SvidState& s = *e.svid;
    bool tainted = false;
    for (const auto& id : s.authority_ids) {
      if (tainted_ids_.count(id) > 0) {
        tainted = true;
        break;
      }
    }
    bool left = !s.anchor_id.empty() && in_bundle.count(s.anchor_id) == 0;
    if ((tainted || left) && s.renew_at > now) {
      s.renew_at = now;
      e.retry_at = absl::InfinitePast();
      ++count;
    }
  }
  return count;
}

std::vector<const SvidCache::EntryState*> SvidCache::MatchLocked(const attestors::Selectors& sorted) const {
  std::vector<const EntryState*> out;
  for (const auto& s : sorted) {
    auto bucket = by_first_selector_.find(s);
    if (bucket == by_first_selector_.end()) continue;
    for (const auto& id : bucket->second) {
      const EntryState& e = entries_.at(id);
      if (!e.node_alias && IsSubset(e.selectors, sorted)) out.push_back(&e);
    }
  }
  std::sort(out.begin(), out.end(), [](const EntryState* a, const EntryState* b) { return a->entry.id() < b->entry.id(); });
  return out;
}

WorkloadView SvidCache::View(const attestors::Selectors& selectors) const {
  const attestors::Selectors sorted = Normalize(selectors);
  const absl::Time now = options_.clock->Now();
  WorkloadView view;
  absl::ReaderMutexLock lock(&mu_);
  view.bundle = bundle_;
  view.synced = synced_;
  for (const EntryState* e : MatchLocked(sorted)) {
    if (!e->svid.has_value() || e->svid->not_after <= now) continue;
    X509Identity id{e->entry.id(), e->spiffe_id, e->entry.hint(), e->svid->chain, e->svid->key, e->federates_with};
    for (const auto& td : e->federates_with) {
      auto it = federated_.find(td);
      if (it != federated_.end()) view.federated_bundles.emplace(td, it->second);
    }
    view.identities.push_back(std::move(id));
  }
  return view;
}

spiffe::BundleSet SvidCache::AllBundles() const {
  spiffe::BundleSet set;
  absl::ReaderMutexLock lock(&mu_);
  if (bundle_ != nullptr) set.Add(*bundle_);
  for (const auto& [_, b] : federated_) set.Add(*b);
  return set;
}

std::unique_ptr<IdentitySource::Subscription> SvidCache::Subscribe(const attestors::Selectors& selectors,
                                                                   std::function<void()> on_change) {
  auto state = std::make_shared<SubscriptionState>();
  state->selectors = Normalize(selectors);
  state->on_change = std::move(on_change);
  {
    absl::MutexLock lock(&sub_mu_);
    groups_[state->selectors].push_back(state);
  }
  return std::make_unique<SubscriptionHandle>(this, std::move(state));
}

void SvidCache::Unsubscribe(const std::shared_ptr<SubscriptionState>& state) {
  absl::MutexLock lock(&sub_mu_);
  auto it = groups_.find(state->selectors);
  if (it == groups_.end()) return;
  auto& subs = it->second;
  subs.erase(std::remove(subs.begin(), subs.end(), state), subs.end());
  if (subs.empty()) groups_.erase(it);
}

size_t SvidCache::subscriber_groups() const {
  absl::MutexLock lock(&sub_mu_);
  return groups_.size();
}

void SvidCache::Notify(const std::set<attestors::Selectors>& changed, bool all, const ChangeEvent& event) {
  std::vector<std::shared_ptr<SubscriptionState>> targets;
  if (all || !changed.empty()) {
    absl::MutexLock lock(&sub_mu_);
    for (const auto& [selectors, subs] : groups_) {
      bool affected = all;
      for (auto it = changed.begin(); !affected && it != changed.end(); ++it) {
        affected = !it->empty() && IsSubset(*it, selectors);
      }
      if (affected) targets.insert(targets.end(), subs.begin(), subs.end());
    }
  }
  for (const auto& t : targets) {
    absl::MutexLock lock(&t->mu);
    if (t->active) t->on_change();
  }
  if (event.entries_changed || event.bundle_changed) {
    std::function<void(const ChangeEvent&)> listener;
    {
      absl::MutexLock lock(&listener_mu_);
      listener = listener_;
    }
    if (listener) listener(event);
  }
}

std::vector<DueSvid> SvidCache::DueSvids(absl::Time now, size_t max) const {
  std::vector<std::pair<absl::Time, DueSvid>> due;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [id, e] : entries_) {
      if (e.node_alias || e.selectors.empty() || e.retry_at > now) continue;
      if (e.svid.has_value() && e.svid->renew_at > now) continue;
      absl::Time urgency = e.svid.has_value() ? e.svid->not_after : absl::InfinitePast();
      due.push_back({urgency, DueSvid{id, e.spiffe_id, e.version, e.svid.has_value(), e.failures}});
    }
  }
  std::sort(due.begin(), due.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second.entry_id < b.second.entry_id;
  });
  std::vector<DueSvid> out;
  for (size_t i = 0; i < due.size() && i < max; ++i) out.push_back(std::move(due[i].second));
  return out;
}

absl::Time SvidCache::NextEvent() const {
  absl::Time next = absl::InfiniteFuture();
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [_, e] : entries_) {
    if (e.node_alias || e.selectors.empty()) continue;
    absl::Time due = e.svid.has_value() ? std::min(e.svid->renew_at, e.svid->not_after) : absl::InfinitePast();
    next = std::min(next, std::max(due, e.retry_at));
    if (e.svid.has_value()) next = std::min(next, e.svid->not_after);
  }
  return next;
}

int SvidCache::SpreadRenewalsLocked(absl::Time now, const std::function<bool(const SvidState&)>& needs) {
  int rescheduled = 0;
  std::uniform_real_distribution<double> frac(0.0, 1.0);
  for (auto& [id, e] : entries_) {
    if (!e.svid.has_value() || !needs(*e.svid)) continue;
    SvidState& s = *e.svid;
    // Within the window, but well before the SVID would expire.
    absl::Duration window = std::min(options_.ca_rotation_window, (s.not_after - now) / 2);
    if (window < absl::ZeroDuration()) window = absl::ZeroDuration();
    absl::Time at = now + window * frac(rng_);
    if (at < s.renew_at) {
      s.renew_at = at;
      ++rescheduled;
    }
  }
  return rescheduled;
}

SvidCache::SvidState SvidCache::MakeSvidState(std::vector<crypto::Certificate> chain, crypto::PrivateKey key,
                                              absl::Time renew_at) const {
  SvidState s(std::move(chain), std::move(key));
  const crypto::Certificate& leaf = s.chain.front();
  s.not_before = leaf.not_before();
  s.not_after = leaf.not_after();
  s.renew_at = renew_at;
  s.issuer_id = leaf.authority_key_id();
  s.issuer_not_before = absl::InfinitePast();
  const std::vector<crypto::Certificate>& chain_ref = s.chain;
  if (chain_ref.size() > 1) {
    s.issuer_not_before = chain_ref[1].not_before();
  } else if (bundle_ != nullptr) {
    for (const auto& a : bundle_->x509_authorities()) {
      if (!s.issuer_id.empty() && AuthorityKeyIdOf(a) == s.issuer_id) s.issuer_not_before = a.not_before();
    }
  }
  for (size_t i = 0; i < chain_ref.size(); ++i) {
    if (!chain_ref[i].authority_key_id().empty()) s.authority_ids.insert(chain_ref[i].authority_key_id());
    if (i > 0 && !chain_ref[i].subject_key_id().empty()) s.authority_ids.insert(chain_ref[i].subject_key_id());
  }
  s.anchor_id = chain_ref.back().authority_key_id();
  return s;
}

bool SvidCache::StoreSvid(const std::string& entry_id, uint64_t version, std::vector<crypto::Certificate> chain,
                          crypto::PrivateKey key, absl::Time renew_at) {
  if (chain.empty()) return false;
  const absl::Time now = options_.clock->Now();
  attestors::Selectors selectors;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(entry_id);
    if (it == entries_.end() || it->second.version != version || it->second.node_alias) return false;
    EntryState& e = it->second;
    e.svid = MakeSvidState(std::move(chain), std::move(key), renew_at);
    e.failures = 0;
    e.retry_at = absl::InfinitePast();
    selectors = e.selectors;

    const SvidState& fresh = *e.svid;
    if (!fresh.issuer_id.empty() && seen_issuers_.insert(fresh.issuer_id).second && seen_issuers_.size() > 1) {
      // A signing CA never seen before: the CA rotated. SVIDs from older CAs
      // are renewed soon, spread out so the server is not hit at once.
      const std::string fresh_issuer = fresh.issuer_id;
      const absl::Time fresh_issuer_nb = fresh.issuer_not_before;
      int rescheduled = SpreadRenewalsLocked(now, [&](const SvidState& other) {
        return other.issuer_id != fresh_issuer && other.issuer_not_before < fresh_issuer_nb;
      });
      if (rescheduled > 0) {
        spdlog::info("the server's signing CA rotated; renewing {} SVIDs signed by the previous CA within {}",
                     rescheduled, absl::FormatDuration(options_.ca_rotation_window));
      }
      if (seen_issuers_.size() > 64) {
        std::set<std::string> in_use{fresh.issuer_id};
        for (const auto& [_, other] : entries_) {
          if (other.svid.has_value()) in_use.insert(other.svid->issuer_id);
        }
        seen_issuers_ = std::move(in_use);
      }
    }
  }
  Notify({selectors}, false, ChangeEvent{});
  return true;
}

void SvidCache::MarkFailed(const std::string& entry_id, uint64_t version, absl::Time retry_at) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(entry_id);
  if (it == entries_.end() || it->second.version != version) return;
  it->second.failures++;
  it->second.retry_at = retry_at;
}

void SvidCache::Maintain(absl::Time now) {
  std::set<attestors::Selectors> changed;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, e] : entries_) {
      if (e.svid.has_value() && e.svid->not_after <= now) {
        spdlog::warn("the X509-SVID of entry {} ({}) expired before it could be renewed; it is no longer served", id,
                     e.spiffe_id.ToString());
        e.svid.reset();
        changed.insert(e.selectors);
      }
    }
  }
  {
    absl::MutexLock lock(&jwt_mu_);
    for (auto it = jwt_cache_.begin(); it != jwt_cache_.end();) {
      if (it->second.svid.expires_at <= now) {
        it = jwt_cache_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (!changed.empty()) Notify(changed, false, ChangeEvent{});
}

void SvidCache::DropJwtsOf(const std::set<std::string>& entry_ids) {
  if (entry_ids.empty()) return;
  absl::MutexLock lock(&jwt_mu_);
  for (auto it = jwt_cache_.begin(); it != jwt_cache_.end();) {
    if (entry_ids.count(it->first.first) > 0) {
      it = jwt_cache_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::StatusOr<std::vector<JwtIdentity>> SvidCache::FetchJwtSvids(const attestors::Selectors& selectors,
                                                                  const std::string& spiffe_id,
                                                                  const std::vector<std::string>& audience) {
  if (audience.empty()) return absl::InvalidArgumentError("audience is required");
  for (const auto& a : audience) {
    if (a.empty()) return absl::InvalidArgumentError("audience must not contain an empty value");
  }
  struct Wanted {
    std::string entry_id;
    spiffe::SpiffeId id;
    std::string hint;
  };
  std::vector<Wanted> wanted;
  {
    const attestors::Selectors sorted = Normalize(selectors);
    absl::ReaderMutexLock lock(&mu_);
    for (const EntryState* e : MatchLocked(sorted)) {
      if (!spiffe_id.empty() && e->spiffe_id.ToString() != spiffe_id) continue;
      wanted.push_back({e->entry.id(), e->spiffe_id, e->entry.hint()});
    }
  }
  if (wanted.empty()) {
    return absl::PermissionDeniedError(spiffe_id.empty() ? "no identity issued"
                                                         : absl::StrCat("no identity issued for ", spiffe_id));
  }
  const std::string aud_key = AudienceKey(audience);
  std::vector<JwtIdentity> out;
  for (const Wanted& w : wanted) {
    const absl::Time now = options_.clock->Now();
    std::optional<MintedJwtSvid> svid;
    {
      absl::MutexLock lock(&jwt_mu_);
      auto it = jwt_cache_.find({w.entry_id, aud_key});
      if (it != jwt_cache_.end()) {
        const MintedJwtSvid& c = it->second.svid;
        if (now < c.issued_at + (c.expires_at - c.issued_at) / 2 && c.spiffe_id == w.id) svid = c;
      }
    }
    if (!svid.has_value()) {
      absl::StatusOr<MintedJwtSvid> minted = absl::UnavailableError("the agent is not attested to the server");
      ServerApi* api;
      {
        absl::MutexLock lock(&api_mu_);
        api = api_;
      }
      if (api != nullptr) minted = api->NewJwtSvid(w.entry_id, audience);
      if (!minted.ok()) {
        if (absl::IsInvalidArgument(minted.status())) return minted.status();
        return absl::UnavailableError(absl::StrCat("cannot mint a JWT-SVID for ", w.id.ToString(), ": ",
                                                   minted.status().message()));
      }
      if (minted->spiffe_id != w.id) {
        return absl::UnavailableError(absl::StrCat("the server minted a JWT-SVID for ", minted->spiffe_id.ToString(),
                                                   ", expected ", w.id.ToString()));
      }
      svid = *minted;
      bool still_present;
      {
        absl::ReaderMutexLock lock(&mu_);
        auto it = entries_.find(w.entry_id);
        still_present = it != entries_.end() && it->second.spiffe_id == w.id;
      }
      if (still_present) {
        absl::MutexLock lock(&jwt_mu_);
        jwt_cache_.insert_or_assign({w.entry_id, aud_key}, JwtCached{*svid});
      }
    }
    out.push_back(JwtIdentity{svid->spiffe_id, svid->token, w.hint, svid->expires_at});
  }
  return out;
}

size_t SvidCache::entry_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return entries_.size();
}

size_t SvidCache::svid_count() const {
  absl::ReaderMutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [_, e] : entries_) n += e.svid.has_value() ? 1 : 0;
  return n;
}

std::optional<CachedSvidInfo> SvidCache::GetSvid(const std::string& entry_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = entries_.find(entry_id);
  if (it == entries_.end() || !it->second.svid.has_value()) return std::nullopt;
  const SvidState& s = *it->second.svid;
  return CachedSvidInfo{it->second.spiffe_id, s.chain, s.renew_at, s.not_after};
}

}  // namespace sigil::agent
