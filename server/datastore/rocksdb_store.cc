#include "server/datastore/rocksdb_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/iterator.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace sigil::server::datastore {
namespace {

constexpr char kFormatKey[] = "m/format";
constexpr char kRevisionKey[] = "m/revision";
constexpr char kCompactKey[] = "m/compact";
constexpr char kFormat[] = "1";
constexpr absl::string_view kKvPrefix = "k/";
constexpr absl::string_view kLogPrefix = "l/";
constexpr char kLockFile[] = "sigil-server.lock";

constexpr uint8_t kEventPut = 1;
constexpr uint8_t kEventDelete = 2;

// rocksdb::Status → absl::Status; the only place RocksDB's codes are read.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat("datastore(rocksdb): ", context, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsIncomplete()) {
    return absl::UnavailableError(msg);
  }
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

void AppendBigEndian64(std::string* out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((u >> shift) & 0xff));
}

// Reads 8 big-endian bytes from the front of `in`, advancing it.
bool ConsumeBigEndian64(absl::string_view* in, int64_t* v) {
  if (in->size() < 8) return false;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>((*in)[i]);
  in->remove_prefix(8);
  *v = static_cast<int64_t>(u);
  return true;
}

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool ConsumeVarint(absl::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    unsigned char byte = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

bool ConsumeBytes(absl::string_view* in, std::string* out) {
  uint64_t n;
  if (!ConsumeVarint(in, &n) || n > in->size()) return false;
  out->assign(in->data(), n);
  in->remove_prefix(n);
  return true;
}

std::string KvKey(absl::string_view key) { return absl::StrCat(kKvPrefix, key); }

std::string LogKey(int64_t revision) {
  std::string k(kLogPrefix);
  AppendBigEndian64(&k, revision);
  return k;
}

std::string EncodeRevision(int64_t revision) {
  std::string s;
  AppendBigEndian64(&s, revision);
  return s;
}

struct StoredValue {
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  std::string value;
};

std::string EncodeStoredValue(int64_t create_revision, int64_t mod_revision, absl::string_view value) {
  std::string s;
  s.reserve(16 + value.size());
  AppendBigEndian64(&s, create_revision);
  AppendBigEndian64(&s, mod_revision);
  s.append(value.data(), value.size());
  return s;
}

absl::StatusOr<StoredValue> DecodeStoredValue(absl::string_view key, absl::string_view in) {
  StoredValue v;
  if (!ConsumeBigEndian64(&in, &v.create_revision) || !ConsumeBigEndian64(&in, &v.mod_revision) ||
      v.create_revision < 1 || v.mod_revision < v.create_revision) {
    return absl::DataLossError(
        absl::StrCat("datastore(rocksdb): stored record of key ", internal::QuoteKey(key), " is corrupt"));
  }
  v.value = std::string(in);
  return v;
}

std::string EncodeEvents(const std::vector<Event>& events) {
  std::string s;
  AppendVarint(&s, events.size());
  for (const Event& e : events) {
    s.push_back(static_cast<char>(e.type == Event::Type::kPut ? kEventPut : kEventDelete));
    AppendVarint(&s, e.key.size());
    s.append(e.key);
    AppendVarint(&s, e.value.size());
    s.append(e.value);
    AppendBigEndian64(&s, e.create_revision);
  }
  return s;
}

absl::StatusOr<std::vector<Event>> DecodeEvents(int64_t revision, absl::string_view in) {
  auto corrupt = [revision]() {
    return absl::DataLossError(
        absl::StrCat("datastore(rocksdb): change log entry of revision ", revision, " is corrupt"));
  };
  uint64_t count;
  if (!ConsumeVarint(&in, &count) || count == 0 || count > in.size()) return corrupt();
  std::vector<Event> events(count);
  for (Event& e : events) {
    if (in.empty()) return corrupt();
    uint8_t type = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    if (type != kEventPut && type != kEventDelete) return corrupt();
    e.type = type == kEventPut ? Event::Type::kPut : Event::Type::kDelete;
    if (!ConsumeBytes(&in, &e.key) || !ConsumeBytes(&in, &e.value) ||
        !ConsumeBigEndian64(&in, &e.create_revision)) {
      return corrupt();
    }
    e.mod_revision = revision;
  }
  if (!in.empty()) return corrupt();
  return events;
}

// Reads an 8-byte big-endian revision stored under `key`; 0 when absent.
absl::StatusOr<int64_t> ReadMetaRevision(rocksdb::DB* db, const rocksdb::ReadOptions& ro,
                                         absl::string_view key) {
  std::string raw;
  rocksdb::Status s = db->Get(ro, rocksdb::Slice(key.data(), key.size()), &raw);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return FromRocks(s, absl::StrCat("reading ", key));
  absl::string_view in(raw);
  int64_t v;
  if (!ConsumeBigEndian64(&in, &v) || !in.empty() || v < 0) {
    return absl::DataLossError(absl::StrCat("datastore(rocksdb): metadata ", key, " is corrupt"));
  }
  return v;
}

// Releases a RocksDB snapshot when it goes out of scope.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  rocksdb::DB* const db_;
  const rocksdb::Snapshot* const snapshot_;
};

