#include "node-agent/fake_server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "apitypes/convert.h"
#include "sigil/agent/v1/sync.grpc.pb.h"
#include "spiffe/crypto/csr.h"
#include "spiffe/x509svid.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"
#include "spire/api/server/svid/v1/svid.grpc.pb.h"

namespace sigil::agent::testing {

namespace agentv1 = spire::api::server::agent::v1;
namespace bundlev1 = spire::api::server::bundle::v1;
namespace svidv1 = spire::api::server::svid::v1;
namespace syncv1 = sigil::agent::v1;

namespace {

grpc::Status Grpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace

class FakeServer::Impl {
 public:
  Impl(FakeServerOptions options, const TestCa& root)
      : options_(std::move(options)),
        td_(spiffe::TrustDomain::FromString(options_.trust_domain).value()),
        root_(root),
        signing_(root.Intermediate(options_.trust_domain, options_.clock->Now() - absl::Hours(1))),
        jwt_key_(crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value()),
        server_key_(crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value()) {
    const absl::Time now = options_.clock->Now();
    server_chain_ = signing_.IssueSvid(td_.IdString() + "/spire/server", server_key_.public_key().spki_der(),
                                       now - absl::Hours(1), now + absl::Hours(24 * 365));
  }

  // ---- state, guarded by mu_
  struct AgentRecord {
    std::string active_serial;
    std::string next_serial;
    bool banned = false;
  };

  absl::StatusOr<spiffe::SpiffeId> Authenticate(const grpc::ServerContext& ctx) {
    // On the server side gRPC's x509_pem_cert_chain holds what the client
    // sent after its leaf (OpenSSL's SSL_get_peer_cert_chain), so the leaf
    // comes from x509_pem_cert.
    std::string leaf_pem, rest_pem;
    auto auth = ctx.auth_context();
    if (auth != nullptr) {
      auto leaf = auth->FindPropertyValues("x509_pem_cert");
      if (!leaf.empty()) leaf_pem.assign(leaf.front().data(), leaf.front().size());
      auto rest = auth->FindPropertyValues("x509_pem_cert_chain");
      if (!rest.empty()) rest_pem.assign(rest.front().data(), rest.front().size());
    }
    if (leaf_pem.empty()) return absl::PermissionDeniedError("an agent SVID is required");
    auto leaf = crypto::Certificate::ParsePemChain(leaf_pem);
    if (!leaf.ok() || leaf->size() != 1) return absl::PermissionDeniedError("unparsable client certificate");
    std::vector<crypto::Certificate> chain_certs = *leaf;
    if (!rest_pem.empty()) {
      auto rest = crypto::Certificate::ParsePemChain(rest_pem);
      if (!rest.ok()) return absl::PermissionDeniedError("unparsable client certificate chain");
      for (const auto& c : *rest) {
        if (!(c == chain_certs.front())) chain_certs.push_back(c);
      }
    }
    absl::StatusOr<std::vector<crypto::Certificate>> chain = std::move(chain_certs);
    spiffe::BundleSet bundles;
    bundles.Add(BundleLocked());
    auto id = spiffe::Verify(*chain, bundles, options_.clock->Now());
    if (!id.ok()) return absl::PermissionDeniedError(absl::StrCat("client SVID does not verify: ", id.status().message()));
    if (!absl::StartsWith(id->path(), "/spire/agent/")) return absl::PermissionDeniedError("caller is not an agent");
    const std::string serial = chain->front().serial_decimal();
    absl::MutexLock lock(&mu_);
    last_caller_serial_ = serial;
    auto it = agents_.find(id->ToString());
    if (it == agents_.end()) {
      return absl::PermissionDeniedError(absl::StrCat("agent ", id->ToString(), " is not attested (it may have been evicted)"));
    }
    if (it->second.banned) return absl::PermissionDeniedError(absl::StrCat("agent ", id->ToString(), " is banned"));
    if (serial == it->second.active_serial) return *id;
    if (!serial.empty() && serial == it->second.next_serial) {
      it->second.active_serial = serial;
      it->second.next_serial.clear();
      return *id;
    }
    return absl::PermissionDeniedError(absl::StrCat("agent ", id->ToString(), " presented an SVID that is not its active one"));
  }

