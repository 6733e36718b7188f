#include "node-agent/svid_rotator.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "node-agent/renewal.h"
#include "spdlog/spdlog.h"
#include "spiffe/crypto/csr.h"
#include "spiffe/x509svid.h"

namespace sigil::agent {

SvidRotator::SvidRotator(SvidCache* cache, ServerApi* api, SvidRotatorOptions options)
    : cache_(cache), api_(api), options_(options), rng_(options.seed != 0 ? options.seed : std::random_device{}()) {}

absl::Duration SvidRotator::Backoff(int failures) {
  absl::Duration base = options_.initial_backoff;
  for (int i = 1; i < failures && base < options_.max_backoff; ++i) base *= 2;
  base = std::min(base, options_.max_backoff);
  absl::MutexLock lock(&mu_);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return base * jitter(rng_);
}

absl::Status SvidRotator::Accept(const DueSvid& due, std::vector<crypto::Certificate> chain,
                                 const crypto::PrivateKey& key, absl::Time now) {
  auto id = spiffe::ValidateLeaf(chain.front());
  if (!id.ok()) return absl::InvalidArgumentError(absl::StrCat("malformed X509-SVID: ", id.status().message()));
  if (*id != due.spiffe_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("the server minted ", id->ToString(), " instead of ", due.spiffe_id.ToString()));
  }
  if (chain.front().public_key() != key.public_key()) {
    return absl::InvalidArgumentError("the server minted the X509-SVID for another key than the CSR's");
  }
  std::shared_ptr<const spiffe::Bundle> bundle = cache_->bundle();
  if (bundle == nullptr) return absl::FailedPreconditionError("no trust bundle to verify the X509-SVID with");
  spiffe::BundleSet bundles;
  bundles.Add(*bundle);
  auto verified = spiffe::Verify(chain, bundles, now);
  if (!verified.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the X509-SVID does not verify against the bundle: ", verified.status().message()));
  }
  const absl::Time not_before = chain.front().not_before();
  const absl::Time not_after = chain.front().not_after();
  double fraction;
  {
    absl::MutexLock lock(&mu_);
    std::uniform_real_distribution<double> dist(options_.renew_window_start, options_.renew_window_end);
    fraction = dist(rng_);
  }
  absl::Time renew_at = RenewalTime(not_before, not_after, fraction);
  cache_->StoreSvid(due.entry_id, due.version, std::move(chain), key, renew_at);
  return absl::OkStatus();
}

SvidRotator::PassResult SvidRotator::RotateDue() {
  PassResult result;
  for (int batch = 0; batch < options_.max_batches_per_pass; ++batch) {
    const absl::Time now = options_.clock->Now();
    std::vector<DueSvid> due = cache_->DueSvids(now, options_.max_batch);
    if (due.empty()) break;
    std::vector<X509SvidRequest> requests;
    std::vector<crypto::PrivateKey> keys;
    std::vector<DueSvid> sent;
    requests.reserve(due.size());
    keys.reserve(due.size());
    for (auto& d : due) {
      auto key = crypto::PrivateKey::Generate(options_.key_type);
      absl::StatusOr<std::string> csr =
          key.ok() ? crypto::CreateCsrDer(*key, {}, {d.spiffe_id.ToString()}) : absl::StatusOr<std::string>(key.status());
      if (!csr.ok()) {
        result.failed++;
        result.last_error = csr.status();
        cache_->MarkFailed(d.entry_id, d.version, now + Backoff(d.failures + 1));
        continue;
      }
      requests.push_back({d.entry_id, std::move(*csr)});
      keys.push_back(std::move(*key));
      sent.push_back(std::move(d));
    }
    if (requests.empty()) continue;
    auto minted = api_->BatchNewX509Svid(requests);
    const absl::Time after = options_.clock->Now();
    if (!minted.ok()) {
      for (const auto& d : sent) cache_->MarkFailed(d.entry_id, d.version, after + Backoff(d.failures + 1));
      result.failed += static_cast<int>(sent.size());
      result.last_error = minted.status();
      spdlog::warn("cannot renew {} X509-SVIDs: {}; the cache keeps serving the current ones", sent.size(),
                   minted.status().ToString());
      return result;
    }
    for (size_t i = 0; i < sent.size(); ++i) {
      absl::Status s = (*minted)[i].ok() ? Accept(sent[i], std::move(*(*minted)[i]), keys[i], after)
                                         : (*minted)[i].status();
      if (s.ok()) {
        result.minted++;
        continue;
      }
      result.failed++;
      result.last_error = s;
      cache_->MarkFailed(sent[i].entry_id, sent[i].version, after + Backoff(sent[i].failures + 1));
      spdlog::warn("cannot mint the X509-SVID of entry {} ({}): {}", sent[i].entry_id, sent[i].spiffe_id.ToString(),
                   s.ToString());
    }
    if (due.size() < options_.max_batch) break;
  }
  if (result.minted > 0) spdlog::debug("minted {} X509-SVIDs", result.minted);
  return result;
}

}  // namespace sigil::agent
