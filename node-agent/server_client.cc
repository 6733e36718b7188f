#include "node-agent/server_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "apitypes/convert.h"
#include "node-agent/convert.h"
#include "spdlog/spdlog.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"
#include "spire/api/server/svid/v1/svid.grpc.pb.h"

namespace sigil::agent {

namespace agentv1 = spire::api::server::agent::v1;
namespace bundlev1 = spire::api::server::bundle::v1;
namespace svidv1 = spire::api::server::svid::v1;

absl::Status VerifyServerChain(const std::string& chain_pem, const spiffe::Bundle* bundle,
                               const spiffe::TrustDomain& td, absl::Time now) {
  if (bundle == nullptr) {
    return absl::FailedPreconditionError("no trust bundle is known to verify the server with");
  }
  if (chain_pem.empty()) return absl::UnauthenticatedError("the server presented no certificate");
  auto chain = crypto::Certificate::ParsePemChain(chain_pem);
  if (!chain.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the server's certificate chain does not parse: ", chain.status().message()));
  }
  spiffe::BundleSet bundles;
  bundles.Add(*bundle);
  auto id = spiffe::Verify(*chain, bundles, now);
  if (!id.ok()) {
    return absl::UnauthenticatedError(absl::StrCat("the server's X509-SVID does not verify against the trust bundle of ",
                                                   td.name(), ": ", id.status().message()));
  }
  auto expected = spiffe::SpiffeId::FromPath(td, "/spire/server");
  if (!expected.ok() || *id != *expected) {
    return absl::UnauthenticatedError(absl::StrCat("the server presented ", id->ToString(), ", expected ",
                                                   expected.ok() ? expected->ToString() : "a server ID"));
  }
  return absl::OkStatus();
}

struct ServerClient::VerifierState {
  VerifierState(BundleGetter b, spiffe::TrustDomain t, bool insecure, const Clock* c, std::string target)
      : bundle(std::move(b)), td(std::move(t)), insecure_bootstrap(insecure), clock(c), target(std::move(target)) {}

  absl::Status Check(const std::string& chain_pem) {
    std::shared_ptr<const spiffe::Bundle> current = bundle();
    if (current == nullptr && insecure_bootstrap) {
      verified.fetch_add(1);
      spdlog::warn(
          "INSECURE BOOTSTRAP: accepting the server at {} WITHOUT verifying its identity (insecure_bootstrap is set "
          "and no trust bundle is known yet); anyone able to intercept this connection can impersonate the server",
          target);
      return absl::OkStatus();
    }
    absl::Status s = VerifyServerChain(chain_pem, current.get(), td, clock->Now());
    if (s.ok()) {
      verified.fetch_add(1);
      return s;
    }
    refused.fetch_add(1);
    spdlog::warn("refusing the server at {}: {}", target, std::string(s.message()));
    absl::MutexLock lock(&mu);
    last_refusal = std::string(s.message());
    last_refusal_at = clock->Now();
    return s;
  }

  const BundleGetter bundle;
  const spiffe::TrustDomain td;
  const bool insecure_bootstrap;
  const Clock* const clock;
  const std::string target;
  std::atomic<int64_t> verified{0};
  std::atomic<int64_t> refused{0};
  absl::Mutex mu;
  std::string last_refusal ABSL_GUARDED_BY(mu);
  absl::Time last_refusal_at ABSL_GUARDED_BY(mu) = absl::InfinitePast();
};

namespace {

// gRPC runs this on every TLS handshake with the server (synchronously).
class ServerCertificateVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit ServerCertificateVerifier(std::shared_ptr<ServerClient::VerifierState> state) : state_(std::move(state)) {}

  // grpc::experimental::ExternalCertificateVerifier
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request, std::function<void(grpc::Status)>,
              grpc::Status* sync_status) override {
    grpc::string_ref full = request->peer_cert_full_chain();
    std::string chain(full.data(), full.size());
    if (chain.empty()) {
      grpc::string_ref leaf = request->peer_cert();
      chain.assign(leaf.data(), leaf.size());
    }
    absl::Status s = state_->Check(chain);
    *sync_status = s.ok() ? grpc::Status::OK
                          : grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(s.message()));
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::shared_ptr<ServerClient::VerifierState> state_;
};