  spiffe::Bundle BundleLocked() const {
    spiffe::Bundle b(td_);
    b.AddX509Authority(root_.cert);
    b.AddJwtAuthority({"kid1", jwt_key_.public_key()}).IgnoreError();
    return b;
  }

  spire::api::types::Bundle BundleProtoLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    spire::api::types::Bundle b = testing::BundleProto(td_.name(), {root_.cert}, {root_tainted_});
    auto* k = b.add_jwt_authorities();
    k->set_key_id("kid1");
    k->set_public_key(jwt_key_.public_key().spki_der());
    return b;
  }

  absl::StatusOr<std::vector<crypto::Certificate>> Mint(const std::string& spiffe_id, const std::string& csr_der,
                                                        absl::Duration ttl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto csr = crypto::CertificateRequest::FromDer(csr_der);
    if (!csr.ok()) return absl::InvalidArgumentError(absl::StrCat("invalid CSR: ", csr.status().message()));
    const absl::Time now = options_.clock->Now();
    return signing_.IssueSvid(spiffe_id, csr->spki_der(), now - options_.backdate, now + ttl);
  }

  // ---- services
  class AgentService final : public agentv1::Agent::Service {
   public:
    explicit AgentService(Impl* impl) : impl_(impl) {}
    grpc::Status AttestAgent(grpc::ServerContext*,
                             grpc::ServerReaderWriter<agentv1::AttestAgentResponse, agentv1::AttestAgentRequest>* stream)
        override {
      {
        absl::MutexLock lock(&impl_->mu_);
        impl_->attest_calls_++;
      }
      agentv1::AttestAgentRequest req;
      if (!stream->Read(&req) || !req.has_params()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "missing params");
      }
      const auto& data = req.params().data();
      std::string agent_path;
      if (data.type() == "join_token") {
        absl::MutexLock lock(&impl_->mu_);
        if (impl_->tokens_.count(data.payload()) == 0) {
          return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                              "nodeattestor(join_token): join token does not exist or has already been used");
        }
        if (!impl_->reusable_tokens_) impl_->tokens_.erase(data.payload());
        agent_path = "/spire/agent/join_token/" + data.payload();
      } else if (data.type() == "test_challenge") {
        agentv1::AttestAgentResponse challenge;
        challenge.set_challenge("nonce-" + data.payload());
        stream->Write(challenge);
        agentv1::AttestAgentRequest answer;
        if (!stream->Read(&answer) || answer.challenge_response() != "answer-nonce-" + data.payload()) {
          return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "wrong challenge response");
        }
        agent_path = "/spire/agent/test_challenge/" + data.payload();
      } else {
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "unknown attestor " + data.type());
      }
      auto id = spiffe::SpiffeId::FromPath(impl_->td_, agent_path).value();
      absl::MutexLock lock(&impl_->mu_);
      auto existing = impl_->agents_.find(id.ToString());
      if (existing != impl_->agents_.end() && existing->second.banned) {
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "agent is banned");
      }
      auto chain = impl_->Mint(id.ToString(), req.params().params().csr(), impl_->options_.agent_ttl);
      if (!chain.ok()) return Grpc(chain.status());
      impl_->agents_[id.ToString()] = AgentRecord{chain->front().serial_decimal(), "", false};
      agentv1::AttestAgentResponse resp;
      auto* svid = resp.mutable_result()->mutable_svid();
      *svid->mutable_id() = apitypes::SpiffeIdToProto(id);
      for (const auto& c : *chain) svid->add_cert_chain(c.der());
      svid->set_expires_at(absl::ToUnixSeconds(chain->front().not_after()));
      stream->Write(resp);
      return grpc::Status::OK;
    }

    grpc::Status RenewAgent(grpc::ServerContext* ctx, const agentv1::RenewAgentRequest* req,
                            agentv1::RenewAgentResponse* resp) override {
      auto id = impl_->Authenticate(*ctx);
      if (!id.ok()) return Grpc(id.status());
      absl::MutexLock lock(&impl_->mu_);
      impl_->renew_calls_++;
      auto chain = impl_->Mint(id->ToString(), req->params().csr(), impl_->options_.agent_ttl);
      if (!chain.ok()) return Grpc(chain.status());
      impl_->agents_[id->ToString()].next_serial = chain->front().serial_decimal();
      *resp->mutable_svid()->mutable_id() = apitypes::SpiffeIdToProto(*id);
      for (const auto& c : *chain) resp->mutable_svid()->add_cert_chain(c.der());
      return grpc::Status::OK;
    }

   private:
    Impl* const impl_;
  };

  class BundleService final : public bundlev1::Bundle::Service {
   public:
    explicit BundleService(Impl* impl) : impl_(impl) {}
    grpc::Status GetBundle(grpc::ServerContext*, const bundlev1::GetBundleRequest*,
                           spire::api::types::Bundle* resp) override {
      absl::MutexLock lock(&impl_->mu_);
      *resp = impl_->BundleProtoLocked();
      return grpc::Status::OK;
    }

   private:
    Impl* const impl_;
  };

  class SvidService final : public svidv1::SVID::Service {
   public:
    explicit SvidService(Impl* impl) : impl_(impl) {}
    grpc::Status BatchNewX509SVID(grpc::ServerContext* ctx, const svidv1::BatchNewX509SVIDRequest* req,
                                  svidv1::BatchNewX509SVIDResponse* resp) override {
      auto id = impl_->Authenticate(*ctx);
      if (!id.ok()) return Grpc(id.status());
      absl::MutexLock lock(&impl_->mu_);
      impl_->batch_calls_++;
      for (const auto& p : req->params()) {
        auto* result = resp->add_results();
        auto entry = impl_->entries_.find(p.entry_id());
        if (entry == impl_->entries_.end()) {
          result->mutable_status()->set_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
          result->mutable_status()->set_message("entry not found or not authorized for this agent");
          continue;
        }
        auto sid = spiffe::SpiffeId::FromPath(impl_->td_, entry->second.spiffe_id().path()).value();
        absl::Duration ttl = entry->second.x509_svid_ttl() > 0 ? absl::Seconds(entry->second.x509_svid_ttl())
                                                                : impl_->options_.x509_ttl;
        auto chain = impl_->Mint(sid.ToString(), p.csr(), ttl);
        if (!chain.ok()) {
          result->mutable_status()->set_code(static_cast<int>(chain.status().code()));
          result->mutable_status()->set_message(std::string(chain.status().message()));
          continue;
        }
        result->mutable_status()->set_message("OK");
        *result->mutable_svid()->mutable_id() = apitypes::SpiffeIdToProto(sid);
        for (const auto& c : *chain) result->mutable_svid()->add_cert_chain(c.der());
        result->mutable_svid()->set_expires_at(absl::ToUnixSeconds(chain->front().not_after()));
      }
      return grpc::Status::OK;
    }

    grpc::Status NewJWTSVID(grpc::ServerContext* ctx, const svidv1::NewJWTSVIDRequest* req,
                            svidv1::NewJWTSVIDResponse* resp) override {
      auto id = impl_->Authenticate(*ctx);
      if (!id.ok()) return Grpc(id.status());
      absl::MutexLock lock(&impl_->mu_);
      impl_->jwt_calls_++;
      auto entry = impl_->entries_.find(req->entry_id());
      if (entry == impl_->entries_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "entry not found");
      auto sid = spiffe::SpiffeId::FromPath(impl_->td_, entry->second.spiffe_id().path()).value();
      const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(impl_->options_.clock->Now()));
      spiffe::JwtSvidClaims claims{sid, {req->audience().begin(), req->audience().end()}, now + impl_->options_.jwt_ttl,
                                   now, ""};
      auto token = spiffe::SignJwtSvid(claims, impl_->jwt_key_, "kid1");
      if (!token.ok()) return Grpc(token.status());
      resp->mutable_svid()->set_token(*token);
      *resp->mutable_svid()->mutable_id() = apitypes::SpiffeIdToProto(sid);
      resp->mutable_svid()->set_issued_at(absl::ToUnixSeconds(now));
      resp->mutable_svid()->set_expires_at(absl::ToUnixSeconds(now + impl_->options_.jwt_ttl));
      return grpc::Status::OK;
    }

   private:
    Impl* const impl_;
  };

  class SyncService final : public syncv1::AgentSync::Service {
   public:
    explicit SyncService(Impl* impl) : impl_(impl) {}
    grpc::Status WatchAuthorized(grpc::ServerContext* ctx, const syncv1::WatchAuthorizedRequest*,
                                 grpc::ServerWriter<syncv1::WatchAuthorizedUpdate>* writer) override {
      auto id = impl_->Authenticate(*ctx);
      if (!id.ok()) return Grpc(id.status());
      std::map<std::string, std::string> sent;
      std::string sent_bundle;
      int64_t seen = -1;
      {
        absl::MutexLock lock(&impl_->mu_);
        impl_->sync_streams_++;
      }
      while (!ctx->IsCancelled()) {
        syncv1::WatchAuthorizedUpdate update;
        {
          absl::MutexLock lock(&impl_->mu_);
          auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl_->mu_) {
            return impl_->revision_ != seen || impl_->stopping_;
          };
          impl_->mu_.AwaitWithTimeout(absl::Condition(&changed), absl::Milliseconds(50));
          if (impl_->stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down");
          auto agent = impl_->agents_.find(id->ToString());
          if (agent == impl_->agents_.end() || agent->second.banned) {
            return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                absl::StrCat("agent ", id->ToString(), " is no longer attested"));
          }
          if (impl_->revision_ == seen) continue;
          const bool full = seen < 0;
          seen = impl_->revision_;
          update.set_revision(seen);
          update.set_full(full);
          for (const auto& [eid, e] : impl_->entries_) {
            std::string bytes = e.SerializeAsString();
            auto it = sent.find(eid);
            if (full || it == sent.end() || it->second != bytes) *update.add_upserted() = e;
          }
          for (const auto& [eid, _] : sent) {
            if (impl_->entries_.count(eid) == 0) update.add_removed_entry_ids(eid);
          }
          sent.clear();
          for (const auto& [eid, e] : impl_->entries_) sent[eid] = e.SerializeAsString();
          spire::api::types::Bundle bundle = impl_->BundleProtoLocked();
          std::string bundle_bytes = bundle.SerializeAsString();
          if (full || bundle_bytes != sent_bundle) *update.mutable_bundle() = bundle;
          sent_bundle = bundle_bytes;
        }
        if (!writer->Write(update)) break;
      }
      return grpc::Status::OK;
    }

   private:
    Impl* const impl_;
  };

  absl::Status Start(int port, int* bound) {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = false;
    }
    std::vector<grpc::experimental::IdentityKeyCertPair> pairs;
    pairs.push_back({server_key_.ToPkcs8Pem(), crypto::ToPem(server_chain_)});
    auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(pairs);
    grpc::experimental::TlsServerCredentialsOptions tls(provider);
    tls.watch_identity_key_cert_pairs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::experimental::TlsServerCredentials(tls), bound);
    agent_service_ = std::make_unique<AgentService>(this);
    bundle_service_ = std::make_unique<BundleService>(this);
    svid_service_ = std::make_unique<SvidService>(this);
    sync_service_ = std::make_unique<SyncService>(this);
    builder.RegisterService(agent_service_.get());
    builder.RegisterService(bundle_service_.get());
    builder.RegisterService(svid_service_.get());
    builder.RegisterService(sync_service_.get());
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || *bound == 0) return absl::InternalError(absl::StrCat("cannot listen on port ", port));
    return absl::OkStatus();
  }

  void Stop() {
    if (server_ == nullptr) return;
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    server_->Wait();
    server_.reset();
  }

  void Bump() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { revision_++; }

  const FakeServerOptions options_;
  const spiffe::TrustDomain td_;
  const TestCa root_;
  mutable absl::Mutex mu_;
  TestCa signing_ ABSL_GUARDED_BY(mu_);
  crypto::PrivateKey jwt_key_;
  crypto::PrivateKey server_key_;
  std::vector<crypto::Certificate> server_chain_;
  std::set<std::string> tokens_ ABSL_GUARDED_BY(mu_);
  bool reusable_tokens_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, AgentRecord> agents_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, spire::api::types::Entry> entries_ ABSL_GUARDED_BY(mu_);
  bool root_tainted_ ABSL_GUARDED_BY(mu_) = false;
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int attest_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int renew_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int batch_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int jwt_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int sync_streams_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_caller_serial_ ABSL_GUARDED_BY(mu_);

  std::unique_ptr<AgentService> agent_service_;
  std::unique_ptr<BundleService> bundle_service_;
  std::unique_ptr<SvidService> svid_service_;
  std::unique_ptr<SyncService> sync_service_;
  std::unique_ptr<grpc::Server> server_;
};

