#pragma once

// An in-memory KvStore with the same semantics as the durable engines
// (revisions, compares, limits, retained history, watch delivery), for tests
// of the layers above the datastore. Nothing survives the object; Commit is
// "durable" as soon as it returns because there is nothing to lose.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/datastore/kv_store.h"
#include "server/datastore/watch_hub.h"

namespace sigil::server::datastore {

struct MemoryStoreOptions {
  // How many of the latest revisions the change feed keeps; watches from an
  // older revision get OUT_OF_RANGE. Must be >= 1. Default: 10000.
  int64_t retained_revisions = 10000;
  // Revisions buffered per watch before it falls back to reading history.
  // Must be >= 1. Default: 1024.
  int64_t watch_queue_limit = 1024;
};

class MemoryStore final : public KvStore, private internal::ChangeSource {
 public:
  // INVALID_ARGUMENT if an option is out of range (the message names it).
  static absl::StatusOr<std::unique_ptr<MemoryStore>> Create(const MemoryStoreOptions& options = {});

  ~MemoryStore() override;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // KvStore
  absl::StatusOr<KeyValue> Get(absl::string_view key) override;
  absl::StatusOr<RangeResult> Range(absl::string_view prefix, absl::string_view start_after,
                                    int64_t limit) override;
  absl::StatusOr<int64_t> Commit(const Txn& txn) override;
  absl::StatusOr<int64_t> CurrentRevision() override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(absl::string_view prefix, int64_t from_revision,
                                                     WatchCallback callback) override;
  absl::Status Close() override;

 private:
  struct Entry {
    std::string value;
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
  };

  explicit MemoryStore(const MemoryStoreOptions& options);

  // internal::ChangeSource
  absl::Status ReadChanges(int64_t from, int64_t to, size_t max_revisions,
                           std::vector<WatchResponse>* out) override;

  const int64_t retained_revisions_;
  std::shared_ptr<internal::WatchHub> hub_;

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Entry, std::less<>> data_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t compact_revision_ ABSL_GUARDED_BY(mu_) = 0;
  // Revisions compact_revision_ + 1 .. revision_, in order.
  std::deque<WatchResponse> history_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sigil::server::datastore
