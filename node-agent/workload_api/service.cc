#include "node-agent/workload_api/service.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/id.h"
#include "spiffe/jwtsvid.h"

namespace sigil::agent {
namespace {

constexpr char kSecurityHeader[] = "workload.spiffe.io";

// How often a blocked unary call looks at whether its client went away.
constexpr absl::Duration kCancelPoll = absl::Milliseconds(100);

bool HasSecurityHeader(const grpc::ServerContextBase& ctx) {
  auto range = ctx.client_metadata().equal_range(kSecurityHeader);
  int count = 0;
  bool is_true = false;
  for (auto it = range.first; it != range.second; ++it) {
    ++count;
    is_true = it->second == grpc::string_ref("true");
  }
  return count == 1 && is_true;
}

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

std::string Outcome(const grpc::Status& s) {
  if (s.ok()) return "OK";
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), ": ",
                      s.error_message());
}

std::string SerializeDeterministic(const google::protobuf::MessageLite& m) {
  std::string out;
  out.reserve(m.ByteSizeLong());
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeWithCachedSizes(&coded);
  }
  return out;
}

// Whether `view` can answer a call now (true), must be waited on (false), or
// ends the call (error). `needs_identity` is false only for bundle calls
// under allow_unauthenticated_verifiers, which need just the agent's bundle.
absl::StatusOr<bool> Ready(const WorkloadView& view, bool needs_identity, bool wait_over) {
  if (!view.identities.empty()) return true;
  if (needs_identity) {
    if (view.synced) return absl::PermissionDeniedError("no identity issued");
  } else {
    if (view.bundle != nullptr) return true;
    if (view.synced) return absl::UnavailableError("trust bundle not available");
  }
  if (!wait_over) return false;
  return absl::UnavailableError("agent has not synchronized with the server yet");
}

}  // namespace

namespace internal {

// Remembers the PKCS#8 DER of SVID keys, keyed by their public key (which
// determines the private key). Two generations: an encoding unused for two
// generations of kGeneration new keys is dropped (and wiped), so keys of
// rotated SVIDs do not linger. Thread-safe.
class KeyEncodingCache {
 public:
  ~KeyEncodingCache() {
    Wipe(&current_);
    Wipe(&previous_);
  }

  std::string Pkcs8(const crypto::PrivateKey& key) {
    const std::string& spki = key.public_key().spki_der();
    {
      absl::MutexLock lock(&mu_);
      auto it = current_.find(spki);
      if (it != current_.end()) return it->second;
      auto old = previous_.find(spki);
      if (old != previous_.end()) {
        std::string der = old->second;
        current_.insert(previous_.extract(old));
        return der;
      }
    }
    std::string der = key.ToPkcs8Der();
    absl::MutexLock lock(&mu_);
    if (current_.size() >= kGeneration) {
      Wipe(&previous_);
      previous_.swap(current_);
    }
    current_.emplace(spki, der);
    return der;
  }

 private:
  static constexpr size_t kGeneration = 4096;
  using Map = std::map<std::string, std::string>;
  static void Wipe(Map* m) {
    for (auto& [spki, der] : *m) ::explicit_bzero(der.data(), der.size());
    m->clear();
  }