absl::Status InUseError(const std::string& path, const std::string& lock_path, int lock_fd) {
  std::string holder;
  if (lock_fd >= 0) {
    char buf[32] = {};
    ssize_t n = ::pread(lock_fd, buf, sizeof(buf) - 1, 0);
    int pid;
    if (n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(buf, n)), &pid)) {
      holder = absl::StrCat(" by pid ", pid);
    }
  }
  return absl::FailedPreconditionError(absl::StrCat("datastore(rocksdb): data_dir ", path,
                                                    " is in use by another sigil-server (lock held on ",
                                                    lock_path, holder, ")"));
}

// Takes the exclusive lock on `path`'s lock file and records our pid in it.
// flock locks belong to the open file description, so a second Open in the
// same process conflicts too.
absl::StatusOr<int> AcquireDirLock(const std::string& path) {
  std::string lock_path = absl::StrCat(path, "/", kLockFile);
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    std::string msg = absl::StrCat("datastore(rocksdb): cannot open lock file ", lock_path, ": ",
                                   std::strerror(err));
    if (err == EACCES || err == EPERM || err == EROFS) return absl::PermissionDeniedError(msg);
    return absl::UnavailableError(msg);
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    absl::Status status =
        err == EWOULDBLOCK ? InUseError(path, lock_path, fd)
                           : absl::UnavailableError(absl::StrCat("datastore(rocksdb): cannot lock ",
                                                                 lock_path, ": ", std::strerror(err)));
    ::close(fd);
    return status;
  }
  std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    int err = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("datastore(rocksdb): cannot write lock file ", lock_path, ": ", std::strerror(err)));
  }
  return fd;
}

// The deepest ancestor of `path` (or `path` itself) that exists now.
std::string DeepestExisting(std::string path) {
  struct stat st;
  while (::stat(path.c_str(), &st) != 0 && path != "/" && path != ".") path = DirName(path);
  return path;
}

// Creates `path` (mode 0700) and makes the new directory entries durable:
// fsyncs each directory that gained an entry, from the deepest pre-existing
// ancestor down, so a power loss right after the first acknowledged commit
// cannot take the whole data directory with it.
absl::Status CreateDataDir(const std::string& path) {
  const std::string existing = DeepestExisting(path);
  absl::Status made = MakeDirs(path, 0700);
  if (!made.ok()) {
    return absl::Status(made.code(), absl::StrCat("datastore(rocksdb): data_dir: ", made.message()));
  }
  if (existing == path) return absl::OkStatus();
  std::vector<std::string> parents;
  for (std::string d = DirName(path);; d = DirName(d)) {
    parents.push_back(d);
    if (d == existing || d == "/" || d == ".") break;
  }
  for (const std::string& d : parents) {
    int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
      int err = errno;
      if (fd >= 0) ::close(fd);
      return absl::UnavailableError(
          absl::StrCat("datastore(rocksdb): cannot sync directory ", d, ": ", std::strerror(err)));
    }
    ::close(fd);
  }
  return absl::OkStatus();
}

// Reads or initializes the format marker. A database without it must be
// empty, or it is not ours.
absl::Status CheckFormat(rocksdb::DB* db, const std::string& path) {
  std::string format;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kFormatKey, &format);
  if (s.ok()) {
    if (format == kFormat) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat("datastore(rocksdb): data_dir ", path,
                                                      " holds datastore format \"", absl::CHexEscape(format),
                                                      "\"; this sigil-server reads format ", kFormat));
  }
  if (!s.IsNotFound()) return FromRocks(s, "reading the format marker");
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  it->SeekToFirst();
  if (it->Valid()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "datastore(rocksdb): data_dir ", path, " holds a RocksDB database that is not a Sigil datastore"));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning a new database");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db->Put(wo, kFormatKey, kFormat), "writing the format marker");
}

}  // namespace