FakeServer::FakeServer(FakeServerOptions options)
    : options_(std::move(options)),
      root_(TestCa::Root(options_.trust_domain, options_.clock->Now() - absl::Hours(2))),
      impl_(std::make_unique<Impl>(options_, root_)) {}

FakeServer::~FakeServer() { Stop(); }

absl::Status FakeServer::Start(int port) { return impl_->Start(port, &port_); }
void FakeServer::Stop() { impl_->Stop(); }
std::string FakeServer::target() const { return absl::StrCat("127.0.0.1:", port_); }

spiffe::Bundle FakeServer::Bundle() const { return impl_->BundleLocked(); }
std::string FakeServer::BundlePem() const { return root_.cert.ToPem(); }

void FakeServer::SetServerIdentity(std::vector<crypto::Certificate> chain, crypto::PrivateKey key) {
  impl_->server_chain_ = std::move(chain);
  impl_->server_key_ = std::move(key);
}

void FakeServer::AddJoinToken(const std::string& token) {
  absl::MutexLock lock(&impl_->mu_);
  impl_->tokens_.insert(token);
}

void FakeServer::SetTokensReusable(bool reusable) {
  absl::MutexLock lock(&impl_->mu_);
  impl_->reusable_tokens_ = reusable;
}

void FakeServer::EvictAgent(const std::string& agent_id) {
  absl::MutexLock lock(&impl_->mu_);
  if (agent_id.empty()) {
    impl_->agents_.clear();
  } else {
    impl_->agents_.erase(agent_id);
  }
  impl_->Bump();
}

