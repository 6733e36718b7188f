#include "node-agent/agent.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "attestors/workload/unix/unix_attestor.h"
#include "common/status_macros.h"
#include "node-agent/node_attestors.h"
#include "node-agent/workload_api/server.h"
#include "spdlog/spdlog.h"

namespace sigil::agent {
namespace {

bool Retryable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsAborted(s) ||
         absl::IsResourceExhausted(s) || absl::IsCancelled(s);
}

// The rotation thread wakes at least this often, whatever is scheduled.
constexpr absl::Duration kMaxRotationSleep = absl::Seconds(30);
// ... and never spins faster than this.
constexpr absl::Duration kMinRotationSleep = absl::Milliseconds(10);

}  // namespace

Agent::Agent(const AgentSettings& settings, AgentOptions options)
    : settings_(settings),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : RealClock::Get()) {
  options_.rotation.clock = clock_;
  options_.identity.clock = clock_;
  options_.cache.clock = clock_;
}

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(const AgentSettings& settings, AgentOptions options) {
  std::unique_ptr<Agent> agent(new Agent(settings, std::move(options)));
  SIGIL_RETURN_IF_ERROR(agent->Init());
  return agent;
}

Agent::~Agent() { Shutdown(); }

absl::Status Agent::Init() {
  const spiffe::TrustDomain& td = settings_.trust_domain;
  store_ = std::make_unique<AgentStateStore>(settings_.data_dir, td);
  SIGIL_RETURN_IF_ERROR(store_->Prepare());
  SIGIL_ASSIGN_OR_RETURN(lock_, store_->Lock());
  cache_ = std::make_unique<SvidCache>(td, options_.cache);

  auto stored_bundle = store_->LoadBundle();
  if (stored_bundle.ok()) {
    cache_->SetBootstrapBundle(*stored_bundle);
    absl::MutexLock lock(&bundle_mu_);
    saved_bundle_pem_ = stored_bundle->X509AuthoritiesPem();
  } else {
    if (!absl::IsNotFound(stored_bundle.status())) {
      spdlog::warn("ignoring the stored bundle: {}", std::string(stored_bundle.status().message()));
    }
    if (settings_.trust_bundle.has_value()) cache_->SetBootstrapBundle(*settings_.trust_bundle);
  }

  ServerClientOptions client_options(td);
  client_options.target = settings_.ServerTarget();
  client_options.insecure_bootstrap = settings_.insecure_bootstrap;
  client_options.clock = clock_;
  client_options.rpc_timeout = options_.rpc_timeout;
  client_options.max_reconnect_backoff = options_.sync.max_backoff;
  SvidCache* cache = cache_.get();
  SIGIL_ASSIGN_OR_RETURN(client_, ServerClient::Create(client_options, [cache] { return cache->bundle(); }));

  if (!settings_.node_attestor.empty()) {
    SIGIL_ASSIGN_OR_RETURN(attestor_, CreateNodeAttestor(settings_));
  }
  identity_ = std::make_unique<AgentIdentity>(store_.get(), client_.get(), cache_.get(), attestor_.get(),
                                              options_.identity);
  SIGIL_ASSIGN_OR_RETURN(resumed_, identity_->Resume());
  if (!resumed_) {
    if (attestor_ == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "there is no usable agent SVID in ", settings_.data_dir,
          ", so the agent must attest, but no node attestor is configured: give a join token (-joinToken or "
          "agent.join_token) or configure plugins.NodeAttestor"));
    }
    if (cache_->bundle() == nullptr && !settings_.insecure_bootstrap) {
      return absl::FailedPreconditionError(absl::StrCat(
          "agent.trust_bundle_path: there is no agent state in ", settings_.data_dir,
          ", so the agent must bootstrap, and it needs the server's trust bundle to verify the server: set "
          "trust_bundle_path (-trustBundle) to a PEM file of the trust domain's CA certificates, or "
          "insecure_bootstrap (-insecureBootstrap) to skip verifying the server on first contact"));
    }
  } else if (cache_->bundle() == nullptr && !settings_.insecure_bootstrap) {
    return absl::FailedPreconditionError(absl::StrCat(
        "agent.trust_bundle_path: ", store_->Path(kBundleFile),
        " is missing, so the agent cannot verify the server: set trust_bundle_path (-trustBundle) or "
        "insecure_bootstrap (-insecureBootstrap)"));
  }

  rotator_ = std::make_unique<SvidRotator>(cache_.get(), client_.get(), options_.rotation);

  if (options_.serve_workload_api) {
    attestors::workload::UnixAttestorOptions unix_options;
    unix_options.discover_workload_path = settings_.discover_workload_path;
    unix_options.workload_size_limit = settings_.workload_size_limit;
    std::vector<std::unique_ptr<attestors::workload::WorkloadAttestor>> attestors;
    attestors.push_back(std::make_unique<attestors::workload::UnixAttestor>(unix_options));
    SIGIL_ASSIGN_OR_RETURN(workload_attestors_,
                           attestors::workload::WorkloadAttestorRegistry::Create(std::move(attestors)));
    WorkloadApiServer::Options wl;
    wl.socket_path = settings_.socket_path;
    wl.service.trust_domain = td.name();
    wl.service.clock = clock_;
    SIGIL_ASSIGN_OR_RETURN(workload_api_, WorkloadApiServer::Start(wl, cache_.get(), workload_attestors_.get()));
  }

  client_->SetOnIdentityRefused([this](const absl::Status& s) { OnIdentityRefused(s); });
  cache_->SetChangeListener([this](const SvidCache::ChangeEvent& e) { OnCacheChange(e); });
  spdlog::info("sigil-agent for trust domain {}: server {}, data_dir {}{}", td.name(), settings_.ServerTarget(),
               settings_.data_dir,
               options_.serve_workload_api ? absl::StrCat(", Workload API on ", settings_.socket_path) : "");
  control_thread_ = std::thread([this] { ControlLoop(); });
  return absl::OkStatus();
}

