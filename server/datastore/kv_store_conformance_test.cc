// The KvStore contract, run against every engine: what passes here for the
// in-memory store must pass for RocksDB (and later etcd) unchanged.

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/datastore/kv_store.h"
#include "server/datastore/memory_store.h"
#include "server/datastore/rocksdb_store.h"
#include "tests/util/files.h"

namespace sigil::server::datastore {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(30);

enum class Engine { kMemory, kRocksDb };

std::string EngineName(const ::testing::TestParamInfo<Engine>& info) {
  return info.param == Engine::kMemory ? "Memory" : "RocksDb";
}

struct StoreOptions {
  int64_t retained_revisions = 10000;
  int64_t watch_queue_limit = 1024;
};

// Records what a watch delivers and checks the delivery rules as it goes:
// never two callbacks at once, nothing after a terminal error.
class Collector {
 public:
  WatchCallback Callback() {
    return [this](absl::StatusOr<WatchResponse> r) { Add(std::move(r)); };
  }

  // Waits until a response with revision >= `revision` or an error arrived.
  bool WaitForRevision(int64_t revision) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, revision]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return error_.has_value() || (!responses_.empty() && responses_.back().revision >= revision);
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait) && !error_.has_value();
  }

  // Waits until `count` responses or an error arrived.
  bool WaitForCount(size_t count) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return error_.has_value() || responses_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait) && !error_.has_value();
  }

  std::optional<absl::Status> WaitForError() {
    absl::MutexLock lock(&mu_);
    auto failed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return error_.has_value(); };
    mu_.AwaitWithTimeout(absl::Condition(&failed), kWait);
    return error_;
  }

  std::vector<WatchResponse> responses() {
    absl::MutexLock lock(&mu_);
    return responses_;
  }
  std::vector<int64_t> revisions() {
    absl::MutexLock lock(&mu_);
    std::vector<int64_t> out;
    for (const auto& r : responses_) out.push_back(r.revision);
    return out;
  }
  std::optional<absl::Status> error() {
    absl::MutexLock lock(&mu_);
    return error_;
  }
  // Problems with the delivery itself (overlap, calls after an error).
  std::vector<std::string> violations() {
    absl::MutexLock lock(&mu_);
    return violations_;
  }

 private:
  void Add(absl::StatusOr<WatchResponse> r) {
    if (in_flight_.fetch_add(1) != 0) Violation("callbacks overlapped");
    {
      absl::MutexLock lock(&mu_);
      if (error_.has_value()) violations_.push_back("callback after a terminal error");
      if (r.ok()) {
        responses_.push_back(std::move(*r));
      } else {
        error_ = r.status();
      }
    }
    in_flight_.fetch_sub(1);
  }
  void Violation(std::string what) {
    absl::MutexLock lock(&mu_);
    violations_.push_back(std::move(what));
  }

  std::atomic<int> in_flight_{0};
  absl::Mutex mu_;
  std::vector<WatchResponse> responses_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> error_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
};

Txn Put(std::string key, std::string value) {
  Txn txn;
  txn.ops.push_back(Op::Put(std::move(key), std::move(value)));
  return txn;
}

Txn Delete(std::string key) {
  Txn txn;
  txn.ops.push_back(Op::Delete(std::move(key)));
  return txn;
}

std::vector<std::string> Keys(const RangeResult& r) {
  std::vector<std::string> keys;
  for (const auto& kv : r.kvs) keys.push_back(kv.key);
  return keys;
}

class KvStoreConformanceTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    dir_ = ::sigil::testing::MakeTempDir("datastore-test");
    store_ = OpenStore({});
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<KvStore> OpenStore(const StoreOptions& options) {
    if (GetParam() == Engine::kMemory) {
      MemoryStoreOptions o;
      o.retained_revisions = options.retained_revisions;
      o.watch_queue_limit = options.watch_queue_limit;
      auto store = MemoryStore::Create(o);
      EXPECT_TRUE(store.ok()) << store.status();
      return store.ok() ? std::move(*store) : nullptr;
    }
    RocksDbStoreOptions o;
    o.retained_revisions = options.retained_revisions;
    o.watch_queue_limit = options.watch_queue_limit;
    auto store = RocksDbStore::Open(dir_ + "/db", o);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Replaces the fixture's store with one opened with `options`.
  void Reopen(const StoreOptions& options) {
    store_.reset();
    std::filesystem::remove_all(dir_ + "/db");
    store_ = OpenStore(options);
    ASSERT_NE(store_, nullptr);
  }

  int64_t MustCommit(const Txn& txn) {
    auto rev = store_->Commit(txn);
    EXPECT_TRUE(rev.ok()) << rev.status();
    return rev.ok() ? *rev : -1;
  }

  std::string dir_;
  std::unique_ptr<KvStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Engines, KvStoreConformanceTest, ::testing::Values(Engine::kMemory, Engine::kRocksDb),
                         EngineName);

// --- Get / Put / Delete -----------------------------------------------------

