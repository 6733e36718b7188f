// What only the RocksDB engine promises: persistence across reopen and
// crashes, the single-process lock, on-disk validation.

#include "server/datastore/rocksdb_store.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/util/files.h"

namespace sigil::server::datastore {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(30);

Txn Put(std::string key, std::string value) {
  Txn txn;
  txn.ops.push_back(Op::Put(std::move(key), std::move(value)));
  return txn;
}

// Collects watch responses; enough for the replay checks here.
class Replay {
 public:
  WatchCallback Callback() {
    return [this](absl::StatusOr<WatchResponse> r) {
      absl::MutexLock lock(&mu_);
      if (r.ok()) {
        responses_.push_back(std::move(*r));
      } else if (!error_.has_value()) {
        error_ = r.status();
      }
    };
  }
  std::vector<WatchResponse> WaitFor(int64_t revision) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, revision]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return error_.has_value() || (!responses_.empty() && responses_.back().revision >= revision);
    };
    mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
    return responses_;
  }

 private:
  absl::Mutex mu_;
  std::vector<WatchResponse> responses_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> error_ ABSL_GUARDED_BY(mu_);
};

// Runs the helper binary with `args`, returning its pid and a pipe on its
// stdout.
struct Child {
  pid_t pid = -1;
  int out = -1;
};

Child Spawn(const std::vector<std::string>& args) {
  // Built before fork: the child may only make async-signal-safe calls.
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fds[2];
  if (::pipe(fds) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  return Child{pid, fds[0]};
}

// Reads what is available from `fd` into `buffer`; false at EOF or error.
bool ReadSome(int fd, std::string* buffer) {
  char chunk[4096];
  ssize_t n = ::read(fd, chunk, sizeof(chunk));
  if (n <= 0) return false;
  buffer->append(chunk, static_cast<size_t>(n));
  return true;
}

class RocksDbStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::sigil::testing::MakeTempDir("rocksdb-store-test");
    dir_ = root_ + "/data";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::unique_ptr<RocksDbStore> MustOpen(const RocksDbStoreOptions& options = {}) {
    auto store = RocksDbStore::Open(dir_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::string root_;
  std::string dir_;
};

TEST_F(RocksDbStoreTest, DataAndRevisionSurviveReopen) {
  {
    auto store = MustOpen();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Commit(Put("a", "1")).ok());
    ASSERT_TRUE(store->Commit(Put("b", "2")).ok());
    ASSERT_TRUE(store->Commit(Put("a", "3")).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->CurrentRevision(), 3);
  auto a = store->Get("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, (KeyValue{"a", "3", 1, 3}));
  EXPECT_EQ(*store->Commit(Put("c", "4")), 4);
}

TEST_F(RocksDbStoreTest, ChangeLogSurvivesReopen) {
  {
    auto store = MustOpen();
    Txn txn;
    txn.ops = {Op::Put("x/1", "one"), Op::Put("x/2", "two")};
    ASSERT_TRUE(store->Commit(txn).ok());
    Txn del;
    del.ops = {Op::Delete("x/1")};
    ASSERT_TRUE(store->Commit(del).ok());
  }
  auto store = MustOpen();
  Replay replay;
  auto watch = store->Watch("x/", 1, replay.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status();
  auto got = replay.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_THAT(got[0].events, ::testing::ElementsAre(Event{Event::Type::kPut, "x/1", "one", 1, 1},
                                                    Event{Event::Type::kPut, "x/2", "two", 1, 1}));
  EXPECT_THAT(got[1].events, ::testing::ElementsAre(Event{Event::Type::kDelete, "x/1", "", 0, 2}));
}

TEST_F(RocksDbStoreTest, CompactionPointSurvivesReopen) {
  RocksDbStoreOptions options;
  options.retained_revisions = 3;
  {
    auto store = MustOpen(options);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(store->Commit(Put("k", absl::StrCat(i))).ok());
    EXPECT_EQ(*store->CompactRevision(), 7);
  }
  auto store = MustOpen(options);
  EXPECT_EQ(*store->CompactRevision(), 7);
  Replay replay;
  auto old = store->Watch("", 7, replay.Callback());
  EXPECT_EQ(old.status().code(), absl::StatusCode::kOutOfRange);
  auto kept = store->Watch("", 8, replay.Callback());
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(replay.WaitFor(10).size(), 3u);
}

TEST_F(RocksDbStoreTest, ShrinkingRetentionCompactsTheExcessOnNextCommit) {
  {
    auto store = MustOpen();
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(store->Commit(Put("k", absl::StrCat(i))).ok());
    EXPECT_EQ(*store->CompactRevision(), 0);
  }
  RocksDbStoreOptions small;
  small.retained_revisions = 4;
  auto store = MustOpen(small);
  ASSERT_EQ(*store->Commit(Put("k", "last")), 21);
  EXPECT_EQ(*store->CompactRevision(), 17);
  Replay replay;
  EXPECT_EQ(store->Watch("", 17, replay.Callback()).status().code(), absl::StatusCode::kOutOfRange);
  auto kept = store->Watch("", 18, replay.Callback());
  ASSERT_TRUE(kept.ok());
  auto got = replay.WaitFor(21);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].revision, 18);
  kept->reset();
  store.reset();

  // The compacted log entries are really gone from disk.
  rocksdb::DB* raw = nullptr;
  rocksdb::Options o;
  ASSERT_TRUE(rocksdb::DB::OpenForReadOnly(o, dir_, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  int log_entries = 0;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("l/"); it->Valid() && it->key().starts_with("l/"); it->Next()) ++log_entries;
  EXPECT_EQ(log_entries, 4);
}

TEST_F(RocksDbStoreTest, DirectoryIsCreatedOwnerOnly) {
  dir_ = root_ + "/nested/data";
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  struct stat st;
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(RocksDbStoreTest, EmptyPathIsInvalidArgument) {
  auto store = RocksDbStore::Open("");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store.status().message(), HasSubstr("data_dir is empty"));
}

TEST_F(RocksDbStoreTest, InvalidOptionsAreRejected) {
  RocksDbStoreOptions options;
  options.retained_revisions = 0;
  auto store = RocksDbStore::Open(dir_, options);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store.status().message(), HasSubstr("retained_revisions is 0"));
}

TEST_F(RocksDbStoreTest, PathThatIsAFileIsFailedPrecondition) {
  std::ofstream(dir_) << "not a directory";
  auto store = RocksDbStore::Open(dir_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("is not a directory"));
}

TEST_F(RocksDbStoreTest, SecondOpenInSameProcessFailsWhileFirstIsOpen) {
  auto first = MustOpen();
  ASSERT_NE(first, nullptr);
  auto second = RocksDbStore::Open(dir_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("data_dir ", dir_, " is in use by another sigil-server (lock held")));
  EXPECT_THAT(second.status().message(), HasSubstr(absl::StrCat("by pid ", ::getpid())));
  // The failed open left the first store intact.
  EXPECT_TRUE(first->Commit(Put("a", "1")).ok());
  ASSERT_TRUE(first->Close().ok());
  auto third = RocksDbStore::Open(dir_);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)->Get("a")->value, "1");
}

