// Datastore engine figures: commit rate with fsync (RocksDB, WriteOptions::sync
// = true), the same from several threads (commits serialize), point reads,
// Range scans, and watch delivery; the in-memory engine as the ceiling.
//
// The RocksDB store lives in a fresh directory under $SIGIL_BENCH_DIR
// (default: $TMPDIR or /tmp); put it on the disk you want to measure, since
// commit/s is the disk's fsync rate.

#include <stdlib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "server/datastore/kv_store.h"
#include "server/datastore/memory_store.h"
#include "server/datastore/rocksdb_store.h"

namespace sigil::server::datastore {
namespace {

enum Engine : int64_t { kMemory = 0, kRocksDb = 1 };

const char* EngineLabel(int64_t engine) { return engine == kMemory ? "memory" : "rocksdb"; }

// One store shared by a benchmark's threads; thread 0 opens and closes it
// (the benchmark loop's start and end are barriers for all threads).
struct Shared {
  std::string dir;
  std::unique_ptr<KvStore> store;
};
Shared* g_shared = nullptr;

std::string BenchRoot() {
  for (const char* var : {"SIGIL_BENCH_DIR", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') return v;
  }
  return "/tmp";
}

bool OpenShared(benchmark::State& state, int64_t engine) {
  g_shared = new Shared;
  if (engine == kMemory) {
    auto store = MemoryStore::Create();
    if (!store.ok()) {
      state.SkipWithError(store.status().ToString().c_str());
      return false;
    }
    g_shared->store = std::move(*store);
    return true;
  }
  std::string tmpl = BenchRoot() + "/sigil_datastore_bench_XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return false;
  }
  g_shared->dir = tmpl;
  auto store = RocksDbStore::Open(tmpl + "/data");
  if (!store.ok()) {
    state.SkipWithError(store.status().ToString().c_str());
    return false;
  }
  g_shared->store = std::move(*store);
  return true;
}

void CloseShared() {
  if (g_shared == nullptr) return;
  g_shared->store.reset();
  if (!g_shared->dir.empty()) std::filesystem::remove_all(g_shared->dir);
  delete g_shared;
  g_shared = nullptr;
}

// Fills `count` keys "bench/<n>" with `value_size`-byte values, 100 per txn.
bool Fill(benchmark::State& state, int64_t count, size_t value_size) {
  const std::string value(value_size, 'v');
  for (int64_t i = 0; i < count;) {
    Txn txn;
    for (int j = 0; j < 100 && i < count; ++j, ++i) {
      txn.ops.push_back(Op::Put(absl::StrCat("bench/", 100000000 + i), value));
    }
    if (auto rev = g_shared->store->Commit(txn); !rev.ok()) {
      state.SkipWithError(rev.status().ToString().c_str());
      return false;
    }
  }
  return true;
}

// One put per commit. Args: engine, value size.
void BM_CommitPut(benchmark::State& state) {
  const int64_t engine = state.range(0);
  if (state.thread_index() == 0 && !OpenShared(state, engine)) return;
  const std::string value(static_cast<size_t>(state.range(1)), 'v');
  int64_t i = 0;
  for (auto _ : state) {
    Txn txn;
    txn.ops.push_back(Op::Put(absl::StrCat("t", state.thread_index(), "/", i++ % 1000), value));
    auto rev = g_shared->store->Commit(txn);
    if (!rev.ok()) {
      state.SkipWithError(rev.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(EngineLabel(engine));
  if (state.thread_index() == 0) CloseShared();
}
BENCHMARK(BM_CommitPut)
    ->ArgNames({"engine", "value_bytes"})
    ->Args({kRocksDb, 200})
    ->Args({kRocksDb, 4096})
    ->Args({kMemory, 200})
    ->UseRealTime();
BENCHMARK(BM_CommitPut)->ArgNames({"engine", "value_bytes"})->Args({kRocksDb, 200})->Threads(4)->UseRealTime();

// A compare-and-swap update, the shape of every entry/agent mutation above
// the datastore: Get, then Commit comparing the mod_revision.
void BM_CompareAndSwap(benchmark::State& state) {
  const int64_t engine = state.range(0);
  if (!OpenShared(state, engine)) return;
  Txn seed;
  seed.ops.push_back(Op::Put("cas", "0"));
  if (!g_shared->store->Commit(seed).ok()) state.SkipWithError("seed failed");
  for (auto _ : state) {
    auto kv = g_shared->store->Get("cas");
    if (!kv.ok()) {
      state.SkipWithError(kv.status().ToString().c_str());
      break;
    }
    Txn txn;
    txn.compares.push_back(Compare{"cas", kv->mod_revision});
    txn.ops.push_back(Op::Put("cas", kv->value));
    if (!g_shared->store->Commit(txn).ok()) {
      state.SkipWithError("commit failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(EngineLabel(engine));
  CloseShared();
}
BENCHMARK(BM_CompareAndSwap)->ArgNames({"engine"})->Arg(kRocksDb)->Arg(kMemory)->UseRealTime();

// Point reads over 10000 keys of 200 bytes.
void BM_Get(benchmark::State& state) {
  const int64_t engine = state.range(0);
  if (!OpenShared(state, engine) || !Fill(state, 10000, 200)) return;
  int64_t i = 0;
  for (auto _ : state) {
    auto kv = g_shared->store->Get(absl::StrCat("bench/", 100000000 + (i++ * 7919) % 10000));
    benchmark::DoNotOptimize(kv);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(EngineLabel(engine));
  CloseShared();
}
BENCHMARK(BM_Get)->ArgNames({"engine"})->Arg(kRocksDb)->Arg(kMemory);

// Lists 10000 keys of 200 bytes in pages. Items = keys returned.
void BM_Range(benchmark::State& state) {
  const int64_t engine = state.range(0);
  const int64_t page = state.range(1);
  if (!OpenShared(state, engine) || !Fill(state, 10000, 200)) return;
  int64_t keys = 0;
  for (auto _ : state) {
    std::string after;
    while (true) {
      auto r = g_shared->store->Range("bench/", after, page);
      if (!r.ok()) {
        state.SkipWithError(r.status().ToString().c_str());
        return;
      }
      keys += static_cast<int64_t>(r->kvs.size());
      if (!r->more) break;
      after = r->kvs.back().key;
    }
  }
  state.SetItemsProcessed(keys);
  state.SetLabel(EngineLabel(engine));
  CloseShared();
}
BENCHMARK(BM_Range)
    ->ArgNames({"engine", "page"})
    ->Args({kRocksDb, 100})
    ->Args({kRocksDb, 0})
    ->Args({kMemory, 100})
    ->Unit(benchmark::kMillisecond);

// Commit-to-callback: one watcher, each iteration commits and waits until the
// callback has seen that revision. Measures the durable commit plus dispatch.
void BM_CommitToWatchDelivery(benchmark::State& state) {
  const int64_t engine = state.range(0);
  if (!OpenShared(state, engine)) return;
  absl::Mutex mu;
  int64_t seen = 0;
  auto watch = g_shared->store->Watch("", 0, [&](absl::StatusOr<WatchResponse> r) {
    if (!r.ok()) return;
    absl::MutexLock lock(&mu);
    seen = r->revision;
  });
  if (!watch.ok()) {
    state.SkipWithError(watch.status().ToString().c_str());
    return;
  }
  Txn txn;
  txn.ops.push_back(Op::Put("w", std::string(200, 'v')));
  for (auto _ : state) {
    auto rev = g_shared->store->Commit(txn);
    if (!rev.ok()) {
      state.SkipWithError(rev.status().ToString().c_str());
      break;
    }
    absl::MutexLock lock(&mu);
    const int64_t want = *rev;
    auto delivered = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return seen >= want; };
    mu.Await(absl::Condition(&delivered));
  }
  watch->reset();
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(EngineLabel(engine));
  CloseShared();
}
BENCHMARK(BM_CommitToWatchDelivery)->ArgNames({"engine"})->Arg(kRocksDb)->Arg(kMemory)->UseRealTime();

}  // namespace
}  // namespace sigil::server::datastore

BENCHMARK_MAIN();