// Keeps a call cancellable by ServerClient::CancelAll() while in scope.
class CallScope {
 public:
  CallScope(ServerClient* client, grpc::ClientContext* ctx) : client_(client), ctx_(ctx), live_(client->Register(ctx)) {}
  ~CallScope() { client_->Unregister(ctx_); }
  bool live() const { return live_; }

 private:
  ServerClient* const client_;
  grpc::ClientContext* const ctx_;
  const bool live_;
};

absl::Status Cancelled(const char* rpc) {
  return absl::CancelledError(absl::StrCat(rpc, ": the agent is shutting down"));
}

}  // namespace

void ServerClient::CancelAll() {
  absl::MutexLock lock(&calls_mu_);
  cancelled_ = true;
  for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
}

bool ServerClient::Register(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&calls_mu_);
  calls_.insert(ctx);
  if (cancelled_) ctx->TryCancel();
  return !cancelled_;
}

void ServerClient::Unregister(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&calls_mu_);
  calls_.erase(ctx);
}

absl::StatusOr<std::unique_ptr<ServerClient>> ServerClient::Create(ServerClientOptions options, BundleGetter bundle) {
  if (options.target.empty()) return absl::InvalidArgumentError("server client: no server address");
  if (options.clock == nullptr) return absl::InvalidArgumentError("server client: no clock");
  if (!bundle) return absl::InvalidArgumentError("server client: no bundle source");
  return std::unique_ptr<ServerClient>(new ServerClient(std::move(options), std::move(bundle)));
}

ServerClient::ServerClient(ServerClientOptions options, BundleGetter bundle)
    : options_(std::move(options)),
      verifier_state_(std::make_shared<VerifierState>(std::move(bundle), options_.trust_domain,
                                                      options_.insecure_bootstrap, options_.clock, options_.target)) {
  channel_ = MakeChannel(nullptr);
}

ServerClient::~ServerClient() = default;

std::shared_ptr<grpc::Channel> ServerClient::MakeChannel(const spiffe::X509Svid* identity) const {
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_verify_server_certs(false);
  tls.set_check_call_host(false);
  tls.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<ServerCertificateVerifier>(verifier_state_));
  if (identity != nullptr) {
    std::vector<grpc::experimental::IdentityKeyCertPair> pairs;
    pairs.push_back({identity->key.ToPkcs8Pem(), crypto::ToPem(identity->chain)});
    tls.set_certificate_provider(std::make_shared<grpc::experimental::StaticDataCertificateProvider>(pairs));
    tls.watch_identity_key_cert_pairs();
  }
  grpc::ChannelArguments args;
  // A channel per identity: never share a connection made with another SVID.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Notice a server that vanished without closing the sync stream. Five
  // minutes is what gRPC servers accept by default without a GOAWAY.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 5 * 60 * 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  int max_backoff_ms = static_cast<int>(absl::ToInt64Milliseconds(options_.max_reconnect_backoff));
  max_backoff_ms = std::max(max_backoff_ms, 10);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(1000, max_backoff_ms));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::min(1000, max_backoff_ms));
  return grpc::CreateCustomChannel(options_.target, grpc::experimental::TlsCredentials(tls), args);
}

void ServerClient::SetIdentity(const spiffe::X509Svid& svid) {
  auto channel = MakeChannel(&svid);
  absl::MutexLock lock(&mu_);
  channel_ = std::move(channel);
  has_identity_ = true;
}

void ServerClient::ClearIdentity() {
  auto channel = MakeChannel(nullptr);
  absl::MutexLock lock(&mu_);
  channel_ = std::move(channel);
  has_identity_ = false;
}

bool ServerClient::has_identity() const {
  absl::MutexLock lock(&mu_);
  return has_identity_;
}

void ServerClient::SetOnIdentityRefused(std::function<void(const absl::Status&)> callback) {
  absl::MutexLock lock(&mu_);
  on_refused_ = std::move(callback);
}

std::shared_ptr<grpc::Channel> ServerClient::AuthenticatedChannel() const {
  absl::MutexLock lock(&mu_);
  return channel_;
}

