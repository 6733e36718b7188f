#include "server/api/sync/service.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"

namespace sigil::server::api {
namespace {

namespace entryv1 = spire::api::server::entry::v1;
using sigil::agent::v1::WatchAuthorizedUpdate;

}  // namespace

grpc::Status EntryServiceWithAuthorized::GetAuthorizedEntries(grpc::ServerContext* ctx,
                                                              const entryv1::GetAuthorizedEntriesRequest* req,
                                                              entryv1::GetAuthorizedEntriesResponse* resp) {
  auto caller = Authenticate(authn_, *ctx, kAllowAgent, "GetAuthorizedEntries");
  if (!caller.ok()) return ToGrpc(caller.status());
  const spire::api::types::EntryMask* mask = req->has_output_mask() ? &req->output_mask() : nullptr;
  for (const EntryPtr& e : index_->AuthorizedEntries(*caller->id)) {
    *resp->add_entries() = ApplyEntryMask(*e, mask);
  }
  return grpc::Status::OK;
}

grpc::Status EntryServiceWithAuthorized::SyncAuthorizedEntries(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<entryv1::SyncAuthorizedEntriesResponse, entryv1::SyncAuthorizedEntriesRequest>* stream) {
  auto caller = Authenticate(authn_, *ctx, kAllowAgent, "SyncAuthorizedEntries");
  if (!caller.ok()) return ToGrpc(caller.status());
  entryv1::SyncAuthorizedEntriesRequest req;
  if (!stream->Read(&req)) return grpc::Status::OK;
  if (req.ids_size() > 0) {
    return ToGrpc(absl::InvalidArgumentError("specifying IDs on initial request is not supported"));
  }
  // The agent compares revision numbers to decide what to fetch, so they
  // are always sent whatever the mask says.
  std::optional<spire::api::types::EntryMask> mask;
  if (req.has_output_mask()) {
    mask = req.output_mask();
    mask->set_revision_number(true);
  }
  std::vector<EntryPtr> entries = index_->AuthorizedEntries(*caller->id);
  auto masked = [&](const EntryPtr& e) { return ApplyEntryMask(*e, mask ? &*mask : nullptr); };
  if (entries.size() <= static_cast<size_t>(kSyncEntryPageSize)) {
    entryv1::SyncAuthorizedEntriesResponse resp;
    for (const EntryPtr& e : entries) *resp.add_entries() = masked(e);
    stream->Write(resp);
    return grpc::Status::OK;
  }
  for (size_t i = 0; i < entries.size(); i += kSyncEntryPageSize) {
    entryv1::SyncAuthorizedEntriesResponse resp;
    size_t end = std::min(entries.size(), i + kSyncEntryPageSize);
    for (size_t j = i; j < end; ++j) {
      auto* rev = resp.add_entry_revisions();
      rev->set_id(entries[j]->id());
      rev->set_revision_number(entries[j]->revision_number());
      rev->set_created_at(entries[j]->created_at());
    }
    resp.set_more(end < entries.size());
    if (!stream->Write(resp)) return grpc::Status::OK;
  }
  // `entries` is sorted by id (AuthorizedEntries' contract).
  auto find = [&](const std::string& id) -> const EntryPtr* {
    auto it = std::lower_bound(entries.begin(), entries.end(), id,
                               [](const EntryPtr& e, const std::string& v) { return e->id() < v; });
    return (it != entries.end() && (*it)->id() == id) ? &*it : nullptr;
  };
  while (stream->Read(&req)) {
    entryv1::SyncAuthorizedEntriesResponse resp;
    for (const std::string& id : req.ids()) {
      const EntryPtr* e = find(id);
      if (e == nullptr) continue;
      if (resp.entries_size() == kSyncEntryPageSize) {
        resp.set_more(true);
        if (!stream->Write(resp)) return grpc::Status::OK;
        resp.Clear();
      }
      *resp.add_entries() = masked(*e);
    }
    resp.set_more(false);
    if (!stream->Write(resp)) return grpc::Status::OK;
  }
  return grpc::Status::OK;
}

namespace {

// What one WatchAuthorized stream has sent so far.
struct SentState {
  bool started = false;
  std::map<std::string, EntryPtr> entries;
  BundlePtr bundle;
  std::map<std::string, BundlePtr> federated;
  std::string active_authority;
};

// Builds the next update from the index; false when nothing changed.
bool NextUpdate(EntryIndex* index, const spiffe::SpiffeId& agent, const std::string& own_td,
                const std::string& active_authority, SentState* sent, WatchAuthorizedUpdate* update) {
  update->Clear();
  update->set_revision(index->revision());
  const bool full = !sent->started;
  update->set_full(full);
  std::map<std::string, EntryPtr> now;
  std::set<std::string> needed_federated;
  for (EntryPtr& e : index->AuthorizedEntries(agent)) {
    for (const auto& td : e->federates_with()) needed_federated.insert(td);
    now.emplace(e->id(), std::move(e));
  }
  bool changed = full;
  for (const auto& [id, e] : now) {
    auto it = sent->entries.find(id);
    if (full || it == sent->entries.end() || it->second != e) {
      *update->add_upserted() = *e;
      changed = true;
    }
  }
  if (!full) {
    for (const auto& [id, _] : sent->entries) {
      if (now.find(id) == now.end()) {
        update->add_removed_entry_ids(id);
        changed = true;
      }
    }
  }
  sent->entries = std::move(now);

  BundlePtr bundle = index->GetBundle(own_td);
  if (bundle != nullptr && (full || bundle != sent->bundle)) {
    *update->mutable_bundle() = *bundle;
    changed = true;
  }
  sent->bundle = bundle;

  std::map<std::string, BundlePtr> federated;
  for (const std::string& td : needed_federated) {
    BundlePtr b = index->GetBundle(td);
    if (b == nullptr) continue;
    auto it = sent->federated.find(td);
    if (full || it == sent->federated.end() || it->second != b) {
      *update->add_federated_bundles() = *b;
      changed = true;
    }
    federated.emplace(td, std::move(b));
  }
  for (const auto& [td, _] : sent->federated) {
    if (federated.find(td) == federated.end()) {
      update->add_removed_federated_bundles(td);
      changed = true;
    }
  }
  sent->federated = std::move(federated);
  if (!active_authority.empty() && (full || active_authority != sent->active_authority)) {
    update->set_active_x509_authority_id(active_authority);
    sent->active_authority = active_authority;
    changed = true;
  }
  sent->started = true;
  return changed;
}

}  // namespace

grpc::Status AgentSyncService::WatchAuthorized(grpc::ServerContext* ctx, const sigil::agent::v1::WatchAuthorizedRequest*,
                                               grpc::ServerWriter<WatchAuthorizedUpdate>* writer) {
  auto caller = Authenticate(authn_, *ctx, kAllowAgent, "WatchAuthorized");
  if (!caller.ok()) return ToGrpc(caller.status());
  const spiffe::SpiffeId agent = *caller->id;

  absl::Mutex mu;
  bool dirty = true;
  auto subscription = index_->Subscribe([&](int64_t) {
    absl::MutexLock lock(&mu);
    dirty = true;
  });
  SentState sent;
  WatchAuthorizedUpdate update;
  spdlog::info("agent {} opened its sync stream", agent.ToString());
  while (!ctx->IsCancelled()) {
    {
      absl::MutexLock lock(&mu);
      mu.AwaitWithTimeout(absl::Condition(&dirty), recheck_interval_);
      dirty = false;
    }
    if (ctx->IsCancelled()) break;
    // An evicted or banned agent loses its stream at once.
    auto stored = store_->GetAgent(agent.ToString());
    if (!stored.ok() || stored->record.agent().banned()) {
      std::string why = stored.ok() ? "banned" : "no longer attested";
      spdlog::info("closing sync stream of agent {}: {}", agent.ToString(), why);
      return ToGrpc(absl::PermissionDeniedError(absl::StrCat("agent ", agent.ToString(), " is ", why)));
    }
    ca::AuthorityStates states = ca_->GetX509AuthorityStates();
    const std::string active = states.active.has_value() ? states.active->authority_id : "";
    if (NextUpdate(index_, agent, td_.name(), active, &sent, &update)) {
      if (!writer->Write(update)) break;
    }
  }
  spdlog::info("agent {} closed its sync stream", agent.ToString());
  return grpc::Status::OK;
}

}  // namespace sigil::server::api