TEST_F(RocksDbStoreTest, SecondOpenFromAnotherProcessFailsCleanly) {
  auto first = MustOpen();
  ASSERT_NE(first, nullptr);
  Child child = Spawn({SIGIL_DATASTORE_CRASH_WRITER, "open", dir_});
  ASSERT_GT(child.pid, 0);
  std::string out;
  while (ReadSome(child.out, &out)) {
  }
  ::close(child.out);
  int status = 0;
  ASSERT_EQ(::waitpid(child.pid, &status, 0), child.pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_THAT(out, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(out, HasSubstr("is in use by another sigil-server (lock held"));

  // Once the first closes, the other process can open it.
  ASSERT_TRUE(first->Close().ok());
  Child again = Spawn({SIGIL_DATASTORE_CRASH_WRITER, "open", dir_});
  std::string out2;
  while (ReadSome(again.out, &out2)) {
  }
  ::close(again.out);
  ::waitpid(again.pid, &status, 0);
  EXPECT_THAT(out2, HasSubstr("OK"));
}

// Another RocksDB user (say, an operator's ldb session) holds RocksDB's own
// LOCK file but not ours.
TEST_F(RocksDbStoreTest, DatabaseOpenedByAnotherRocksDbUserIsFailedPrecondition) {
  { ASSERT_NE(MustOpen(), nullptr); }
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
  std::unique_ptr<rocksdb::DB> other(raw);
  auto store = RocksDbStore::Open(dir_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(),
              HasSubstr(absl::StrCat("is in use by another sigil-server (lock held on ", dir_, "/LOCK)")));
  other.reset();
  EXPECT_TRUE(RocksDbStore::Open(dir_).ok());
}

TEST_F(RocksDbStoreTest, ForeignRocksDbDatabaseIsRejected) {
  {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options o;
    o.create_if_missing = true;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "someone-else", "data").ok());
  }
  auto store = RocksDbStore::Open(dir_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("not a Sigil datastore"));
}

