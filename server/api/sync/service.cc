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

// One agent's stream. Owned by the service's stream map from creation until
// gRPC calls OnDone; workers hold extra references while they process it.
class AgentSyncService::Stream final : public grpc::ServerWriteReactor<WatchAuthorizedUpdate> {
 public:
  Stream(AgentSyncService* service, uint64_t id, spiffe::SpiffeId agent)
      : service_(service), id_(id), agent_(std::move(agent)) {}

  const spiffe::SpiffeId& agent() const { return agent_; }

  // Worker side: one worker at a time (queued_ guarantees it).
  SentState& sent() { return sent_; }

  // Claims the stream for a worker; false when it is already queued.
  bool MarkQueued() {
    absl::MutexLock lock(&mu_);
    dirty_ = true;
    if (queued_ || finished_) return false;
    queued_ = true;
    return true;
  }
  // Starts processing: false when the stream should be left alone (a write
  // is in flight, another worker has it, or it finished); whoever holds it
  // then reschedules it if it is still dirty. Clears the dirty flag.
  bool BeginProcessing() {
    absl::MutexLock lock(&mu_);
    queued_ = false;
    if (finished_ || writing_ || processing_) return false;
    processing_ = true;
    dirty_ = false;
    return true;
  }
  // Ends processing; true when a change arrived meanwhile and no write is in
  // flight to pick it up, i.e. the stream must be scheduled again.
  bool EndProcessing() {
    absl::MutexLock lock(&mu_);
    processing_ = false;
    return dirty_ && !writing_ && !finished_;
  }
  // Sends `update` (copied into the stream) unless the stream finished.
  void Send(const WatchAuthorizedUpdate& update) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    update_ = update;
    writing_ = true;
    StartWrite(&update_);
  }
  // Finishes with `status` once no write is in flight. Idempotent.
  void End(const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    if (writing_) {
      pending_status_ = status;
      return;
    }
    Finish(status);
  }

  // grpc::ServerWriteReactor
  void OnWriteDone(bool ok) override {
    bool again = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (finished_) {
        Finish(pending_status_);
        return;
      }
      if (!ok) {
        finished_ = true;
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
        return;
      }
      again = dirty_ && !processing_;
    }
    if (again) service_->Schedule(Self());
  }
  void OnCancel() override { End(grpc::Status::CANCELLED); }
  void OnDone() override {
    spdlog::info("agent {} closed its sync stream", agent_.ToString());
    absl::MutexLock lock(&service_->mu_);
    service_->streams_.erase(id_);  // may delete this once workers let go
  }

 private:
  std::shared_ptr<Stream> Self() {
    absl::MutexLock lock(&service_->mu_);
    auto it = service_->streams_.find(id_);
    return it == service_->streams_.end() ? nullptr : it->second;
  }

  AgentSyncService* const service_;
  const uint64_t id_;
  const spiffe::SpiffeId agent_;
  SentState sent_;

  absl::Mutex mu_;
  WatchAuthorizedUpdate update_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = true;
  bool queued_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool processing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status pending_status_ ABSL_GUARDED_BY(mu_);
};

AgentSyncService::AgentSyncService(EntryIndex* index, Store* store, Authenticator* authn, const ca::CaManager* ca,
                                   spiffe::TrustDomain td, absl::Duration recheck_interval, int workers)
    : index_(index), store_(store), authn_(authn), ca_(ca), td_(std::move(td)), recheck_interval_(recheck_interval) {
  subscription_ = index_->Subscribe([this](int64_t) { MarkAllDirty(); });
  for (int i = 0; i < std::max(1, workers); ++i) threads_.emplace_back([this] { Work(); });
  threads_.emplace_back([this] { Tick(); });
}

void AgentSyncService::EndAll() {
  std::vector<std::shared_ptr<Stream>> open;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [_, s] : streams_) open.push_back(s);
  }
  for (auto& s : open) s->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
}

AgentSyncService::~AgentSyncService() {
  subscription_.reset();
  EndAll();
  for (auto& t : threads_) t.join();
  // gRPC calls OnDone for the finished streams; wait so none outlives us.
  absl::MutexLock lock(&mu_);
  auto all_done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return streams_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&all_done), absl::Seconds(10));
}

grpc::ServerWriteReactor<WatchAuthorizedUpdate>* AgentSyncService::WatchAuthorized(
    grpc::CallbackServerContext* ctx, const sigil::agent::v1::WatchAuthorizedRequest*) {
  auto caller = Authenticate(authn_, *ctx, kAllowAgent, "WatchAuthorized");
  if (!caller.ok()) {
    // A reactor that only finishes: gRPC deletes nothing of ours.
    class Refusal final : public grpc::ServerWriteReactor<WatchAuthorizedUpdate> {
     public:
      explicit Refusal(grpc::Status s) { Finish(std::move(s)); }
      void OnDone() override { delete this; }
    };
    return new Refusal(ToGrpc(caller.status()));
  }
  std::shared_ptr<Stream> stream;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      class Refusal final : public grpc::ServerWriteReactor<WatchAuthorizedUpdate> {
       public:
        Refusal() { Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down")); }
        void OnDone() override { delete this; }
      };
      return new Refusal();
    }
    uint64_t id = next_stream_id_++;
    stream = std::make_shared<Stream>(this, id, *caller->id);
    streams_.emplace(id, stream);
  }
  spdlog::info("agent {} opened its sync stream", caller->id->ToString());
  Schedule(stream);
  return stream.get();
}

void AgentSyncService::Schedule(const std::shared_ptr<Stream>& stream) {
  if (stream == nullptr || !stream->MarkQueued()) return;
  absl::MutexLock lock(&mu_);
  queue_.push_back(stream);
}

void AgentSyncService::MarkAllDirty() {
  std::vector<std::shared_ptr<Stream>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [_, s] : streams_) all.push_back(s);
  }
  for (auto& s : all) Schedule(s);
}

void AgentSyncService::Work() {
  while (true) {
    std::shared_ptr<Stream> stream;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      stream = std::move(queue_.front());
      queue_.pop_front();
    }
    Process(stream);
  }
}

void AgentSyncService::Tick() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), recheck_interval_)) return;
    }
    MarkAllDirty();
  }
}

void AgentSyncService::Process(const std::shared_ptr<Stream>& stream) {
  if (!stream->BeginProcessing()) return;
  ProcessClaimed(stream);
  if (stream->EndProcessing()) Schedule(stream);
}

void AgentSyncService::ProcessClaimed(const std::shared_ptr<Stream>& stream) {
  const spiffe::SpiffeId& agent = stream->agent();
  // An evicted or banned agent loses its stream at once.
  auto stored = store_->GetAgent(agent.ToString());
  if (!stored.ok() || stored->record.agent().banned()) {
    if (!stored.ok() && !absl::IsNotFound(stored.status())) {
      // Retried on the next tick.
      spdlog::warn("sync stream of agent {}: cannot read its record: {}", agent.ToString(), stored.status().ToString());
      return;
    }
    std::string why = stored.ok() ? "banned" : "no longer attested";
    spdlog::info("closing sync stream of agent {}: {}", agent.ToString(), why);
    stream->End(ToGrpc(absl::PermissionDeniedError(absl::StrCat("agent ", agent.ToString(), " is ", why))));
    return;
  }
  ca::AuthorityStates states = ca_->GetX509AuthorityStates();
  const std::string active = states.active.has_value() ? states.active->authority_id : "";
  WatchAuthorizedUpdate update;
  if (NextUpdate(index_, agent, td_.name(), active, &stream->sent(), &update)) stream->Send(update);
}

}  // namespace sigil::server::api