TEST_P(KvStoreConformanceTest, FreshStoreIsAtRevisionZero) {
  auto rev = store_->CurrentRevision();
  ASSERT_TRUE(rev.ok()) << rev.status();
  EXPECT_EQ(*rev, 0);
}

TEST_P(KvStoreConformanceTest, PutThenGetReturnsValueAndRevisions) {
  EXPECT_EQ(MustCommit(Put("entries/1", "hello")), 1);
  auto kv = store_->Get("entries/1");
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->key, "entries/1");
  EXPECT_EQ(kv->value, "hello");
  EXPECT_EQ(kv->create_revision, 1);
  EXPECT_EQ(kv->mod_revision, 1);
  EXPECT_EQ(*store_->CurrentRevision(), 1);
}

TEST_P(KvStoreConformanceTest, GetMissingKeyIsNotFoundNamingTheKey) {
  auto kv = store_->Get("entries/missing");
  EXPECT_EQ(kv.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(kv.status().message(), HasSubstr("\"entries/missing\""));
}

TEST_P(KvStoreConformanceTest, GetEmptyKeyIsInvalidArgument) {
  auto kv = store_->Get("");
  EXPECT_EQ(kv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(kv.status().message(), HasSubstr("key is empty"));
}

TEST_P(KvStoreConformanceTest, BinaryKeysAndValuesRoundTrip) {
  std::string key("bin/\0\xff\x01", 7);
  std::string value("\0\0\xfe", 3);
  MustCommit(Put(key, value));
  auto kv = store_->Get(key);
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->value, value);
  EXPECT_EQ(store_->Get(std::string("bin/\0", 5)).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(KvStoreConformanceTest, EmptyValueIsStored) {
  MustCommit(Put("k", ""));
  auto kv = store_->Get("k");
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->value, "");
}

TEST_P(KvStoreConformanceTest, UpdateKeepsCreateRevisionAndAdvancesModRevision) {
  MustCommit(Put("a", "1"));
  MustCommit(Put("other", "x"));
  EXPECT_EQ(MustCommit(Put("a", "2")), 3);
  auto kv = store_->Get("a");
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->value, "2");
  EXPECT_EQ(kv->create_revision, 1);
  EXPECT_EQ(kv->mod_revision, 3);
}

TEST_P(KvStoreConformanceTest, DeleteRemovesKeyAndTakesARevision) {
  MustCommit(Put("a", "1"));
  EXPECT_EQ(MustCommit(Delete("a")), 2);
  EXPECT_EQ(store_->Get("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store_->CurrentRevision(), 2);
}

TEST_P(KvStoreConformanceTest, RecreatedKeyGetsNewCreateRevision) {
  MustCommit(Put("a", "1"));
  MustCommit(Delete("a"));
  EXPECT_EQ(MustCommit(Put("a", "again")), 3);
  auto kv = store_->Get("a");
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->create_revision, 3);
  EXPECT_EQ(kv->mod_revision, 3);
}

TEST_P(KvStoreConformanceTest, RevisionsIncreaseByOnePerChangingCommit) {
  for (int i = 1; i <= 10; ++i) EXPECT_EQ(MustCommit(Put(absl::StrCat("k", i % 3), "v")), i);
}

TEST_P(KvStoreConformanceTest, AllOpsOfATxnShareOneRevision) {
  MustCommit(Put("c", "old"));
  Txn txn;
  txn.ops = {Op::Put("a", "1"), Op::Put("b", "2"), Op::Delete("c")};
  EXPECT_EQ(MustCommit(txn), 2);
  EXPECT_EQ(store_->Get("a")->mod_revision, 2);
  EXPECT_EQ(store_->Get("b")->mod_revision, 2);
  EXPECT_EQ(store_->Get("c").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store_->CurrentRevision(), 2);
}

TEST_P(KvStoreConformanceTest, TxnWithoutOpsReturnsCurrentRevision) {
  MustCommit(Put("a", "1"));
  Txn txn;
  txn.compares.push_back(Compare{"a", 1});
  EXPECT_EQ(MustCommit(txn), 1);
  EXPECT_EQ(MustCommit(Txn{}), 1);
  EXPECT_EQ(*store_->CurrentRevision(), 1);
}

TEST_P(KvStoreConformanceTest, DeletingOnlyAbsentKeysTakesNoRevision) {
  MustCommit(Put("a", "1"));
  EXPECT_EQ(MustCommit(Delete("never-existed")), 1);
  EXPECT_EQ(*store_->CurrentRevision(), 1);
  EXPECT_EQ(MustCommit(Put("b", "2")), 2);
}

// --- Compares ---------------------------------------------------------------

TEST_P(KvStoreConformanceTest, CompareOnCurrentModRevisionSucceeds) {
  MustCommit(Put("a", "1"));
  Txn txn;
  txn.compares.push_back(Compare{"a", 1});
  txn.compares.push_back(Compare{"absent", 0});
  txn.ops.push_back(Op::Put("a", "2"));
  EXPECT_EQ(MustCommit(txn), 2);
  EXPECT_EQ(store_->Get("a")->value, "2");
}

TEST_P(KvStoreConformanceTest, CreateIfAbsentFailsWhenKeyExists) {
  MustCommit(Put("a", "1"));
  Txn txn;
  txn.compares.push_back(Compare{"a", 0});
  txn.ops.push_back(Op::Put("a", "2"));
  auto rev = store_->Commit(txn);
  EXPECT_EQ(rev.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(rev.status().message(), HasSubstr("\"a\": expected absent, found mod_revision 1"));
  EXPECT_EQ(FailedCompareKey(rev.status()), "a");
}

TEST_P(KvStoreConformanceTest, CompareOnAbsentKeyWithRevisionFails) {
  Txn txn;
  txn.compares.push_back(Compare{"gone", 4});
  auto rev = store_->Commit(txn);
  EXPECT_EQ(rev.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(rev.status().message(), HasSubstr("expected mod_revision 4, found absent"));
}

TEST_P(KvStoreConformanceTest, FailedCompareChangesNothingAndNamesFirstFailingKey) {
  MustCommit(Put("a", "1"));
  MustCommit(Put("b", "1"));
  Collector events;
  auto watch = store_->Watch("", 0, events.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status();

  Txn txn;
  txn.compares = {Compare{"a", 1}, Compare{"b", 2}, Compare{"c", 9}, Compare{"a", 7}};
  txn.ops = {Op::Put("a", "changed"), Op::Delete("b"), Op::Put("new", "x")};
  auto rev = store_->Commit(txn);
  EXPECT_EQ(rev.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(FailedCompareKey(rev.status()), "c");

  EXPECT_EQ(*store_->CurrentRevision(), 2);
  EXPECT_EQ(store_->Get("a")->value, "1");
  EXPECT_EQ(store_->Get("b")->value, "1");
  EXPECT_EQ(store_->Get("new").status().code(), absl::StatusCode::kNotFound);
  // The next commit is revision 3, and it is the first thing the watch sees.
  EXPECT_EQ(MustCommit(Put("after", "x")), 3);
  ASSERT_TRUE(events.WaitForRevision(3));
  EXPECT_THAT(events.revisions(), ElementsAre(3));
}

TEST_P(KvStoreConformanceTest, FailedCompareKeyIsEmptyForOtherStatuses) {
  EXPECT_EQ(FailedCompareKey(absl::AbortedError("x")), std::nullopt);
  EXPECT_EQ(FailedCompareKey(absl::NotFoundError("x")), std::nullopt);
}

TEST_P(KvStoreConformanceTest, OptimisticUpdateLetsExactlyOneConcurrentWriterWin) {
  MustCommit(Put("counter", "0"));
  constexpr int kThreads = 4;
  constexpr int kIncrements = 10;
  std::vector<std::thread> threads;
  std::atomic<int> aborted{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kIncrements;) {
        auto kv = store_->Get("counter");
        ASSERT_TRUE(kv.ok()) << kv.status();
        Txn txn;
        txn.compares.push_back(Compare{"counter", kv->mod_revision});
        txn.ops.push_back(Op::Put("counter", std::to_string(std::stoi(kv->value) + 1)));
        auto rev = store_->Commit(txn);
        if (rev.ok()) {
          ++done;
        } else {
          ASSERT_EQ(rev.status().code(), absl::StatusCode::kAborted) << rev.status();
          ++aborted;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(store_->Get("counter")->value, std::to_string(kThreads * kIncrements));
  EXPECT_EQ(*store_->CurrentRevision(), 1 + kThreads * kIncrements);
}

// --- Validation -------------------------------------------------------------

struct InvalidTxnCase {
  std::string name;
  std::function<Txn()> make;
  std::string message;
};

TEST_P(KvStoreConformanceTest, InvalidTransactionsAreRejectedWithoutChange) {
  const std::vector<InvalidTxnCase> cases = {
      {"empty op key", [] { return Put("", "v"); }, "ops[0].key is empty"},
      {"oversize key", [] { return Put(std::string(kMaxKeyBytes + 1, 'k'), "v"); },
       "ops[0].key is 8193 bytes; the limit is 8192"},
      {"empty compare key",
       [] {
         Txn t;
         t.compares.push_back(Compare{"", 0});
         return t;
       },
       "compares[0].key is empty"},
      {"negative compare revision",
       [] {
         Txn t;
         t.compares.push_back(Compare{"a", -1});
         return t;
       },
       "compares[0].mod_revision is -1"},
      {"key in two ops",
       [] {
         Txn t;
         t.ops = {Op::Put("a", "1"), Op::Delete("a")};
         return t;
       },
       "key \"a\" appears in more than one op"},
      {"delete with value",
       [] {
         Txn t;
         t.ops.push_back(Op{Op::Type::kDelete, "a", "v"});
         return t;
       },
       "ops[0] deletes \"a\" but carries a value"},
      {"too many ops",
       [] {
         Txn t;
         for (size_t i = 0; i <= kMaxTxnOps; ++i) t.ops.push_back(Op::Put(absl::StrCat("k", i), ""));
         return t;
       },
       "transaction has 129 ops; the limit is 128"},
      {"too many compares",
       [] {
         Txn t;
         for (size_t i = 0; i <= kMaxTxnOps; ++i) t.compares.push_back(Compare{"k", 0});
         return t;
       },
       "transaction has 129 compares"},
      {"too many bytes",
       [] {
         Txn t;
         t.ops.push_back(Op::Put("a", std::string(kMaxTxnBytes, 'x')));
         return t;
       },
       "the limit is 1572864"},
  };
  for (const auto& c : cases) {
    auto rev = store_->Commit(c.make());
    EXPECT_EQ(rev.status().code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << rev.status();
    EXPECT_THAT(rev.status().message(), HasSubstr(c.message)) << c.name;
  }
  EXPECT_EQ(*store_->CurrentRevision(), 0);
  auto all = store_->Range("", "", 0);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->kvs.empty());
}

TEST_P(KvStoreConformanceTest, LargestAllowedTxnIsAccepted) {
  Txn txn;
  size_t bytes = 0;
  for (size_t i = 0; i < kMaxTxnOps; ++i) {
    txn.ops.push_back(Op::Put(absl::StrCat("k", i), "v"));
    bytes += txn.ops.back().key.size() + 1;
  }
  txn.compares.push_back(Compare{"k0", 0});
  bytes += 2;
  txn.ops.back().value = std::string(kMaxTxnBytes - bytes + 1, 'x');
  EXPECT_EQ(MustCommit(txn), 1);
  auto r = store_->Range("k", "", 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs.size(), kMaxTxnOps);
}

// --- Range ------------------------------------------------------------------

TEST_P(KvStoreConformanceTest, RangeReturnsOnlyPrefixedKeysInOrder) {
  Txn txn;
  txn.ops = {Op::Put("b", "x"), Op::Put("a/2", "x"), Op::Put("a", "x"), Op::Put("a/1", "x"),
             Op::Put("a0", "x"), Op::Put("a/1/x", "x"), Op::Put("A/1", "x")};
  MustCommit(txn);
  auto r = store_->Range("a/", "", 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Keys(*r), ElementsAre("a/1", "a/1/x", "a/2"));
  EXPECT_FALSE(r->more);
  EXPECT_EQ(r->revision, 1);
}

TEST_P(KvStoreConformanceTest, RangeWithEmptyPrefixListsEverything) {
  Txn txn;
  txn.ops = {Op::Put("z", "1"), Op::Put("a", "2"), Op::Put("m", "3")};
  MustCommit(txn);
  auto r = store_->Range("", "", 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Keys(*r), ElementsAre("a", "m", "z"));
}

TEST_P(KvStoreConformanceTest, RangeHandlesPrefixOfAllFfBytes) {
  Txn txn;
  txn.ops = {Op::Put("\xff\xff", "1"), Op::Put("\xff\xff\x01", "2"), Op::Put("\xff\xfe", "3"),
             Op::Put("\xfe", "4")};
  MustCommit(txn);
  auto r = store_->Range("\xff\xff", "", 0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Keys(*r), ElementsAre("\xff\xff", "\xff\xff\x01"));
  auto ff = store_->Range("\xff", "", 0);
  ASSERT_TRUE(ff.ok()) << ff.status();
  EXPECT_THAT(Keys(*ff), ElementsAre("\xff\xfe", "\xff\xff", "\xff\xff\x01"));
}

TEST_P(KvStoreConformanceTest, RangePaginatesWithStartAfterAndMoreFlag) {
  Txn txn;
  for (int i = 0; i < 10; ++i) txn.ops.push_back(Op::Put(absl::StrCat("p/", i), absl::StrCat(i)));
  txn.ops.push_back(Op::Put("q/0", "outside"));
  MustCommit(txn);
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  while (true) {
    auto page = store_->Range("p/", after, 3);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    EXPECT_LE(page->kvs.size(), 3u);
    for (const auto& kv : page->kvs) seen.push_back(kv.key);
    if (!page->more) break;
    after = page->kvs.back().key;
  }
  EXPECT_EQ(pages, 4);
  EXPECT_THAT(seen, ElementsAre("p/0", "p/1", "p/2", "p/3", "p/4", "p/5", "p/6", "p/7", "p/8", "p/9"));
}

TEST_P(KvStoreConformanceTest, RangeExactlyFullPageReportsNoMore) {
  MustCommit(Put("p/1", "x"));
  MustCommit(Put("p/2", "x"));
  auto page = store_->Range("p/", "", 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->kvs.size(), 2u);
  EXPECT_FALSE(page->more);
}

TEST_P(KvStoreConformanceTest, RangeStartAfterOutsidePrefixIsClamped) {
  Txn txn;
  txn.ops = {Op::Put("m/1", "x"), Op::Put("m/2", "x")};
  MustCommit(txn);
  auto before = store_->Range("m/", "a", 0);
  ASSERT_TRUE(before.ok());
  EXPECT_THAT(Keys(*before), ElementsAre("m/1", "m/2"));
  auto past = store_->Range("m/", "z", 0);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->kvs.empty());
  auto inside = store_->Range("m/", "m/1", 0);
  ASSERT_TRUE(inside.ok());
  EXPECT_THAT(Keys(*inside), ElementsAre("m/2"));
}

TEST_P(KvStoreConformanceTest, RangeCarriesRevisionsOfEachKey) {
  MustCommit(Put("r/a", "1"));
  MustCommit(Put("r/b", "1"));
  MustCommit(Put("r/a", "2"));
  auto r = store_->Range("r/", "", 0);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->kvs, ElementsAre(KeyValue{"r/a", "2", 1, 3}, KeyValue{"r/b", "1", 2, 2}));
  EXPECT_EQ(r->revision, 3);
}

TEST_P(KvStoreConformanceTest, RangeNegativeLimitIsInvalidArgument) {
  auto r = store_->Range("", "", -1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("limit is -1"));
}

// Every transaction rewrites all ten keys with its own revision number, so
// any read that mixes two transactions shows differing values.
TEST_P(KvStoreConformanceTest, RangeIsAConsistentSnapshotUnderConcurrentCommits) {
  auto write_all = [this](int64_t tag) {
    Txn txn;
    for (int k = 0; k < 10; ++k) txn.ops.push_back(Op::Put(absl::StrCat("snap/", k), absl::StrCat(tag)));
    return store_->Commit(txn);
  };
  ASSERT_TRUE(write_all(0).ok());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int64_t i = 1; i <= 150 && !stop; ++i) ASSERT_TRUE(write_all(i).ok());
    stop = true;
  });
  int reads = 0;
  while (!stop || reads < 20) {
    auto r = store_->Range("snap/", "", 0);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->kvs.size(), 10u);
    for (const auto& kv : r->kvs) {
      ASSERT_EQ(kv.value, r->kvs[0].value) << "read mixed two transactions";
      ASSERT_EQ(kv.mod_revision, r->revision) << "revision is not the snapshot's";
    }
    ++reads;
  }
  writer.join();
}

// --- Watch ------------------------------------------------------------------

TEST_P(KvStoreConformanceTest, WatchDeliversEachTxnOnceWithAllItsEvents) {
  MustCommit(Put("gone", "x"));
  Collector events;
  auto watch = store_->Watch("", 0, events.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status();
  Txn txn;
  txn.ops = {Op::Put("a", "1"), Op::Delete("gone"), Op::Put("b", "2"), Op::Delete("never")};
  EXPECT_EQ(MustCommit(txn), 2);
  EXPECT_EQ(MustCommit(Put("a", "3")), 3);
  ASSERT_TRUE(events.WaitForRevision(3));
  auto got = events.responses();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].revision, 2);
  EXPECT_THAT(got[0].events, ElementsAre(Event{Event::Type::kPut, "a", "1", 2, 2},
                                         Event{Event::Type::kDelete, "gone", "", 0, 2},
                                         Event{Event::Type::kPut, "b", "2", 2, 2}));
  EXPECT_EQ(got[1].revision, 3);
  EXPECT_THAT(got[1].events, ElementsAre(Event{Event::Type::kPut, "a", "3", 2, 3}));
  EXPECT_TRUE(events.violations().empty());
}

TEST_P(KvStoreConformanceTest, WatchFromZeroStartsAfterTheCurrentRevision) {
  MustCommit(Put("a", "1"));
  MustCommit(Put("a", "2"));
  Collector events;
  auto watch = store_->Watch("", 0, events.Callback());
  ASSERT_TRUE(watch.ok());
  MustCommit(Put("a", "3"));
  ASSERT_TRUE(events.WaitForRevision(3));
  EXPECT_THAT(events.revisions(), ElementsAre(3));
}

TEST_P(KvStoreConformanceTest, WatchFiltersByPrefixAndSkipsUnrelatedRevisions) {
  Collector events;
  auto watch = store_->Watch("agents/", 0, events.Callback());
  ASSERT_TRUE(watch.ok());
  MustCommit(Put("entries/1", "x"));
  Txn mixed;
  mixed.ops = {Op::Put("entries/2", "x"), Op::Put("agents/a", "1")};
  MustCommit(mixed);
  MustCommit(Put("agentsX", "x"));
  MustCommit(Put("agents/b", "2"));
  ASSERT_TRUE(events.WaitForRevision(4));
  auto got = events.responses();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].revision, 2);
  EXPECT_THAT(got[0].events, ElementsAre(Event{Event::Type::kPut, "agents/a", "1", 2, 2}));
  EXPECT_EQ(got[1].revision, 4);
}

