#include "node-agent/syncer.h"

#include <algorithm>

#include "spdlog/spdlog.h"

namespace sigil::agent {

Syncer::Syncer(ServerClient* client, SvidCache* cache, SyncerOptions options)
    : client_(client), cache_(cache), options_(options) {}

Syncer::~Syncer() { Stop(); }

void Syncer::Start() { thread_ = std::thread([this] { Run(); }); }

void Syncer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

int64_t Syncer::streams_opened() const {
  absl::MutexLock lock(&mu_);
  return streams_opened_;
}

int64_t Syncer::updates_applied() const {
  absl::MutexLock lock(&mu_);
  return updates_applied_;
}

bool Syncer::Sleep(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  return !stopping_;
}

void Syncer::Run() {
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    grpc::ClientContext ctx;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      active_ = &ctx;
      streams_opened_++;
    }
    if (!client_->Register(&ctx)) {
      client_->Unregister(&ctx);
      absl::MutexLock lock(&mu_);
      active_ = nullptr;
      return;
    }
    auto stub = client_->SyncStub();
    sigil::agent::v1::WatchAuthorizedRequest request;
    auto reader = stub->WatchAuthorized(&ctx, request);
    sigil::agent::v1::WatchAuthorizedUpdate update;
    int64_t received = 0;
    while (reader->Read(&update)) {
      absl::Status applied = cache_->ApplyUpdate(update);
      if (!applied.ok()) spdlog::warn("sync: {}", std::string(applied.message()));
      if (received == 0) {
        spdlog::info("synchronized with the server: {} entries (revision {})", cache_->entry_count(),
                     update.revision());
      }
      received++;
      absl::MutexLock lock(&mu_);
      updates_applied_++;
    }
    grpc::Status finished = reader->Finish();
    client_->Unregister(&ctx);
    {
      absl::MutexLock lock(&mu_);
      active_ = nullptr;
      if (stopping_) return;
    }
    absl::Status s = client_->CheckStatus(finished, "WatchAuthorized");
    if (received > 0) backoff = options_.initial_backoff;
    absl::Duration wait;
    {
      absl::MutexLock lock(&mu_);
      std::uniform_real_distribution<double> jitter(0.5, 1.0);
      wait = backoff * jitter(rng_);
    }
    spdlog::warn("sync stream ended ({}); serving the cache as it is and reconnecting in {}",
                 s.ok() ? "closed by the server" : s.ToString(), absl::FormatDuration(absl::Trunc(wait, absl::Milliseconds(1))));
    if (!Sleep(wait)) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace sigil::agent