TEST_F(RocksDbStoreTest, UnknownFormatIsRejected) {
  { ASSERT_NE(MustOpen(), nullptr); }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "m/format", "99").ok());
  }
  auto store = RocksDbStore::Open(dir_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("format \"99\"; this sigil-server reads format 1"));
}

TEST_F(RocksDbStoreTest, CorruptRecordIsDataLoss) {
  {
    auto store = MustOpen();
    ASSERT_TRUE(store->Commit(Put("good", "v")).ok());
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k/bad", "short").ok());
  }
  auto store = MustOpen();
  auto bad = store->Get("bad");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(bad.status().message(), HasSubstr("stored record of key \"bad\" is corrupt"));
  EXPECT_EQ(store->Range("", "", 0).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(store->Get("good").ok());
}

TEST_F(RocksDbStoreTest, MissingChangeLogHeadIsDataLoss) {
  {
    auto store = MustOpen();
    ASSERT_TRUE(store->Commit(Put("a", "v")).ok());
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string log_key("l/\0\0\0\0\0\0\0\x01", 10);
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), log_key).ok());
  }
  auto store = RocksDbStore::Open(dir_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr("no entry for the current revision 1"));
}

// A child commits two-key transactions in a loop and reports each
// acknowledged revision; we SIGKILL it mid-stream. Every acknowledged
// transaction must be there after reopen, and no transaction may be half
// applied.
TEST_F(RocksDbStoreTest, AcknowledgedCommitsSurviveSigkill) {
  Child child = Spawn({SIGIL_DATASTORE_CRASH_WRITER, "commit-loop", dir_});
  ASSERT_GT(child.pid, 0);
  std::string out;
  const absl::Time deadline = absl::Now() + kWait;
  auto lines = [&out] { return std::count(out.begin(), out.end(), '\n'); };
  while (lines() < 300 && absl::Now() < deadline && ReadSome(child.out, &out)) {
  }
  ASSERT_EQ(::kill(child.pid, SIGKILL), 0);
  // Lines written before the kill are acknowledged too.
  while (ReadSome(child.out, &out)) {
  }
  ::close(child.out);
  int status = 0;
  ASSERT_EQ(::waitpid(child.pid, &status, 0), child.pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited by itself: " << status;
  ASSERT_GE(lines(), 300) << out;

  std::map<int64_t, int64_t> acked;  // i -> revision
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 2u) << line;
    int64_t i, rev;
    ASSERT_TRUE(absl::SimpleAtoi(parts[0], &i) && absl::SimpleAtoi(parts[1], &rev)) << line;
    acked[i] = rev;
  }
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  const int64_t last_acked = acked.rbegin()->second;
  EXPECT_GE(*store->CurrentRevision(), last_acked);
  for (const auto& [i, rev] : acked) {
    for (const char* side : {"a/", "b/"}) {
      auto kv = store->Get(absl::StrCat(side, i));
      ASSERT_TRUE(kv.ok()) << "acknowledged " << side << i << " lost: " << kv.status();
      EXPECT_EQ(kv->value, absl::StrCat(i));
      EXPECT_EQ(kv->mod_revision, rev);
    }
  }
  // Unacknowledged transactions that made it are whole.
  auto a = store->Range("a/", "", 0);
  auto b = store->Range("b/", "", 0);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->kvs.size(), b->kvs.size());
  EXPECT_EQ(static_cast<int64_t>(a->kvs.size()), *store->CurrentRevision());
  // The change log is intact up to the end: replay the acknowledged tail.
  Replay replay;
  auto watch = store->Watch("a/", last_acked - 10, replay.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status();
  auto got = replay.WaitFor(*store->CurrentRevision());
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front().revision, last_acked - 10);
  EXPECT_EQ(got.back().revision, *store->CurrentRevision());
}

}  // namespace
}  // namespace sigil::server::datastore