TEST_P(KvStoreConformanceTest, WatchFromOldRevisionReplaysHistoryThenFollows) {
  for (int i = 1; i <= 20; ++i) MustCommit(Put(absl::StrCat("h/", i % 4), absl::StrCat(i)));
  Collector events;
  auto watch = store_->Watch("h/", 5, events.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status();
  MustCommit(Put("h/new", "21"));
  ASSERT_TRUE(events.WaitForRevision(21));
  auto got = events.responses();
  ASSERT_EQ(got.size(), 17u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].revision, static_cast<int64_t>(5 + i));
    ASSERT_EQ(got[i].events.size(), 1u);
    EXPECT_EQ(got[i].events[0].value, absl::StrCat(5 + i));
    EXPECT_EQ(got[i].events[0].mod_revision, got[i].revision);
  }
  EXPECT_TRUE(events.violations().empty());
}

TEST_P(KvStoreConformanceTest, WatchFromFutureRevisionStartsThere) {
  MustCommit(Put("a", "1"));
  Collector events;
  auto watch = store_->Watch("", 4, events.Callback());
  ASSERT_TRUE(watch.ok()) << watch.status();
  for (int i = 0; i < 4; ++i) MustCommit(Put("a", "x"));
  ASSERT_TRUE(events.WaitForRevision(5));
  EXPECT_THAT(events.revisions(), ElementsAre(4, 5));
}

