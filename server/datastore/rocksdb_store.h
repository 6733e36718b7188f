#pragma once

// The embedded datastore engine: RocksDB in the server's data directory.
//
// Durability: every Commit is one rocksdb::WriteBatch written with
// WriteOptions::sync = true, so the WAL is on stable storage before Commit
// returns OK: an acknowledged transaction survives kill -9 and power loss,
// and a transaction that was not acknowledged is either wholly present or
// wholly absent after restart (the batch is atomic).
//
// On-disk layout (one column family; format "1" recorded under m/format):
//   m/format          "1"
//   m/revision        the current revision, 8 bytes big-endian
//   m/compact         the compaction point, 8 bytes big-endian
//   k/<key>           create_revision (8 BE) | mod_revision (8 BE) | value
//   l/<revision 8 BE> the revision's events (the change log):
//                     varint count, then per event: type byte (1 put,
//                     2 delete), varint key length, key, varint value
//                     length, value, create_revision (8 BE)
// The change log keeps the latest `retained_revisions` revisions; each commit
// deletes the ones that fall out of the window in the same batch, so Watch can
// replay any retained revision, across restarts too.
//
// Concurrency: commits serialize on one mutex (so a transaction's compares and
// writes see no other commit in between, and revisions are assigned and
// published in order); reads run concurrently from RocksDB snapshots and do
// not wait for commits. Throughput is therefore one fsync per commit.
//
// Watch delivery: after the batch is durable, the commit hands its events to
// an in-memory per-watch queue (bounded by `watch_queue_limit`) served by one
// dispatcher thread. Delivering synchronously inside Commit would let one slow
// consumer (say, an agent stream on a congested link) stall every writer of the
// server; with the queue a slow watch only delays itself, and once its queue
// is full it catches up by reading the persisted change log, which already
// holds its backlog, so memory stays bounded too.
//
// One process at a time: Open takes an exclusive flock on
// <data_dir>/sigil-server.lock; a second Open (another process or the same
// one) fails with FAILED_PRECONDITION until the first store is closed or its
// process exits (a crash releases the lock).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/datastore/kv_store.h"
#include "server/datastore/watch_hub.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace sigil::server::datastore {

struct RocksDbStoreOptions {
  // How many of the latest revisions the change log keeps; watches from an
  // older revision get OUT_OF_RANGE. Must be >= 1. Default: 10000.
  int64_t retained_revisions = 10000;
  // Revisions buffered in memory per watch before it falls back to reading
  // the change log. Must be >= 1. Default: 1024.
  int64_t watch_queue_limit = 1024;
  // RocksDB block cache size in bytes. Must be >= 0. Default: 32 MiB.
  int64_t block_cache_bytes = 32 << 20;
};

class RocksDbStore final : public KvStore, private internal::ChangeSource {
 public:
  // Opens (creating if needed) the store in directory `path`, which is
  // created with mode 0700 when missing (existing directories keep theirs).
  // INVALID_ARGUMENT: empty path or an option out of range.
  // FAILED_PRECONDITION: path is not a directory; the directory is in use by
  //   another sigil-server (lock held); it holds a RocksDB database that is not
  //   a Sigil datastore, or one of an unknown format.
  // PERMISSION_DENIED: the directory or lock file cannot be created/opened.
  // DATA_LOSS: the database or its metadata is corrupt.
  // UNAVAILABLE / INTERNAL: other I/O errors, with RocksDB's message.
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(const std::string& path,
                                                             const RocksDbStoreOptions& options = {});

  // Closes the store (see KvStore::Close()).
  ~RocksDbStore() override;
  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  // KvStore
  absl::StatusOr<KeyValue> Get(absl::string_view key) override;
  absl::StatusOr<RangeResult> Range(absl::string_view prefix, absl::string_view start_after,
                                    int64_t limit) override;
  // After a failed write (I/O error) the store refuses further commits with
  // UNAVAILABLE: the batch may or may not be in the WAL, so the in-memory
  // revision can no longer be trusted. Restarting the server recovers.
  absl::StatusOr<int64_t> Commit(const Txn& txn) override;
  absl::StatusOr<int64_t> CurrentRevision() override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(absl::string_view prefix, int64_t from_revision,
                                                     WatchCallback callback) override;
  absl::Status Close() override;

  // The compaction point: revisions at or below it are no longer in the
  // change log. FAILED_PRECONDITION: store closed.
  absl::StatusOr<int64_t> CompactRevision();

 private:
  RocksDbStore(std::string path, const RocksDbStoreOptions& options, int lock_fd,
               std::unique_ptr<rocksdb::DB> db, int64_t revision, int64_t compact_revision);

  // internal::ChangeSource
  absl::Status ReadChanges(int64_t from, int64_t to, size_t max_revisions,
                           std::vector<WatchResponse>* out) override;

  const std::string path_;
  const int64_t retained_revisions_;
  std::shared_ptr<internal::WatchHub> hub_;

  // Lock order: commit_mu_, then db_mu_ (then the hub's own mutex).
  absl::Mutex commit_mu_;
  int64_t revision_ ABSL_GUARDED_BY(commit_mu_);
  int64_t compact_revision_ ABSL_GUARDED_BY(commit_mu_);
  absl::Status write_failure_ ABSL_GUARDED_BY(commit_mu_);
  // Mirrors revision_ for CurrentRevision(), which must not wait for an fsync.
  std::atomic<int64_t> current_revision_;

  // Readers hold it shared; Close() holds it exclusively to release the DB.
  absl::Mutex db_mu_;
  std::unique_ptr<rocksdb::DB> db_ ABSL_GUARDED_BY(db_mu_);
  int lock_fd_ ABSL_GUARDED_BY(db_mu_);
};

}  // namespace sigil::server::datastore