void FakeServer::BanAgent(const std::string& agent_id) {
  absl::MutexLock lock(&impl_->mu_);
  impl_->agents_[agent_id].banned = true;
  impl_->Bump();
}

void FakeServer::UpsertEntry(const spire::api::types::Entry& entry) {
  absl::MutexLock lock(&impl_->mu_);
  impl_->entries_[entry.id()] = entry;
  impl_->Bump();
}

void FakeServer::RemoveEntry(const std::string& id) {
  absl::MutexLock lock(&impl_->mu_);
  impl_->entries_.erase(id);
  impl_->Bump();
}

void FakeServer::RotateSigningCa() {
  absl::MutexLock lock(&impl_->mu_);
  impl_->signing_ = root_.Intermediate(options_.trust_domain, options_.clock->Now() - absl::Minutes(1), "rotated");
}

void FakeServer::TaintRoot() {
  absl::MutexLock lock(&impl_->mu_);
  impl_->root_tainted_ = true;
  impl_->Bump();
}

#define FAKE_SERVER_COUNTER(name)              \
  int FakeServer::name() const {               \
    absl::MutexLock lock(&impl_->mu_);         \
    return impl_->name##_;                     \
  }
FAKE_SERVER_COUNTER(attest_calls)
FAKE_SERVER_COUNTER(renew_calls)
FAKE_SERVER_COUNTER(batch_calls)
FAKE_SERVER_COUNTER(jwt_calls)
FAKE_SERVER_COUNTER(sync_streams)
#undef FAKE_SERVER_COUNTER

std::string FakeServer::last_caller_serial() const {
  absl::MutexLock lock(&impl_->mu_);
  return impl_->last_caller_serial_;
}

std::string FakeServer::active_serial(const std::string& agent_id) const {
  absl::MutexLock lock(&impl_->mu_);
  auto it = impl_->agents_.find(agent_id);
  return it == impl_->agents_.end() ? "" : it->second.active_serial;
}

std::vector<std::string> FakeServer::agent_ids() const {
  absl::MutexLock lock(&impl_->mu_);
  std::vector<std::string> out;
  for (const auto& [id, _] : impl_->agents_) out.push_back(id);
  return out;
}

}  // namespace sigil::agent::testing
