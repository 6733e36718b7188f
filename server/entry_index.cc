#include "server/entry_index.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "apitypes/convert.h"
#include "common/status_macros.h"
#include "server/store/store.h"
#include "sigil/server/storage.pb.h"
#include "spdlog/spdlog.h"

namespace sigil::server {
namespace {

using spire::api::types::Entry;

using store_keys::kAgentPrefix;
using store_keys::kBundlePrefix;
using store_keys::kCaJournalKey;
using store_keys::kEntryPrefix;
constexpr int64_t kPageSize = 1000;

std::vector<std::string> SortedSelectors(
    const google::protobuf::RepeatedPtrField<spire::api::types::Selector>& selectors) {
  std::vector<std::string> out;
  out.reserve(selectors.size());
  for (const auto& s : selectors) out.push_back(absl::StrCat(s.type(), ":", s.value()));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

class EntryIndex::SubscriptionImpl final : public EntryIndex::Subscription {
 public:
  SubscriptionImpl(EntryIndex* index, uint64_t id) : index_(index), id_(id) {}
  ~SubscriptionImpl() override {
    absl::MutexLock lock(&index_->subs_mu_);
    index_->subscribers_.erase(id_);
  }

 private:
  EntryIndex* const index_;
  const uint64_t id_;
};

EntryIndex::EntryIndex(datastore::KvStore* kv, spiffe::TrustDomain td)
    : kv_(kv), td_(std::move(td)), server_id_(absl::StrCat(td_.IdString(), "/spire/server")) {}

EntryIndex::~EntryIndex() {
  std::unique_ptr<datastore::WatchHandle> watch;
  {
    absl::MutexLock lock(&watch_mu_);
    watch = std::move(watch_);
  }
  watch.reset();
}

absl::StatusOr<std::unique_ptr<EntryIndex>> EntryIndex::Create(datastore::KvStore* kv,
                                                               const spiffe::TrustDomain& td) {
  std::unique_ptr<EntryIndex> index(new EntryIndex(kv, td));
  SIGIL_RETURN_IF_ERROR(index->Load());
  int64_t from;
  {
    absl::MutexLock lock(&index->mu_);
    from = index->revision_ + 1;
  }
  SIGIL_RETURN_IF_ERROR(index->StartWatch(from));
  return index;
}

absl::Status EntryIndex::Load() {
  absl::flat_hash_map<std::string, EntryPtr> entries;
  absl::flat_hash_map<std::string, std::vector<std::string>> agents;
  absl::flat_hash_map<std::string, BundlePtr> bundles;
  int64_t first_revision = -1;
  for (absl::string_view prefix : {kEntryPrefix, kAgentPrefix, kBundlePrefix}) {
    std::string after;
    while (true) {
      SIGIL_ASSIGN_OR_RETURN(datastore::RangeResult page, kv_->Range(prefix, after, kPageSize));
      if (first_revision < 0) first_revision = page.revision;
      for (const auto& kv : page.kvs) {
        if (prefix == kEntryPrefix) {
          auto entry = std::make_shared<Entry>();
          if (!entry->ParseFromString(kv.value)) {
            spdlog::error("entry index: skipping unparsable entry record {}", kv.key);
            continue;
          }
          entries[entry->id()] = std::move(entry);
        } else if (prefix == kBundlePrefix) {
          auto bundle = std::make_shared<spire::api::types::Bundle>();
          if (!bundle->ParseFromString(kv.value)) {
            spdlog::error("entry index: skipping unparsable bundle record {}", kv.key);
            continue;
          }
          bundles[kv.key.substr(kBundlePrefix.size())] = std::move(bundle);
        } else {
          AgentRecord record;
          if (!record.ParseFromString(kv.value)) {
            spdlog::error("entry index: skipping unparsable agent record {}", kv.key);
            continue;
          }
          agents[kv.key.substr(kAgentPrefix.size())] = SortedSelectors(record.agent().selectors());
        }
      }
      if (!page.more || page.kvs.empty()) break;
      after = page.kvs.back().key;
    }
  }
  absl::MutexLock lock(&mu_);
  entries_.clear();
  children_.clear();
  by_spiffe_id_.clear();
  alias_selectors_.clear();
  for (auto& [_, entry] : entries) AddEntry(std::move(entry));
  agent_selectors_ = std::move(agents);
  bundles_ = std::move(bundles);
  revision_ = first_revision;
  return absl::OkStatus();
}

absl::Status EntryIndex::StartWatch(int64_t from_revision) {
  auto watch = kv_->Watch("", from_revision, [this](absl::StatusOr<datastore::WatchResponse> r) {
    OnWatch(std::move(r));
  });
  if (!watch.ok()) return watch.status();
  std::unique_ptr<datastore::WatchHandle> old;
  {
    absl::MutexLock lock(&watch_mu_);
    old = std::move(watch_);
    watch_ = std::move(*watch);
  }
  return absl::OkStatus();
}

void EntryIndex::ApplyPutEntry(const std::string& value) {
  auto entry = std::make_shared<Entry>();
  if (!entry->ParseFromString(value)) {
    spdlog::error("entry index: ignoring unparsable entry record");
    return;
  }
  RemoveEntry(entry->id());
  AddEntry(std::move(entry));
}

void EntryIndex::AddEntry(EntryPtr entry) {
  const std::string parent = apitypes::SpiffeIdString(entry->parent_id());
  if (parent == server_id_) alias_selectors_[entry->id()] = SortedSelectors(entry->selectors());
  children_[parent].insert(entry->id());
  by_spiffe_id_[apitypes::SpiffeIdString(entry->spiffe_id())].insert(entry->id());
  entries_[entry->id()] = std::move(entry);
}

void EntryIndex::RemoveEntry(const std::string& entry_id) {
  auto it = entries_.find(entry_id);
  if (it == entries_.end()) return;
  auto drop = [&](absl::flat_hash_map<std::string, std::set<std::string>>& map, const std::string& key) {
    auto m = map.find(key);
    if (m == map.end()) return;
    m->second.erase(entry_id);
    if (m->second.empty()) map.erase(m);
  };
  drop(children_, apitypes::SpiffeIdString(it->second->parent_id()));
  drop(by_spiffe_id_, apitypes::SpiffeIdString(it->second->spiffe_id()));
  alias_selectors_.erase(entry_id);
  entries_.erase(it);
}

void EntryIndex::OnWatch(absl::StatusOr<datastore::WatchResponse> response) {
  if (!response.ok()) {
    if (response.status().code() == absl::StatusCode::kUnavailable) return;  // store closing
    spdlog::warn("entry index: change feed lost ({}); re-listing", response.status().ToString());
    absl::Status s = Load();
    int64_t from;
    {
      absl::MutexLock lock(&mu_);
      from = revision_ + 1;
    }
    if (s.ok()) s = StartWatch(from);
    if (!s.ok()) spdlog::error("entry index: cannot resume: {}", s.ToString());
    Notify(from - 1);
    return;
  }
  bool relevant = false;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& ev : response->events) {
      if (absl::StartsWith(ev.key, kEntryPrefix)) {
        relevant = true;
        if (ev.type == datastore::Event::Type::kPut) {
          ApplyPutEntry(ev.value);
        } else {
          RemoveEntry(ev.key.substr(kEntryPrefix.size()));
        }
      } else if (absl::StartsWith(ev.key, kAgentPrefix)) {
        relevant = true;
        std::string agent_id = ev.key.substr(kAgentPrefix.size());
        if (ev.type == datastore::Event::Type::kPut) {
          AgentRecord record;
          if (record.ParseFromString(ev.value)) {
            agent_selectors_[agent_id] = SortedSelectors(record.agent().selectors());
          }
        } else {
          agent_selectors_.erase(agent_id);
        }
      } else if (ev.key == kCaJournalKey) {
        // A rotation: sync streams re-check which authority is active.
        relevant = true;
      } else if (absl::StartsWith(ev.key, kBundlePrefix)) {
        relevant = true;
        std::string td = ev.key.substr(kBundlePrefix.size());
        auto bundle = std::make_shared<spire::api::types::Bundle>();
        if (ev.type == datastore::Event::Type::kPut && bundle->ParseFromString(ev.value)) {
          bundles_[td] = std::move(bundle);
        } else {
          bundles_.erase(td);
        }
      }
    }
    if (response->revision > revision_) revision_ = response->revision;
  }
  if (relevant) Notify(response->revision);
}

void EntryIndex::Notify(int64_t revision) {
  absl::MutexLock lock(&subs_mu_);
  for (auto& [_, cb] : subscribers_) cb(revision);
}

std::unique_ptr<EntryIndex::Subscription> EntryIndex::Subscribe(std::function<void(int64_t)> callback) {
  absl::MutexLock lock(&subs_mu_);
  uint64_t id = next_sub_id_++;
  subscribers_[id] = std::move(callback);
  return std::make_unique<SubscriptionImpl>(this, id);
}

std::vector<EntryPtr> EntryIndex::AuthorizedEntries(const spiffe::SpiffeId& agent_id) const {
  absl::ReaderMutexLock lock(&mu_);
  std::set<std::string> visited_ids;
  std::deque<std::string> frontier;
  std::map<std::string, EntryPtr> result;
  auto visit = [&](const std::string& id) {
    if (visited_ids.insert(id).second) frontier.push_back(id);
  };
  std::string agent = agent_id.ToString();
  visit(agent);
  // Node aliases the agent's node selectors satisfy.
  auto aliases = children_.find(server_id_);
  auto agent_sel = agent_selectors_.find(agent);
  if (aliases != children_.end() && agent_sel != agent_selectors_.end()) {
    const std::vector<std::string>& have = agent_sel->second;
    for (const std::string& entry_id : aliases->second) {
      const EntryPtr& alias = entries_.at(entry_id);
      const std::vector<std::string>& need = alias_selectors_.at(entry_id);
      if (need.empty()) continue;
      if (std::includes(have.begin(), have.end(), need.begin(), need.end())) {
        result[alias->id()] = alias;
        visit(apitypes::SpiffeIdString(alias->spiffe_id()));
      }
    }
  }
  while (!frontier.empty()) {
    std::string parent = std::move(frontier.front());
    frontier.pop_front();
    auto kids = children_.find(parent);
    if (kids == children_.end()) continue;
    for (const std::string& entry_id : kids->second) {
      const EntryPtr& e = entries_.at(entry_id);
      result[e->id()] = e;
      visit(apitypes::SpiffeIdString(e->spiffe_id()));
    }
  }
  std::vector<EntryPtr> out;
  out.reserve(result.size());
  for (auto& [_, e] : result) out.push_back(std::move(e));
  return out;
}

std::vector<EntryPtr> EntryIndex::EntriesBySpiffeId(const std::string& id) const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<EntryPtr> out;
  auto it = by_spiffe_id_.find(id);
  if (it == by_spiffe_id_.end()) return out;
  for (const auto& entry_id : it->second) out.push_back(entries_.at(entry_id));
  return out;
}

EntryPtr EntryIndex::GetEntry(const std::string& entry_id) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = entries_.find(entry_id);
  return it == entries_.end() ? nullptr : it->second;
}

BundlePtr EntryIndex::GetBundle(const std::string& trust_domain) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = bundles_.find(trust_domain);
  return it == bundles_.end() ? nullptr : it->second;
}

int64_t EntryIndex::revision() const {
  absl::ReaderMutexLock lock(&mu_);
  return revision_;
}

bool EntryIndex::WaitForRevision(int64_t revision, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, revision]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return revision_ >= revision; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

size_t EntryIndex::entry_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace sigil::server