TEST_P(KvStoreConformanceTest, WatchAfterCompactionIsOutOfRange) {
  Reopen(StoreOptions{5, 1024});
  for (int i = 1; i <= 20; ++i) MustCommit(Put("c/k", absl::StrCat(i)));
  Collector unused;
  auto old = store_->Watch("c/", 15, unused.Callback());
  EXPECT_EQ(old.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(old.status().message(),
              HasSubstr("revision 15 has been compacted; the oldest retained revision is 16"));
  Collector events;
  auto oldest = store_->Watch("c/", 16, events.Callback());
  ASSERT_TRUE(oldest.ok()) << oldest.status();
  ASSERT_TRUE(events.WaitForRevision(20));
  EXPECT_THAT(events.revisions(), ElementsAre(16, 17, 18, 19, 20));
}

TEST_P(KvStoreConformanceTest, WatchOrderingHoldsUnderConcurrentWriters) {
  Collector all, odd;
  auto watch_all = store_->Watch("w/", 0, all.Callback());
  auto watch_odd = store_->Watch("w/1/", 0, odd.Callback());
  ASSERT_TRUE(watch_all.ok() && watch_odd.ok());
  constexpr int kThreads = 4;
  constexpr int kCommits = 60;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kCommits; ++i) {
        Txn txn;
        txn.ops = {Op::Put(absl::StrCat("w/", t % 2, "/", t, "/", i), "a"),
                   Op::Put(absl::StrCat("w/", t % 2, "/", t, "/", i, "/b"), "b")};
        ASSERT_TRUE(store_->Commit(txn).ok());
      }
    });
  }
  for (auto& w : writers) w.join();
  const int64_t last = *store_->CurrentRevision();
  ASSERT_EQ(last, kThreads * kCommits);
  ASSERT_TRUE(all.WaitForRevision(last));
  auto got = all.responses();
  ASSERT_EQ(got.size(), static_cast<size_t>(last));
  std::set<std::string> keys;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].revision, static_cast<int64_t>(i + 1)) << "gap or reorder";
    ASSERT_EQ(got[i].events.size(), 2u);
    for (const auto& e : got[i].events) {
      EXPECT_EQ(e.mod_revision, got[i].revision);
      EXPECT_TRUE(keys.insert(e.key).second) << "duplicate " << e.key;
    }
  }
  // The odd writers (t = 1, 3) committed half the revisions.
  ASSERT_TRUE(odd.WaitForCount(kCommits * 2));
  auto odd_revs = odd.revisions();
  EXPECT_EQ(odd_revs.size(), static_cast<size_t>(kCommits * 2));
  EXPECT_TRUE(std::is_sorted(odd_revs.begin(), odd_revs.end()));
  EXPECT_EQ(std::adjacent_find(odd_revs.begin(), odd_revs.end()), odd_revs.end());
  EXPECT_TRUE(all.violations().empty());
  EXPECT_TRUE(odd.violations().empty());
}