absl::StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(const std::string& path,
                                                                 const RocksDbStoreOptions& options) {
  if (path.empty()) return absl::InvalidArgumentError("datastore(rocksdb): data_dir is empty");
  if (options.retained_revisions < 1) {
    return absl::InvalidArgumentError(absl::StrCat("datastore(rocksdb): retained_revisions is ",
                                                   options.retained_revisions, "; it must be >= 1"));
  }
  if (options.watch_queue_limit < 1) {
    return absl::InvalidArgumentError(absl::StrCat("datastore(rocksdb): watch_queue_limit is ",
                                                   options.watch_queue_limit, "; it must be >= 1"));
  }
  if (options.block_cache_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat("datastore(rocksdb): block_cache_bytes is ",
                                                   options.block_cache_bytes, "; it must be >= 0"));
  }
  absl::Status made = CreateDataDir(path);
  if (!made.ok()) return made;
  absl::StatusOr<int> lock_fd = AcquireDirLock(path);
  if (!lock_fd.ok()) return lock_fd.status();
  auto release_lock = [fd = *lock_fd]() { ::close(fd); };

  rocksdb::Options rocks_options;
  rocks_options.create_if_missing = true;
  rocks_options.paranoid_checks = true;
  rocks_options.keep_log_file_num = 4;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = rocksdb::NewLRUCache(static_cast<size_t>(options.block_cache_bytes));
  rocks_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocks_options, path, &raw_db);
  if (!s.ok()) {
    release_lock();
    // Our flock is free but RocksDB's LOCK is not: some other tool holds it.
    if (s.IsIOError() && absl::StrContains(s.ToString(), "LOCK")) {
      return InUseError(path, absl::StrCat(path, "/LOCK"), -1);
    }
    return FromRocks(s, absl::StrCat("opening ", path));
  }
  std::unique_ptr<rocksdb::DB> db(raw_db);
  auto fail = [&](absl::Status status) {
    db->Close().PermitUncheckedError();
    db.reset();
    release_lock();
    return status;
  };
  absl::Status format = CheckFormat(db.get(), path);
  if (!format.ok()) return fail(format);
  absl::StatusOr<int64_t> revision = ReadMetaRevision(db.get(), rocksdb::ReadOptions(), kRevisionKey);
  if (!revision.ok()) return fail(revision.status());
  absl::StatusOr<int64_t> compact = ReadMetaRevision(db.get(), rocksdb::ReadOptions(), kCompactKey);
  if (!compact.ok()) return fail(compact.status());
  if (*compact > *revision) {
    return fail(absl::DataLossError(absl::StrCat("datastore(rocksdb): compaction point ", *compact,
                                                 " is past the current revision ", *revision)));
  }
  if (*revision > *compact) {
    std::string entry;
    rocksdb::Status got = db->Get(rocksdb::ReadOptions(), LogKey(*revision), &entry);
    if (got.IsNotFound()) {
      return fail(absl::DataLossError(absl::StrCat(
          "datastore(rocksdb): the change log has no entry for the current revision ", *revision)));
    }
    if (!got.ok()) return fail(FromRocks(got, "reading the change log"));
  }
  std::unique_ptr<RocksDbStore> store(
      new RocksDbStore(path, options, *lock_fd, std::move(db), *revision, *compact));
  store->hub_ =
      internal::WatchHub::Start(store.get(), *revision, static_cast<size_t>(options.watch_queue_limit));
  return store;
}

RocksDbStore::RocksDbStore(std::string path, const RocksDbStoreOptions& options, int lock_fd,
                           std::unique_ptr<rocksdb::DB> db, int64_t revision, int64_t compact_revision)
    : path_(std::move(path)),
      retained_revisions_(options.retained_revisions),
      revision_(revision),
      compact_revision_(compact_revision),
      current_revision_(revision),
      db_(std::move(db)),
      lock_fd_(lock_fd) {}

RocksDbStore::~RocksDbStore() { Close().IgnoreError(); }

absl::Status RocksDbStore::Close() {
  if (hub_->OnDispatcherThread()) {
    return internal::CloseFromCallbackError();
  }
  absl::Status stopped = hub_->Stop("datastore closed");
  if (!stopped.ok()) return stopped;
  absl::MutexLock commit_lock(&commit_mu_);
  absl::WriterMutexLock db_lock(&db_mu_);
  if (db_ == nullptr) return absl::OkStatus();
  absl::Status status = FromRocks(db_->Close(), absl::StrCat("closing ", path_));
  db_.reset();
  ::close(lock_fd_);
  lock_fd_ = -1;
  return status;
}