int64_t ServerClient::servers_verified() const { return verifier_state_->verified.load(); }
int64_t ServerClient::servers_refused() const { return verifier_state_->refused.load(); }

void ServerClient::SetDeadline(grpc::ClientContext* ctx) const {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.rpc_timeout)));
}

absl::Status ServerClient::ToStatus(const grpc::Status& status, const char* rpc) const {
  if (status.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(rpc, ": ", status.error_message());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    absl::MutexLock lock(&verifier_state_->mu);
    if (options_.clock->Now() - verifier_state_->last_refusal_at < absl::Minutes(1)) {
      absl::StrAppend(&message, " (the server could not be verified: ", verifier_state_->last_refusal, ")");
    }
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), message);
}

absl::Status ServerClient::CheckStatus(const grpc::Status& status, const char* rpc) {
  absl::Status s = ToStatus(status, rpc);
  if (absl::IsPermissionDenied(s)) {
    std::function<void(const absl::Status&)> callback;
    {
      absl::MutexLock lock(&mu_);
      callback = on_refused_;
    }
    if (callback) callback(s);
  }
  return s;
}

absl::StatusOr<AttestationResult> ServerClient::AttestAgent(attestors::node::AgentAttestor* attestor,
                                                           const std::string& csr_der) {
  auto payload = attestor->Payload();
  if (!payload.ok()) return payload.status();
  auto stub = agentv1::Agent::NewStub(MakeChannel(nullptr));
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  CallScope scope(this, &ctx);
  if (!scope.live()) return Cancelled("AttestAgent");
  auto stream = stub->AttestAgent(&ctx);
  agentv1::AttestAgentRequest req;
  auto* params = req.mutable_params();
  params->mutable_data()->set_type(attestor->name());
  params->mutable_data()->set_payload(*payload);
  params->mutable_params()->set_csr(csr_der);
  stream->Write(req);

  agentv1::AttestAgentResponse resp;
  std::optional<agentv1::AttestAgentResponse::Result> result;
  absl::Status attestor_error;
  while (stream->Read(&resp)) {
    if (resp.has_result()) {
      result = resp.result();
      break;
    }
    auto answer = attestor->Answer(resp.challenge());
    if (!answer.ok()) {
      attestor_error = answer.status();
      ctx.TryCancel();
      break;
    }
    agentv1::AttestAgentRequest reply;
    reply.set_challenge_response(*answer);
    if (!stream->Write(reply)) break;
  }
  stream->WritesDone();
  grpc::Status finished = stream->Finish();
  if (!attestor_error.ok()) return attestor_error;
  if (!finished.ok()) return ToStatus(finished, "AttestAgent");
  if (!result.has_value()) return absl::UnavailableError("AttestAgent: the server ended the exchange without a result");
  auto chain = ChainFromDer(result->svid().cert_chain(), "AttestAgent result svid.cert_chain");
  if (!chain.ok()) return chain.status();
  auto id = spiffe::ValidateLeaf(chain->front());
  if (!id.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("AttestAgent: the agent SVID is malformed: ", id.status().message()));
  }
  if (!id->MemberOf(options_.trust_domain) || id->path().rfind("/spire/agent/", 0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("AttestAgent: the server issued ", id->ToString(),
                                                   ", which is not an agent ID of ", options_.trust_domain.name()));
  }
  return AttestationResult{*id, std::move(*chain), result->reattestable()};
}

absl::StatusOr<std::vector<crypto::Certificate>> ServerClient::RenewAgent(const std::string& csr_der) {
  auto stub = agentv1::Agent::NewStub(AuthenticatedChannel());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  CallScope scope(this, &ctx);
  if (!scope.live()) return Cancelled("RenewAgent");
  agentv1::RenewAgentRequest req;
  req.mutable_params()->set_csr(csr_der);
  agentv1::RenewAgentResponse resp;
  absl::Status s = CheckStatus(stub->RenewAgent(&ctx, req, &resp), "RenewAgent");
  if (!s.ok()) return s;
  return ChainFromDer(resp.svid().cert_chain(), "RenewAgent svid.cert_chain");
}