// Watches set up while commits stream in see exactly the revisions from
// their start: none lost in the setup window, none twice.
TEST_P(KvStoreConformanceTest, WatchSetupDuringCommitsLosesAndDuplicatesNothing) {
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop && i < 5000; ++i) {
      ASSERT_TRUE(store_->Commit(Put("s/k", absl::StrCat(i))).ok());
      absl::SleepFor(absl::Microseconds(200));
    }
  });
  struct Started {
    int64_t from;
    bool now;
    std::unique_ptr<Collector> events = std::make_unique<Collector>();
    std::unique_ptr<WatchHandle> handle;
  };
  std::vector<Started> watches;
  for (int i = 0; i < 12; ++i) {
    int64_t current = *store_->CurrentRevision();
    Started s;
    s.now = i % 3 == 0;
    // from 0 ("now"), the next revision, or a few back (replay path).
    s.from = s.now ? 0 : (i % 3 == 1 ? current + 1 : std::max<int64_t>(1, current - 3));
    auto h = store_->Watch("s/", s.from, s.events->Callback());
    ASSERT_TRUE(h.ok()) << h.status();
    s.handle = std::move(*h);
    watches.push_back(std::move(s));
    absl::SleepFor(absl::Milliseconds(5));
  }
  stop = true;
  writer.join();
  // Every watch's start is at or before this revision.
  const int64_t last = MustCommit(Put("s/k", "last"));
  for (auto& s : watches) {
    ASSERT_TRUE(s.events->WaitForRevision(last));
    auto revs = s.events->revisions();
    ASSERT_FALSE(revs.empty());
    if (!s.now) {
      EXPECT_EQ(revs.front(), s.from);
    }
    EXPECT_EQ(revs.back(), last);
    for (size_t i = 1; i < revs.size(); ++i) ASSERT_EQ(revs[i], revs[i - 1] + 1) << "gap or duplicate";
    EXPECT_TRUE(s.events->violations().empty());
  }
}

