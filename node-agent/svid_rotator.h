#pragma once

// Keeps every cached entry's X509-SVID fresh: finds what the cache reports
// due, generates one new key and CSR per entry, asks the server in batches
// (BatchNewX509SVID, up to max_batch entries per call), checks each result
// and stores it with its next renewal time.
//
// Renewal time: a random point between renew_window_start and
// renew_window_end of the SVID's lifetime (default 40%..60%, i.e. "half
// life" with ±10% jitter), so SVIDs minted together — e.g. everything after
// an agent restart — are renewed spread over a window, not at one instant.
//
// Failures: an entry whose SVID could not be minted (server unreachable,
// entry refused, bad response) is retried after an exponential, jittered
// backoff (initial_backoff doubling up to max_backoff); meanwhile the cache
// keeps serving its current SVID until that expires.
//
// The rotator does no waiting of its own: RotateDue() does what is due now,
// and the caller (the agent's rotation thread, or a test with a FakeClock)
// decides when to call it again (SvidCache::NextEvent()).

#include <cstdint>
#include <random>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "node-agent/server_api.h"
#include "node-agent/svid_cache.h"
#include "spiffe/crypto/key.h"

namespace sigil::agent {

struct SvidRotatorOptions {
  // Not owned; must be set.
  const Clock* clock = nullptr;
  // Entries per BatchNewX509SVID call. Default: 500.
  size_t max_batch = 500;
  // Batches per RotateDue() call at most (the next call continues).
  // Default: 20.
  int max_batches_per_pass = 20;
  // Key type of workload SVIDs. Default: EC P-256.
  crypto::KeyType key_type = crypto::KeyType::kEcP256;
  // Renewal window as fractions of the lifetime. Default: 0.4 .. 0.6.
  double renew_window_start = 0.4;
  double renew_window_end = 0.6;
  // Retry backoff after failures. Default: 1 s doubling to 30 s.
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(30);
  // Seed of the jitter; 0 picks a random one. Default: 0.
  uint64_t seed = 0;
};

class SvidRotator {
 public:
  // `cache` and `api` are not owned and must outlive the rotator.
  SvidRotator(SvidCache* cache, ServerApi* api, SvidRotatorOptions options);

  struct PassResult {
    int minted = 0;
    int failed = 0;
    // The last failure of the pass (OK when there was none).
    absl::Status last_error;
  };
  // Mints SVIDs for every entry due now (up to max_batch *
  // max_batches_per_pass of them). Not thread-safe with itself: one
  // rotation thread calls it.
  PassResult RotateDue();

  // The backoff before attempt `failures` + 1 (jittered; for tests).
  absl::Duration Backoff(int failures);

 private:
  // Checks one minted chain and stores it; the failure otherwise.
  absl::Status Accept(const DueSvid& due, std::vector<crypto::Certificate> chain, const crypto::PrivateKey& key,
                      absl::Time now);

  SvidCache* const cache_;
  ServerApi* const api_;
  const SvidRotatorOptions options_;
  absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sigil::agent