  absl::Mutex mu_;
  Map current_ ABSL_GUARDED_BY(mu_);
  Map previous_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

namespace {

X509SVIDResponse BuildX509SvidResponse(const WorkloadView& view, internal::KeyEncodingCache* keys) {
  X509SVIDResponse resp;
  const std::string bundle = view.bundle != nullptr ? view.bundle->X509AuthoritiesDer() : "";
  for (const X509Identity& id : view.identities) {
    X509SVID* svid = resp.add_svids();
    svid->set_spiffe_id(id.spiffe_id.ToString());
    svid->set_x509_svid(crypto::ConcatDer(id.chain));
    svid->set_x509_svid_key(keys->Pkcs8(id.key));
    svid->set_bundle(bundle);
    svid->set_hint(id.hint);
  }
  for (const auto& [td, b] : view.federated_bundles) {
    if (b != nullptr)
      (*resp.mutable_federated_bundles())[b->trust_domain().IdString()] = b->X509AuthoritiesDer();
  }
  return resp;
}

// Own bundle always; federated bundles only for a workload with an identity
// (they are what its identities federate with).
X509BundlesResponse BuildX509BundlesResponse(const WorkloadView& view, internal::KeyEncodingCache*) {
  X509BundlesResponse resp;
  if (view.bundle != nullptr) {
    (*resp.mutable_bundles())[view.bundle->trust_domain().IdString()] = view.bundle->X509AuthoritiesDer();
  }
  if (!view.identities.empty()) {
    for (const auto& [td, b] : view.federated_bundles) {
      if (b != nullptr) (*resp.mutable_bundles())[b->trust_domain().IdString()] = b->X509AuthoritiesDer();
    }
  }
  return resp;
}

JWTBundlesResponse BuildJwtBundlesResponse(const WorkloadView& view, internal::KeyEncodingCache*) {
  JWTBundlesResponse resp;
  if (view.bundle != nullptr) {
    (*resp.mutable_bundles())[view.bundle->trust_domain().IdString()] = view.bundle->ToJwtJwksJson();
  }
  if (!view.identities.empty()) {
    for (const auto& [td, b] : view.federated_bundles) {
      if (b != nullptr) (*resp.mutable_bundles())[b->trust_domain().IdString()] = b->ToJwtJwksJson();
    }
  }
  return resp;
}

// Set by an IdentitySource change callback, awaited by a blocked unary call.
class ChangeFlag {
 public:
  void Set() {
    absl::MutexLock lock(&mu_);
    changed_ = true;
  }
  void WaitUntil(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(&changed_), deadline);
    changed_ = false;
  }

 private:
  absl::Mutex mu_;
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
};

// Debug log line for a unary call.
class CallLog {
 public:
  explicit CallLog(const char* method) : method_(method) {}
  pid_t* pid() { return &pid_; }
  void SetSelectors(size_t selectors) { selectors_ = selectors; }
  grpc::Status Done(grpc::Status s) const {
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("workload api: {} pid={} selectors={} -> {}", method_, pid_, selectors_, Outcome(s));
    }
    return s;
  }

 private:
  const char* method_;
  pid_t pid_ = 0;
  size_t selectors_ = 0;
};

}  // namespace

namespace internal {

// One server stream: attests the caller, subscribes to its view and pushes
// every distinct state. Shared by the gRPC reactor (until OnDone) and by the
// tasks and timer queued for it; the reactor is touched only until Finish
// has been called.
template <typename Response>
class PushStream final : public std::enable_shared_from_this<PushStream<Response>> {
 public:
  using Build = Response (*)(const WorkloadView&, KeyEncodingCache*);

  static grpc::ServerWriteReactor<Response>* Start(WorkloadApiService* service,
                                                   grpc::CallbackServerContext* ctx, const char* method,
                                                   Build build, bool needs_identity) {
    auto* reactor = new Reactor();
    auto stream = std::make_shared<PushStream>(service, reactor, ctx->peer(), method, build, needs_identity);
    reactor->stream_ = stream;
    if (!HasSecurityHeader(*ctx)) {
      stream->Fail(absl::InvalidArgumentError("security header missing from request"));
      return reactor;
    }
    service->executor_.Run([stream] { stream->Attest(); });
    return reactor;
  }

  PushStream(WorkloadApiService* service, grpc::ServerWriteReactor<Response>* reactor, std::string peer,
             const char* method, Build build, bool needs_identity)
      : service_(service),
        reactor_(reactor),
        peer_(std::move(peer)),
        method_(method),
        build_(build),
        needs_identity_(needs_identity),
        sync_deadline_(absl::Now() + service->options_.first_sync_timeout) {}

  // The last message sent holds a private key.
  ~PushStream() { ::explicit_bzero(sent_.data(), sent_.size()); }

 private:
  class Reactor final : public grpc::ServerWriteReactor<Response> {
   public:
    void OnWriteDone(bool ok) override { stream_->OnWriteDone(ok); }
    void OnCancel() override { stream_->Fail(absl::CancelledError("cancelled by the client")); }
    void OnDone() override { delete this; }
    std::shared_ptr<PushStream> stream_;
  };