TEST_P(KvStoreConformanceTest, CancelledWatchIsNeverCalledAgain) {
  Collector cancelled, witness;
  auto watch = store_->Watch("", 0, cancelled.Callback());
  auto other = store_->Watch("", 0, witness.Callback());
  ASSERT_TRUE(watch.ok() && other.ok());
  MustCommit(Put("a", "1"));
  ASSERT_TRUE(cancelled.WaitForRevision(1));
  watch->reset();
  for (int i = 0; i < 5; ++i) MustCommit(Put("a", "x"));
  ASSERT_TRUE(witness.WaitForRevision(6));
  EXPECT_THAT(cancelled.revisions(), ElementsAre(1));
}

TEST_P(KvStoreConformanceTest, DestroyingHandleWhileCallbackRunsWaitsForIt) {
  absl::Notification entered, release;
  std::atomic<bool> finished{false};
  auto watch = store_->Watch("", 0, [&](absl::StatusOr<WatchResponse>) {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
    finished = true;
  });
  ASSERT_TRUE(watch.ok());
  MustCommit(Put("a", "1"));
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(kWait));
  std::thread releaser([&] {
    absl::SleepFor(absl::Milliseconds(50));
    release.Notify();
  });
  watch->reset();
  EXPECT_TRUE(finished) << "handle destructor returned while the callback was running";
  releaser.join();
}