absl::StatusOr<KeyValue> RocksDbStore::Get(absl::string_view key) {
  absl::Status valid = internal::ValidateKey(key, "key");
  if (!valid.ok()) return valid;
  absl::ReaderMutexLock lock(&db_mu_);
  if (db_ == nullptr) return internal::ClosedError();
  std::string raw;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), KvKey(key), &raw);
  if (s.IsNotFound()) {
    return internal::KeyNotFoundError(key);
  }
  if (!s.ok()) return FromRocks(s, absl::StrCat("reading key ", internal::QuoteKey(key)));
  absl::StatusOr<StoredValue> v = DecodeStoredValue(key, raw);
  if (!v.ok()) return v.status();
  return KeyValue{std::string(key), std::move(v->value), v->create_revision, v->mod_revision};
}

absl::StatusOr<RangeResult> RocksDbStore::Range(absl::string_view prefix, absl::string_view start_after,
                                                int64_t limit) {
  absl::Status valid = internal::ValidateRange(prefix, start_after, limit);
  if (!valid.ok()) return valid;
  absl::ReaderMutexLock lock(&db_mu_);
  if (db_ == nullptr) return internal::ClosedError();
  ScopedSnapshot snapshot(db_.get());
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.get();
  RangeResult result;
  absl::StatusOr<int64_t> revision = ReadMetaRevision(db_.get(), ro, kRevisionKey);
  if (!revision.ok()) return revision.status();
  result.revision = *revision;

  const std::string lower = KvKey(prefix);
  // "k/" + prefix always has a successor: 'k' is not 0xff.
  const std::string upper = *internal::PrefixSuccessor(lower);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  if (start_after < prefix) {
    it->Seek(lower);
  } else {
    // The smallest key after start_after is start_after + "\0".
    std::string seek = KvKey(start_after);
    seek.push_back('\0');
    it->Seek(seek);
  }
  for (; it->Valid(); it->Next()) {
    if (limit > 0 && static_cast<int64_t>(result.kvs.size()) == limit) {
      result.more = true;
      break;
    }
    absl::string_view stored_key(it->key().data(), it->key().size());
    stored_key.remove_prefix(kKvPrefix.size());
    absl::StatusOr<StoredValue> v =
        DecodeStoredValue(stored_key, absl::string_view(it->value().data(), it->value().size()));
    if (!v.ok()) return v.status();
    result.kvs.push_back(
        KeyValue{std::string(stored_key), std::move(v->value), v->create_revision, v->mod_revision});
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning keys");
  return result;
}

absl::StatusOr<int64_t> RocksDbStore::Commit(const Txn& txn) {
  absl::Status valid = internal::ValidateTxn(txn);
  if (!valid.ok()) return valid;
  absl::MutexLock commit_lock(&commit_mu_);
  absl::ReaderMutexLock db_lock(&db_mu_);
  if (db_ == nullptr) return internal::ClosedError();
  if (!write_failure_.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "datastore(rocksdb): refusing writes after a failed write (restart sigil-server to recover): ",
        write_failure_.message()));
  }

  // The live state of every key the transaction touches; commits are
  // serialized, so nothing changes it until our batch is written.
  std::map<std::string, std::optional<StoredValue>, std::less<>> state;
  auto load = [&](const std::string& key) -> absl::StatusOr<const std::optional<StoredValue>*> {
    auto found = state.find(key);
    if (found != state.end()) return &found->second;
    std::string raw;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), KvKey(key), &raw);
    std::optional<StoredValue> value;
    if (s.ok()) {
      absl::StatusOr<StoredValue> decoded = DecodeStoredValue(key, raw);
      if (!decoded.ok()) return decoded.status();
      value = std::move(*decoded);
    } else if (!s.IsNotFound()) {
      return FromRocks(s, absl::StrCat("reading key ", internal::QuoteKey(key)));
    }
    return &state.emplace(key, std::move(value)).first->second;
  };

  for (const Compare& c : txn.compares) {
    absl::StatusOr<const std::optional<StoredValue>*> current = load(c.key);
    if (!current.ok()) return current.status();
    int64_t actual = (*current)->has_value() ? (**current)->mod_revision : 0;
    if (actual != c.mod_revision) return internal::CompareFailedError(c.key, c.mod_revision, actual);
  }

  const int64_t revision = revision_ + 1;
  std::vector<Event> events;
  rocksdb::WriteBatch batch;
  for (const Op& op : txn.ops) {
    absl::StatusOr<const std::optional<StoredValue>*> current = load(op.key);
    if (!current.ok()) return current.status();
    if (op.type == Op::Type::kPut) {
      int64_t create = (*current)->has_value() ? (**current)->create_revision : revision;
      batch.Put(KvKey(op.key), EncodeStoredValue(create, revision, op.value));
      events.push_back(Event{Event::Type::kPut, op.key, op.value, create, revision});
    } else if ((*current)->has_value()) {
      batch.Delete(KvKey(op.key));
      events.push_back(Event{Event::Type::kDelete, op.key, "", 0, revision});
    }
  }
  if (events.empty()) return revision_;

  batch.Put(LogKey(revision), EncodeEvents(events));
  batch.Put(kRevisionKey, EncodeRevision(revision));
  int64_t compact = compact_revision_;
  if (revision - compact > retained_revisions_) {
    compact = revision - retained_revisions_;
    if (compact == compact_revision_ + 1) {
      batch.Delete(LogKey(compact));
    } else {
      // The retention shrank since the last commit (a reopen with a smaller
      // retained_revisions): drop the whole excess at once.
      batch.DeleteRange(LogKey(compact_revision_ + 1), LogKey(compact + 1));
    }
    batch.Put(kCompactKey, EncodeRevision(compact));
  }

  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db_->Write(wo, &batch);
  if (!s.ok()) {
    write_failure_ = FromRocks(s, absl::StrCat("committing revision ", revision));
    return write_failure_;
  }
  revision_ = revision;
  compact_revision_ = compact;
  current_revision_.store(revision, std::memory_order_release);
  hub_->Publish(revision, events);
  return revision;
}