  void Attest() {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
    }
    pid_t pid = 0;
    absl::StatusOr<WorkloadApiService::Caller> caller = service_->Authenticate(peer_, &pid);
    {
      absl::MutexLock lock(&mu_);
      pid_ = pid;
      if (caller.ok()) selectors_ = std::move(caller->selectors);
    }
    if (!caller.ok()) {
      Fail(caller.status());
      return;
    }
    // Subscribe before the first read, so that no change falls in between.
    std::weak_ptr<PushStream> weak = this->shared_from_this();
    Executor* executor = &service_->executor_;
    auto queued = queued_;
    std::unique_ptr<IdentitySource::Subscription> sub =
        service_->source_->Subscribe(selectors_, [weak, executor, queued] {
          if (queued->exchange(true)) return;
          executor->Run([weak, queued] {
            queued->store(false);
            if (auto stream = weak.lock()) stream->Refresh();
          });
        });
    bool finished;
    {
      absl::MutexLock lock(&mu_);
      finished = finished_;
      if (!finished) subscription_ = std::move(sub);
    }
    // A stream that finished meanwhile unsubscribes as `sub` goes, outside mu_.
    if (finished) return;
    Refresh();
  }

  // Re-reads the view and pushes it if it differs from what the client has.
  void Refresh() {
    absl::MutexLock refresh_lock(&refresh_mu_);
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
    }
    WorkloadView view = service_->source_->View(selectors_);
    bool wait_over = absl::Now() >= sync_deadline_;
    absl::StatusOr<bool> ready = Ready(view, needs_identity_, wait_over);
    if (!ready.ok()) {
      Fail(ready.status());
      return;
    }
    if (!*ready) {
      if (!timer_armed_) {
        timer_armed_ = true;
        std::weak_ptr<PushStream> weak = this->shared_from_this();
        service_->executor_.RunAfter(sync_deadline_ - absl::Now(), [weak] {
          if (auto stream = weak.lock()) stream->Refresh();
        });
      }
      return;
    }
    Response msg = build_(view, service_->keys_.get());
    std::string bytes = SerializeDeterministic(msg);
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    if (writing_) {
      // The client will hold `sent_` once the write completes.
      if (bytes == sent_) {
        pending_.reset();
      } else {
        pending_.emplace(std::move(msg), std::move(bytes));
      }
      return;
    }
    if (bytes == sent_) return;
    StartWriteLocked(std::move(msg), std::move(bytes));
  }

  void StartWriteLocked(Response msg, std::string bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    in_flight_ = std::move(msg);
    sent_ = std::move(bytes);
    writing_ = true;
    ++updates_;
    reactor_->StartWrite(&in_flight_);
  }

  void OnWriteDone(bool ok) {
    std::unique_ptr<IdentitySource::Subscription> sub;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      in_flight_ = Response();
      if (finished_) {
        if (deferred_finish_.has_value()) {
          reactor_->Finish(*deferred_finish_);
          deferred_finish_.reset();
        }
        return;
      }
      if (!ok) {
        sub = FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream write failed"));
      } else if (pending_.has_value()) {
        auto [msg, bytes] = std::move(*pending_);
        pending_.reset();
        StartWriteLocked(std::move(msg), std::move(bytes));
      }
    }
  }

  void Fail(const absl::Status& status) {
    std::unique_ptr<IdentitySource::Subscription> sub;
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    sub = FinishLocked(ToGrpc(status));
    // `sub` is destroyed after mu_ is released (declared before the lock).
  }

  // Finishes the call (after the write in flight, if any) and hands back the
  // subscription for the caller to destroy outside mu_.
  std::unique_ptr<IdentitySource::Subscription> FinishLocked(grpc::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    pending_.reset();
    if (spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("workload api: {} pid={} selectors={} updates={} -> {}", method_, pid_, selectors_.size(),
                    updates_, Outcome(status));
    }
    if (writing_) {
      deferred_finish_ = std::move(status);
    } else {
      reactor_->Finish(std::move(status));
    }
    return std::move(subscription_);
  }

  WorkloadApiService* const service_;
  grpc::ServerWriteReactor<Response>* const reactor_;
  const std::string peer_;
  const char* const method_;
  const Build build_;
  const bool needs_identity_;
  const absl::Time sync_deadline_;
  const std::shared_ptr<std::atomic<bool>> queued_ = std::make_shared<std::atomic<bool>>(false);

  // Serializes Refresh, so that a newer view is never overtaken by an older
  // one. Taken before mu_.
  absl::Mutex refresh_mu_;
  bool timer_armed_ ABSL_GUARDED_BY(refresh_mu_) = false;

  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(refresh_mu_);
  // Written once, by Attest, before any Refresh.
  pid_t pid_ ABSL_GUARDED_BY(mu_) = 0;
  attestors::Selectors selectors_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> deferred_finish_ ABSL_GUARDED_BY(mu_);
  Response in_flight_ ABSL_GUARDED_BY(mu_);
  // Serialization of the last message written (or being written).
  std::string sent_ ABSL_GUARDED_BY(mu_);
  std::optional<std::pair<Response, std::string>> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t updates_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<IdentitySource::Subscription> subscription_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