TEST_P(KvStoreConformanceTest, CallbackMayDestroyItsOwnHandle) {
  std::unique_ptr<WatchHandle> handle;
  absl::Mutex mu;
  int calls = 0;
  absl::Notification done;
  auto watch = store_->Watch("", 0, [&](absl::StatusOr<WatchResponse>) {
    absl::MutexLock lock(&mu);
    ++calls;
    handle.reset();
    done.Notify();
  });
  ASSERT_TRUE(watch.ok());
  {
    absl::MutexLock lock(&mu);
    handle = std::move(*watch);
  }
  MustCommit(Put("a", "1"));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  Collector witness;
  auto other = store_->Watch("", 0, witness.Callback());
  MustCommit(Put("a", "2"));
  ASSERT_TRUE(witness.WaitForRevision(2));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(calls, 1);
}

TEST_P(KvStoreConformanceTest, CallbackMayCommit) {
  Collector reactions;
  auto reaction_watch = store_->Watch("reaction/", 0, reactions.Callback());
  auto trigger_watch = store_->Watch("trigger/", 0, [this](absl::StatusOr<WatchResponse> r) {
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(store_->Commit(Put(absl::StrCat("reaction/", r->revision), "x")).ok());
  });
  ASSERT_TRUE(reaction_watch.ok() && trigger_watch.ok());
  MustCommit(Put("trigger/1", "go"));
  ASSERT_TRUE(reactions.WaitForRevision(2));
  EXPECT_EQ(store_->Get("reaction/1")->mod_revision, 2);
}

// A watch whose callback is stuck must not hold up Commit; once unstuck it
// gets every revision in order (from its queue, then from history).
TEST_P(KvStoreConformanceTest, SlowWatchDoesNotBlockCommitsAndCatchesUp) {
  Reopen(StoreOptions{10000, 4});
  absl::Notification release;
  Collector events;
  auto watch = store_->Watch("", 0, [&](absl::StatusOr<WatchResponse> r) {
    release.WaitForNotification();
    events.Callback()(std::move(r));
  });
  ASSERT_TRUE(watch.ok());
  for (int i = 1; i <= 50; ++i) ASSERT_EQ(MustCommit(Put(absl::StrCat("k", i % 7), "v")), i);
  release.Notify();
  ASSERT_TRUE(events.WaitForRevision(50));
  std::vector<int64_t> expected(50);
  for (int i = 0; i < 50; ++i) expected[i] = i + 1;
  EXPECT_EQ(events.revisions(), expected);
}

