#include "server/datastore/watch_hub.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sigil::server::datastore::internal {
namespace {

// Revisions a watch receives per turn before the dispatcher serves the next.
constexpr size_t kBurst = 64;
// Revisions read from history per catch-up step (bounds memory per step).
constexpr size_t kCatchUpChunk = 256;

// The events of `events` whose key starts with `prefix`.
std::vector<Event> Filter(const std::vector<Event>& events, absl::string_view prefix) {
  std::vector<Event> out;
  for (const Event& e : events) {
    if (absl::StartsWith(e.key, prefix)) out.push_back(e);
  }
  return out;
}

}  // namespace

struct WatchHub::Watcher {
  Watcher(std::string p, WatchCallback cb) : prefix(std::move(p)), callback(std::move(cb)) {}

  const std::string prefix;
  const WatchCallback callback;
  // Guarded by the hub's mu_:
  // Every revision below next_revision has been handed to the callback (or
  // had no matching change); matching revisions in [next_revision, head] are
  // in `queue` when synced, and still to be read from history otherwise.
  int64_t next_revision = 0;
  bool synced = false;
  bool cancelled = false;
  bool in_ready = false;
  std::deque<WatchResponse> queue;
};

class WatchHub::Handle final : public WatchHandle {
 public:
  Handle(std::shared_ptr<WatchHub> hub, std::shared_ptr<Watcher> watcher)
      : hub_(std::move(hub)), watcher_(std::move(watcher)) {}
  ~Handle() override { hub_->Cancel(watcher_); }

 private:
  const std::shared_ptr<WatchHub> hub_;
  const std::shared_ptr<Watcher> watcher_;
};

WatchHub::WatchHub(ChangeSource* source, int64_t head, size_t queue_limit)
    : source_(source), queue_limit_(std::max<size_t>(queue_limit, 1)), head_(head) {}

std::shared_ptr<WatchHub> WatchHub::Start(ChangeSource* source, int64_t head, size_t queue_limit) {
  std::shared_ptr<WatchHub> hub(new WatchHub(source, head, queue_limit));
  absl::MutexLock lock(&hub->stop_mu_);
  // The thread only touches the hub, which the owner keeps alive until Stop().
  hub->thread_ = std::thread([raw = hub.get()] { raw->Run(); });
  hub->dispatcher_id_ = hub->thread_.get_id();
  return hub;
}

WatchHub::~WatchHub() { Stop("datastore closed").IgnoreError(); }

bool WatchHub::OnDispatcherThread() const { return std::this_thread::get_id() == dispatcher_id_; }

void WatchHub::Publish(int64_t revision, const std::vector<Event>& events) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  head_ = revision;
  for (const std::shared_ptr<Watcher>& w : watchers_) {
    if (!w->synced || revision < w->next_revision) continue;
    std::vector<Event> matching = Filter(events, w->prefix);
    if (matching.empty()) continue;
    if (w->queue.size() >= queue_limit_) {
      // Too far behind to buffer: fall back to reading history.
      w->queue.clear();
      w->synced = false;
    } else {
      w->queue.push_back(WatchResponse{revision, std::move(matching)});
    }
    MarkReady(w);
  }
}

absl::StatusOr<std::unique_ptr<WatchHandle>> WatchHub::Add(absl::string_view prefix,
                                                            int64_t from_revision,
                                                            WatchCallback callback) {
  auto w = std::make_shared<Watcher>(std::string(prefix), std::move(callback));
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::FailedPreconditionError("datastore: closed");
  if (from_revision == 0 || from_revision > head_) {
    w->next_revision = from_revision == 0 ? head_ + 1 : from_revision;
    w->synced = true;
  } else {
    w->next_revision = from_revision;
    w->synced = false;
    MarkReady(w);
  }
  watchers_.push_back(w);
  return std::unique_ptr<WatchHandle>(new Handle(shared_from_this(), std::move(w)));
}

