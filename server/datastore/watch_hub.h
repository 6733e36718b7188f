#pragma once

// Watch delivery shared by the datastore engines (internal to datastore/).
//
// Each watch is either "synced" (it has seen every published revision and
// new ones go to its in-memory queue) or "catching up" (it reads the engine's
// retained history from its next revision until it reaches the head, then
// becomes synced). A synced watch whose queue reaches `queue_limit` drops the
// queue and catches up from history instead, so Publish never blocks on a
// slow callback and memory stays bounded; the engine's history is the backlog.
// This is the synced/unsynced split of etcd's watchable store.
//
// One dispatcher thread per hub runs every callback, round-robin across
// watches (a bounded burst per turn), so callbacks of one watch never run
// concurrently and one busy watch does not starve the others.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/datastore/kv_store.h"

namespace sigil::server::datastore::internal {

// The engine's retained history, read by watches that are catching up.
class ChangeSource {
 public:
  virtual ~ChangeSource() = default;
  // Appends to `out` the committed transactions with revisions in
  // [from, to] (from <= to <= the last published revision), in order, at most
  // `max_revisions` of them, starting with `from` itself (every revision has
  // one entry: only transactions that change something take a revision).
  // OUT_OF_RANGE if `from` is at or below the compaction point; DATA_LOSS if a
  // retained revision is missing or unreadable; engine errors otherwise.
  // Called on the dispatcher thread, concurrently with commits.
  virtual absl::Status ReadChanges(int64_t from, int64_t to, size_t max_revisions,
                                   std::vector<WatchResponse>* out) = 0;
};

class WatchHub : public std::enable_shared_from_this<WatchHub> {
 public:
  // Starts the dispatcher. `head` is the engine's current revision; `source`
  // must stay valid until Stop() has returned. `queue_limit` >= 1.
  static std::shared_ptr<WatchHub> Start(ChangeSource* source, int64_t head, size_t queue_limit);

  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Announces that revision `revision` (== previous head + 1) is durable and
  // readable through the source, with its `events`. The engine calls this in
  // revision order, serialized. Never blocks on callbacks. No-op once stopping.
  void Publish(int64_t revision, const std::vector<Event>& events);

  // Registers a watch from `from_revision` (0: after the current head). The
  // engine has already rejected revisions at or below its compaction point.
  // FAILED_PRECONDITION if the hub is stopping.
  absl::StatusOr<std::unique_ptr<WatchHandle>> Add(absl::string_view prefix, int64_t from_revision,
                                                    WatchCallback callback);

  // Delivers UNAVAILABLE(`reason`) to each live watch, joins the dispatcher,
  // and drops undelivered changes. Idempotent. FAILED_PRECONDITION (and no
  // effect) when called from a callback.
  absl::Status Stop(absl::string_view reason);

  // True on the dispatcher thread (i.e. inside a watch callback).
  bool OnDispatcherThread() const;

 private:
  struct Watcher;
  class Handle;

  WatchHub(ChangeSource* source, int64_t head, size_t queue_limit);
  void Run();
  void Cancel(const std::shared_ptr<Watcher>& w);
  void MarkReady(const std::shared_ptr<Watcher>& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DrainQueue(const std::shared_ptr<Watcher>& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CatchUp(const std::shared_ptr<Watcher>& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the callback with `mu_` released.
  void Deliver(const std::shared_ptr<Watcher>& w, absl::StatusOr<WatchResponse> response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Unregisters `w` and delivers its last callback.
  void Terminate(const std::shared_ptr<Watcher>& w, absl::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unregister(const std::shared_ptr<Watcher>& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ChangeSource* const source_;
  const size_t queue_limit_;
  std::thread::id dispatcher_id_;

  absl::Mutex stop_mu_;  // serializes Stop(); held across the join
  std::thread thread_ ABSL_GUARDED_BY(stop_mu_);
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;

  mutable absl::Mutex mu_;
  int64_t head_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string stop_reason_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<Watcher>> ready_ ABSL_GUARDED_BY(mu_);
  // The watch whose callback is running, if any (for Cancel to wait on).
  const Watcher* in_callback_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace sigil::server::datastore::internal