WorkloadApiService::WorkloadApiService(WorkloadApiServiceOptions options, IdentitySource* source,
                                       const attestors::workload::WorkloadAttestorRegistry* attestors,
                                       const UnixListener* peers)
    : options_(std::move(options)),
      source_(source),
      attestors_(attestors),
      peers_(peers),
      clock_(options_.clock != nullptr ? options_.clock : RealClock::Get()),
      keys_(std::make_unique<internal::KeyEncodingCache>()),
      executor_(options_.stream_workers) {}

WorkloadApiService::~WorkloadApiService() { Stop(); }

void WorkloadApiService::Stop() { executor_.Stop(); }

absl::StatusOr<WorkloadApiService::Caller> WorkloadApiService::Authenticate(const std::string& peer,
                                                                            pid_t* pid) const {
  absl::StatusOr<std::shared_ptr<const PeerCredentials>> creds = peers_->Lookup(peer);
  if (!creds.ok()) {
    return absl::InternalError(absl::StrCat("cannot identify the caller: ", creds.status().message()));
  }
  const PeerCredentials& c = **creds;
  *pid = c.pid;
  if (c.pid <= 0) {
    return absl::PermissionDeniedError(
        "caller's process is not visible from the agent's pid namespace (SO_PEERCRED pid 0)");
  }
  if (!StillRunning(c)) return absl::PermissionDeniedError("workload process exited before attestation");
  absl::StatusOr<attestors::Selectors> selectors = attestors_->Attest({c.pid, c.uid, c.gid});
  if (!StillRunning(c)) return absl::PermissionDeniedError("workload process exited during attestation");
  if (!selectors.ok()) {
    return absl::Status(selectors.status().code(),
                        absl::StrCat("workload attestation failed: ", selectors.status().message()));
  }
  return Caller{std::move(*creds), std::move(*selectors)};
}

absl::StatusOr<WorkloadView> WorkloadApiService::WaitForView(const attestors::Selectors& selectors,
                                                             grpc::ServerContext* ctx,
                                                             bool needs_identity) const {
  const absl::Time deadline = absl::Now() + options_.first_sync_timeout;
  WorkloadView view = source_->View(selectors);
  absl::StatusOr<bool> ready = Ready(view, needs_identity, false);
  if (!ready.ok()) return ready.status();
  if (*ready) return view;
  auto changed = std::make_shared<ChangeFlag>();
  std::unique_ptr<IdentitySource::Subscription> sub =
      source_->Subscribe(selectors, [changed] { changed->Set(); });
  while (true) {
    view = source_->View(selectors);
    ready = Ready(view, needs_identity, absl::Now() >= deadline);
    if (!ready.ok()) return ready.status();
    if (*ready) return view;
    if (ctx->IsCancelled()) return absl::CancelledError("cancelled while waiting for the agent's first sync");
    changed->WaitUntil(std::min(deadline, absl::Now() + kCancelPoll));
  }
}

grpc::ServerWriteReactor<::X509SVIDResponse>* WorkloadApiService::FetchX509SVID(
    grpc::CallbackServerContext* ctx, const ::X509SVIDRequest*) {
  return internal::PushStream<X509SVIDResponse>::Start(this, ctx, "FetchX509SVID", &BuildX509SvidResponse,
                                                       /*needs_identity=*/true);
}

grpc::ServerWriteReactor<::X509BundlesResponse>* WorkloadApiService::FetchX509Bundles(
    grpc::CallbackServerContext* ctx, const ::X509BundlesRequest*) {
  return internal::PushStream<X509BundlesResponse>::Start(
      this, ctx, "FetchX509Bundles", &BuildX509BundlesResponse, !options_.allow_unauthenticated_verifiers);
}

grpc::ServerWriteReactor<::JWTBundlesResponse>* WorkloadApiService::FetchJWTBundles(
    grpc::CallbackServerContext* ctx, const ::JWTBundlesRequest*) {
  return internal::PushStream<JWTBundlesResponse>::Start(
      this, ctx, "FetchJWTBundles", &BuildJwtBundlesResponse, !options_.allow_unauthenticated_verifiers);
}