absl::StatusOr<int64_t> RocksDbStore::CurrentRevision() {
  absl::ReaderMutexLock lock(&db_mu_);
  if (db_ == nullptr) return internal::ClosedError();
  return current_revision_.load(std::memory_order_acquire);
}

absl::StatusOr<int64_t> RocksDbStore::CompactRevision() {
  absl::MutexLock commit_lock(&commit_mu_);
  absl::ReaderMutexLock lock(&db_mu_);
  if (db_ == nullptr) return internal::ClosedError();
  return compact_revision_;
}

absl::StatusOr<std::unique_ptr<WatchHandle>> RocksDbStore::Watch(absl::string_view prefix,
                                                                 int64_t from_revision,
                                                                 WatchCallback callback) {
  absl::Status valid = internal::ValidateWatch(prefix, from_revision, callback);
  if (!valid.ok()) return valid;
  // Holding commit_mu_ keeps commits out between the compaction check and
  // the registration.
  absl::MutexLock commit_lock(&commit_mu_);
  {
    absl::ReaderMutexLock lock(&db_mu_);
    if (db_ == nullptr) return internal::ClosedError();
  }
  if (from_revision != 0 && from_revision <= compact_revision_) {
    return internal::CompactedError(from_revision, compact_revision_);
  }
  return hub_->Add(prefix, from_revision, std::move(callback));
}

absl::Status RocksDbStore::ReadChanges(int64_t from, int64_t to, size_t max_revisions,
                                       std::vector<WatchResponse>* out) {
  absl::ReaderMutexLock lock(&db_mu_);
  if (db_ == nullptr) return internal::ClosedError();
  // One snapshot: the compaction point and the log entries it guards agree.
  ScopedSnapshot snapshot(db_.get());
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.get();
  absl::StatusOr<int64_t> compact = ReadMetaRevision(db_.get(), ro, kCompactKey);
  if (!compact.ok()) return compact.status();
  if (from <= *compact) {
    return internal::CompactedError(from, *compact, "watch fell behind: ");
  }
  const std::string upper = LogKey(to + 1);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  int64_t expected = from;
  size_t n_read = 0;
  for (it->Seek(LogKey(from)); it->Valid() && n_read < max_revisions; it->Next(), ++expected, ++n_read) {
    absl::string_view key(it->key().data(), it->key().size());
    key.remove_prefix(kLogPrefix.size());
    int64_t revision;
    if (!ConsumeBigEndian64(&key, &revision) || !key.empty() || revision != expected) {
      return absl::DataLossError(
          absl::StrCat("datastore(rocksdb): the change log is missing revision ", expected));
    }
    absl::StatusOr<std::vector<Event>> events =
        DecodeEvents(revision, absl::string_view(it->value().data(), it->value().size()));
    if (!events.ok()) return events.status();
    out->push_back(WatchResponse{revision, std::move(*events)});
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading the change log");
  if (n_read == 0 || (n_read < max_revisions && expected <= to)) {
    return absl::DataLossError(
        absl::StrCat("datastore(rocksdb): the change log is missing revision ", expected));
  }
  return absl::OkStatus();
}

}  // namespace sigil::server::datastore