void Agent::OnIdentityRefused(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (refused_.ok()) refused_ = status;
}

void Agent::OnCacheChange(const SvidCache::ChangeEvent& event) {
  if (event.entries_changed || event.bundle_changed) {
    absl::MutexLock lock(&mu_);
    rotation_poke_ = true;
  }
  if (!event.bundle_changed) return;
  std::shared_ptr<const spiffe::Bundle> bundle = cache_->bundle();
  if (bundle == nullptr) return;
  std::string pem = bundle->X509AuthoritiesPem();
  absl::MutexLock lock(&bundle_mu_);
  if (pem == saved_bundle_pem_) return;
  absl::Status s = store_->SaveBundle(*bundle);
  if (!s.ok()) {
    spdlog::error("cannot store the updated trust bundle: {}", s.ToString());
    return;
  }
  saved_bundle_pem_ = std::move(pem);
  spdlog::info("trust bundle updated ({} X.509 authorities)", bundle->x509_authorities().size());
}

bool Agent::SleepUnlessStopping(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  return !stopping_;
}

absl::Status Agent::ReattestFailure(const absl::Status& refusal, const absl::Status& attest) const {
  std::string hint;
  if (settings_.node_attestor == "join_token") {
    hint =
        "; join tokens are single-use: create a new one (sigil-server token generate) and restart the agent with "
        "-joinToken <token>";
  }
  return absl::Status(attest.code(), absl::StrCat("the server refused the agent's identity (", refusal.message(),
                                                  ") and re-attestation failed: ", attest.message(), hint));
}

void Agent::ControlLoop() {
  bool have_identity = resumed_;
  absl::Status refusal;
  absl::Duration backoff = options_.attest_initial_backoff;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    if (!have_identity) {
      absl::Status s = identity_->Attest();
      if (!s.ok()) {
        if (Retryable(s)) {
          spdlog::warn("attestation failed ({}); retrying in {}", s.ToString(), absl::FormatDuration(backoff));
          if (!SleepUnlessStopping(backoff)) break;
          backoff = std::min(backoff * 2, options_.attest_max_backoff);
          continue;
        }
        absl::Status fatal = refusal.ok() ? absl::Status(s.code(), absl::StrCat("node attestation failed: ", s.message()))
                                          : ReattestFailure(refusal, s);
        spdlog::error("{}", std::string(fatal.message()));
        absl::MutexLock lock(&mu_);
        fatal_ = fatal;
        stopped_ = true;
        return;
      }
      have_identity = true;
      backoff = options_.attest_initial_backoff;
    }
    refusal = RunSession();
    if (refusal.ok()) break;
    spdlog::error("the server refused the agent's identity: {}; deleting the agent SVID and attesting again",
                  std::string(refusal.message()));
    absl::Status forgotten = identity_->Forget();
    if (!forgotten.ok()) spdlog::error("cannot delete the agent SVID: {}", forgotten.ToString());
    have_identity = false;
  }
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

absl::Status Agent::RunSession() {
  {
    absl::MutexLock lock(&mu_);
    refused_ = absl::OkStatus();
    session_stop_ = false;
    rotation_poke_ = true;
    syncer_ = std::make_unique<Syncer>(client_.get(), cache_.get(), options_.sync);
    syncer_->Start();
  }
  cache_->SetServerApi(client_.get());
  std::thread rotation([this] { RotationLoop(); });
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !refused_.ok(); };
    mu_.Await(absl::Condition(&done));
    refused = stopping_ ? absl::OkStatus() : refused_;
    session_stop_ = true;
  }
  rotation.join();
  std::unique_ptr<Syncer> syncer;
  {
    absl::MutexLock lock(&mu_);
    syncer = std::move(syncer_);
  }
  syncer->Stop();
  cache_->SetServerApi(nullptr);
  return refused;
}

void Agent::RotationLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (session_stop_) return;
      rotation_poke_ = false;
    }
    rotator_->RotateDue();
    identity_->RenewIfDue().IgnoreError();
    const absl::Time now = clock_->Now();
    cache_->Maintain(now);
    absl::Time next = std::min({cache_->NextEvent(), identity_->NextRenewal(), now + kMaxRotationSleep});
    absl::Duration wait = std::max(next - clock_->Now(), kMinRotationSleep);
    absl::MutexLock lock(&mu_);
    auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return session_stop_ || rotation_poke_; };
    mu_.AwaitWithTimeout(absl::Condition(&wake), wait);
  }
}

absl::Status Agent::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&stopped_));
  return fatal_;
}

void Agent::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  // Calls in flight (attestation, minting) end now rather than at their
  // deadline.
  if (client_ != nullptr) client_->CancelAll();
  if (control_thread_.joinable()) control_thread_.join();
  if (workload_api_ != nullptr) workload_api_->Shutdown();
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

bool Agent::WaitUntilSynced(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!cache_->synced()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

Syncer* Agent::syncer() {
  absl::MutexLock lock(&mu_);
  return syncer_.get();
}

}  // namespace sigil::agent