grpc::Status WorkloadApiService::FetchJWTSVID(grpc::ServerContext* ctx, const ::JWTSVIDRequest* request,
                                              ::JWTSVIDResponse* response) {
  CallLog log("FetchJWTSVID");
  if (!HasSecurityHeader(*ctx)) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "security header missing from request"));
  }
  if (request->audience_size() == 0) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "audience must be specified"));
  }
  std::vector<std::string> audience(request->audience().begin(), request->audience().end());
  if (std::find(audience.begin(), audience.end(), "") != audience.end()) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "audience values must not be empty"));
  }
  if (!request->spiffe_id().empty()) {
    absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::FromString(request->spiffe_id());
    if (!id.ok()) {
      return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   absl::StrCat("invalid requested SPIFFE ID: ", id.status().message())));
    }
  }
  absl::StatusOr<Caller> caller = Authenticate(ctx->peer(), log.pid());
  if (!caller.ok()) return log.Done(ToGrpc(caller.status()));
  log.SetSelectors(caller->selectors.size());

  absl::StatusOr<WorkloadView> view = WaitForView(caller->selectors, ctx, /*needs_identity=*/true);
  if (!view.ok()) return log.Done(ToGrpc(view.status()));
  absl::StatusOr<std::vector<JwtIdentity>> svids =
      source_->FetchJwtSvids(caller->selectors, request->spiffe_id(), audience);
  if (!svids.ok()) return log.Done(ToGrpc(svids.status()));
  if (svids->empty())
    return log.Done(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no identity issued"));
  for (JwtIdentity& id : *svids) {
    JWTSVID* svid = response->add_svids();
    svid->set_spiffe_id(id.spiffe_id.ToString());
    svid->set_svid(std::move(id.token));
    svid->set_hint(std::move(id.hint));
  }
  return log.Done(grpc::Status::OK);
}

grpc::Status WorkloadApiService::ValidateJWTSVID(grpc::ServerContext* ctx,
                                                 const ::ValidateJWTSVIDRequest* request,
                                                 ::ValidateJWTSVIDResponse* response) {
  CallLog log("ValidateJWTSVID");
  if (!HasSecurityHeader(*ctx)) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "security header missing from request"));
  }
  if (request->audience().empty()) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "audience must be specified"));
  }
  if (request->svid().empty()) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "svid must be specified"));
  }
  absl::StatusOr<Caller> caller = Authenticate(ctx->peer(), log.pid());
  if (!caller.ok()) return log.Done(ToGrpc(caller.status()));
  log.SetSelectors(caller->selectors.size());

  // Validation needs only the agent's bundles, not an identity; before the
  // first sync there may be none yet.
  absl::StatusOr<WorkloadView> view = WaitForView(caller->selectors, ctx, /*needs_identity=*/false);
  if (!view.ok()) return log.Done(ToGrpc(view.status()));
  spiffe::BundleSet bundles = source_->AllBundles();
  absl::StatusOr<spiffe::JwtSvid> svid =
      spiffe::ParseAndValidate(request->svid(), bundles, request->audience(), clock_->Now());
  if (!svid.ok()) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(svid.status().message())));
  }

  google::protobuf::Struct claims;
  google::protobuf::util::Status parsed =
      google::protobuf::util::JsonStringToMessage(svid->claims_json, &claims);
  if (!parsed.ok()) {
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 absl::StrCat("JWT-SVID claims: ", parsed.message().as_string())));
  }
  if (!options_.trust_domain.empty() && svid->id.trust_domain().name() != options_.trust_domain) {
    std::set<std::string> allowed(options_.allowed_foreign_jwt_claims.begin(),
                                  options_.allowed_foreign_jwt_claims.end());
    allowed.insert({"sub", "aud", "exp"});
    auto* fields = claims.mutable_fields();
    for (auto it = fields->begin(); it != fields->end();) {
      if (allowed.count(it->first) == 0) {
        it = fields->erase(it);
      } else {
        ++it;
      }
    }
  }
  response->set_spiffe_id(svid->id.ToString());
  *response->mutable_claims() = std::move(claims);
  return log.Done(grpc::Status::OK);
}

}  // namespace sigil::agent