void WatchHub::Cancel(const std::shared_ptr<Watcher>& w) {
  absl::MutexLock lock(&mu_);
  w->cancelled = true;
  w->queue.clear();
  Unregister(w);
  if (OnDispatcherThread()) return;  // inside a callback: waiting would deadlock
  const Watcher* raw = w.get();
  auto not_running = [this, raw]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_callback_ != raw; };
  mu_.Await(absl::Condition(&not_running));
}

void WatchHub::Unregister(const std::shared_ptr<Watcher>& w) {
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), w), watchers_.end());
}

void WatchHub::MarkReady(const std::shared_ptr<Watcher>& w) {
  if (w->in_ready || w->cancelled) return;
  w->in_ready = true;
  ready_.push_back(w);
}

absl::Status WatchHub::Stop(absl::string_view reason) {
  if (OnDispatcherThread()) {
    return absl::FailedPreconditionError("datastore: Close() called from a watch callback");
  }
  absl::MutexLock stop_lock(&stop_mu_);
  if (stopped_) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    stop_reason_ = std::string(reason);
  }
  thread_.join();
  stopped_ = true;
  return absl::OkStatus();
}

void WatchHub::Deliver(const std::shared_ptr<Watcher>& w, absl::StatusOr<WatchResponse> response) {
  in_callback_ = w.get();
  mu_.Unlock();
  w->callback(std::move(response));
  mu_.Lock();
  in_callback_ = nullptr;
}

void WatchHub::Terminate(const std::shared_ptr<Watcher>& w, absl::Status status) {
  w->cancelled = true;
  w->queue.clear();
  Unregister(w);
  Deliver(w, std::move(status));
}

void WatchHub::DrainQueue(const std::shared_ptr<Watcher>& w) {
  for (size_t i = 0; i < kBurst && w->synced && !w->cancelled && !w->queue.empty(); ++i) {
    WatchResponse response = std::move(w->queue.front());
    w->queue.pop_front();
    w->next_revision = response.revision + 1;
    Deliver(w, std::move(response));
  }
  if (!w->cancelled && (!w->synced || !w->queue.empty())) MarkReady(w);
}

void WatchHub::CatchUp(const std::shared_ptr<Watcher>& w) {
  const int64_t from = w->next_revision;
  const int64_t to = head_;
  if (from > to) {
    w->synced = true;
    return;
  }
  std::vector<WatchResponse> history;
  mu_.Unlock();
  absl::Status status = source_->ReadChanges(from, to, kCatchUpChunk, &history);
  mu_.Lock();
  if (w->cancelled || stopping_) return;
  if (!status.ok()) {
    Terminate(w, std::move(status));
    return;
  }
  if (history.empty() || history.front().revision != from) {
    Terminate(w, absl::DataLossError(absl::StrCat("datastore: history read from revision ", from,
                                                  " did not start at that revision")));
    return;
  }
  for (WatchResponse& batch : history) {
    if (w->cancelled || stopping_) return;
    w->next_revision = batch.revision + 1;
    std::vector<Event> matching = Filter(batch.events, w->prefix);
    if (!matching.empty()) Deliver(w, WatchResponse{batch.revision, std::move(matching)});
  }
  if (w->cancelled) return;
  // Publish() skips watches that are catching up, so reaching the head here
  // (under mu_) means nothing was missed in between.
  if (w->next_revision > head_) {
    w->synced = true;
  } else {
    MarkReady(w);
  }
}

void WatchHub::Run() {
  absl::MutexLock lock(&mu_);
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !ready_.empty(); };
  while (true) {
    mu_.Await(absl::Condition(&has_work));
    if (stopping_) break;
    std::shared_ptr<Watcher> w = std::move(ready_.front());
    ready_.pop_front();
    w->in_ready = false;
    if (w->cancelled) continue;
    if (w->synced) {
      DrainQueue(w);
    } else {
      CatchUp(w);
    }
  }
  ready_.clear();
  std::vector<std::shared_ptr<Watcher>> live = watchers_;
  for (const std::shared_ptr<Watcher>& w : live) {
    if (!w->cancelled) Terminate(w, absl::UnavailableError(stop_reason_));
  }
  watchers_.clear();
}

}  // namespace sigil::server::datastore::internal