// Commits that land while a watch is still replaying history are delivered
// after the replay, not skipped.
TEST_P(KvStoreConformanceTest, CommitsDuringHistoryReplayAreDeliveredAfterIt) {
  for (int i = 1; i <= 5; ++i) MustCommit(Put("k", absl::StrCat(i)));
  absl::Notification entered, release;
  Collector events;
  auto watch = store_->Watch("", 1, [&](absl::StatusOr<WatchResponse> r) {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
    events.Callback()(std::move(r));
  });
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(kWait));
  for (int i = 6; i <= 15; ++i) MustCommit(Put("k", absl::StrCat(i)));
  release.Notify();
  ASSERT_TRUE(events.WaitForRevision(15));
  std::vector<int64_t> expected(15);
  for (int i = 0; i < 15; ++i) expected[i] = i + 1;
  EXPECT_EQ(events.revisions(), expected);
}

TEST_P(KvStoreConformanceTest, SlowWatchBehindCompactionEndsWithOutOfRange) {
  Reopen(StoreOptions{5, 2});
  absl::Notification release;
  Collector events;
  auto watch = store_->Watch("", 0, [&](absl::StatusOr<WatchResponse> r) {
    release.WaitForNotification();
    events.Callback()(std::move(r));
  });
  ASSERT_TRUE(watch.ok());
  for (int i = 1; i <= 30; ++i) MustCommit(Put("k", "v"));
  release.Notify();
  auto error = events.WaitForError();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(error->message(), HasSubstr("watch fell behind"));
  // What it did get before falling behind has no gap.
  auto revs = events.revisions();
  for (size_t i = 1; i < revs.size(); ++i) EXPECT_EQ(revs[i], revs[i - 1] + 1);
  EXPECT_TRUE(events.violations().empty());
}

TEST_P(KvStoreConformanceTest, WatchRejectsBadArguments) {
  Collector events;
  auto negative = store_->Watch("", -1, events.Callback());
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(negative.status().message(), HasSubstr("from_revision is -1"));
  auto empty = store_->Watch("", 0, WatchCallback());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("callback is empty"));
  auto oversize = store_->Watch(std::string(kMaxKeyBytes + 1, 'p'), 0, events.Callback());
  EXPECT_EQ(oversize.status().code(), absl::StatusCode::kInvalidArgument);
}

// --- Close ------------------------------------------------------------------

TEST_P(KvStoreConformanceTest, CloseEndsWatchesWithUnavailableAndRejectsCalls) {
  Collector events;
  auto watch = store_->Watch("", 0, events.Callback());
  ASSERT_TRUE(watch.ok());
  MustCommit(Put("a", "1"));
  ASSERT_TRUE(events.WaitForRevision(1));
  ASSERT_TRUE(store_->Close().ok());
  auto error = events.error();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(error->message(), HasSubstr("datastore closed"));

  EXPECT_EQ(store_->Get("a").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Range("", "", 0).status().code(), absl::StatusCode::kFailedPrecondition);
  auto commit = store_->Commit(Put("b", "1"));
  EXPECT_EQ(commit.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(commit.status().message(), HasSubstr("closed"));
  EXPECT_EQ(store_->CurrentRevision().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Watch("", 0, events.Callback()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Close().ok());
  // The handle outlives the store.
  store_.reset();
  watch->reset();
  EXPECT_TRUE(events.violations().empty());
}

TEST_P(KvStoreConformanceTest, CloseFromCallbackIsRejected) {
  absl::Notification done;
  absl::Status from_callback;
  auto watch = store_->Watch("", 0, [&](absl::StatusOr<WatchResponse> r) {
    if (!r.ok()) return;
    from_callback = store_->Close();
    done.Notify();
  });
  ASSERT_TRUE(watch.ok());
  MustCommit(Put("a", "1"));
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(from_callback.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(from_callback.message(), HasSubstr("from a watch callback"));
  EXPECT_TRUE(store_->Get("a").ok());
}

// --- Helpers shared by the engines ------------------------------------------

TEST(PrefixSuccessor, IncrementsLastByteAndDropsTrailingFf) {
  EXPECT_EQ(internal::PrefixSuccessor("ab"), "ac");
  EXPECT_EQ(internal::PrefixSuccessor("a\xff\xff"), "b");
  EXPECT_EQ(internal::PrefixSuccessor("\xff"), std::nullopt);
  EXPECT_EQ(internal::PrefixSuccessor(""), std::nullopt);
}

TEST(MemoryStore, RejectsInvalidOptions) {
  MemoryStoreOptions zero_retained;
  zero_retained.retained_revisions = 0;
  auto bad = MemoryStore::Create(zero_retained);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("retained_revisions is 0"));
  MemoryStoreOptions zero_queue;
  zero_queue.watch_queue_limit = 0;
  auto bad_queue = MemoryStore::Create(zero_queue);
  EXPECT_EQ(bad_queue.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_queue.status().message(), HasSubstr("watch_queue_limit is 0"));
}

}  // namespace
}  // namespace sigil::server::datastore