absl::StatusOr<spiffe::Bundle> ServerClient::GetBundle() {
  auto stub = bundlev1::Bundle::NewStub(AuthenticatedChannel());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  CallScope scope(this, &ctx);
  if (!scope.live()) return Cancelled("GetBundle");
  bundlev1::GetBundleRequest req;
  spire::api::types::Bundle resp;
  absl::Status s = CheckStatus(stub->GetBundle(&ctx, req, &resp), "GetBundle");
  if (!s.ok()) return s;
  auto received = ReceiveBundle(resp);
  if (!received.ok()) return received.status();
  if (received->bundle.trust_domain() != options_.trust_domain) {
    return absl::InvalidArgumentError(absl::StrCat("GetBundle: the server returned the bundle of ",
                                                   received->bundle.trust_domain().name(), ", expected ",
                                                   options_.trust_domain.name()));
  }
  return std::move(received->bundle);
}

absl::StatusOr<std::vector<X509SvidResult>> ServerClient::BatchNewX509Svid(
    const std::vector<X509SvidRequest>& requests) {
  auto stub = svidv1::SVID::NewStub(AuthenticatedChannel());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  CallScope scope(this, &ctx);
  if (!scope.live()) return Cancelled("BatchNewX509SVID");
  svidv1::BatchNewX509SVIDRequest req;
  for (const auto& r : requests) {
    auto* p = req.add_params();
    p->set_entry_id(r.entry_id);
    p->set_csr(r.csr_der);
  }
  svidv1::BatchNewX509SVIDResponse resp;
  absl::Status s = CheckStatus(stub->BatchNewX509SVID(&ctx, req, &resp), "BatchNewX509SVID");
  if (!s.ok()) return s;
  if (resp.results_size() != static_cast<int>(requests.size())) {
    return absl::InternalError(absl::StrCat("BatchNewX509SVID: the server returned ", resp.results_size(),
                                            " results for ", requests.size(), " requests"));
  }
  std::vector<X509SvidResult> out;
  out.reserve(requests.size());
  for (const auto& r : resp.results()) {
    if (r.status().code() != 0) {
      out.push_back(absl::Status(static_cast<absl::StatusCode>(r.status().code()), r.status().message()));
      continue;
    }
    out.push_back(ChainFromDer(r.svid().cert_chain(), "BatchNewX509SVID svid.cert_chain"));
  }
  return out;
}

absl::StatusOr<MintedJwtSvid> ServerClient::NewJwtSvid(const std::string& entry_id,
                                                       const std::vector<std::string>& audience) {
  auto stub = svidv1::SVID::NewStub(AuthenticatedChannel());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  CallScope scope(this, &ctx);
  if (!scope.live()) return Cancelled("NewJWTSVID");
  svidv1::NewJWTSVIDRequest req;
  req.set_entry_id(entry_id);
  for (const auto& a : audience) req.add_audience(a);
  svidv1::NewJWTSVIDResponse resp;
  absl::Status s = CheckStatus(stub->NewJWTSVID(&ctx, req, &resp), "NewJWTSVID");
  if (!s.ok()) return s;
  auto id = apitypes::SpiffeIdFromProto(resp.svid().id());
  if (!id.ok()) return absl::InvalidArgumentError(absl::StrCat("NewJWTSVID svid.id: ", id.status().message()));
  if (resp.svid().token().empty()) return absl::InvalidArgumentError("NewJWTSVID: the server returned no token");
  absl::Time now = options_.clock->Now();
  absl::Time issued = resp.svid().issued_at() > 0 ? absl::FromUnixSeconds(resp.svid().issued_at()) : now;
  absl::Time expires = absl::FromUnixSeconds(resp.svid().expires_at());
  if (expires <= issued) return absl::InvalidArgumentError("NewJWTSVID: the token expires before it was issued");
  return MintedJwtSvid{*id, resp.svid().token(), issued, expires};
}

std::unique_ptr<sigil::agent::v1::AgentSync::Stub> ServerClient::SyncStub() {
  return sigil::agent::v1::AgentSync::NewStub(AuthenticatedChannel());
}

}  // namespace sigil::agent
