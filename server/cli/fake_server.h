#pragma once

// Test-only: an in-process gRPC server on a Unix socket in a temporary
// directory, serving small fakes of the Entry, Agent, Bundle, SVID,
// LocalAuthority and Health services. Each method records its requests and
// answers with a canned response (or a canned error) that the test sets.
// The SVID fake is the exception: it really checks the CSR and issues an
// X509-SVID from a test CA, so `x509 mint` is exercised end to end.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "google/protobuf/empty.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"
#include "spiffe/spiffe_test_util.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"
#include "spire/api/server/localauthority/v1/localauthority.grpc.pb.h"
#include "spire/api/server/svid/v1/svid.grpc.pb.h"
#include "tests/util/files.h"

namespace sigil::server::cli::testing {

// One method's script: the requests seen, and what to answer. `responses`
// are used first, one per call (for paging); then `response`.
template <typename Request, typename Response>
class Canned {
 public:
  grpc::Status Handle(const Request& req, Response* resp) {
    absl::MutexLock lock(&mu_);
    requests_.push_back(req);
    if (!status_.ok()) return status_;
    if (!responses_.empty()) {
      *resp = responses_.front();
      responses_.pop_front();
    } else {
      *resp = response_;
    }
    return grpc::Status::OK;
  }

  void Respond(const Response& r) {
    absl::MutexLock lock(&mu_);
    response_ = r;
  }
  void RespondPages(const std::vector<Response>& pages) {
    absl::MutexLock lock(&mu_);
    responses_.assign(pages.begin(), pages.end());
  }
  void Fail(grpc::StatusCode code, const std::string& message) {
    absl::MutexLock lock(&mu_);
    status_ = grpc::Status(code, message);
  }
  std::vector<Request> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  // The last request; a default one (and a test failure) when none came.
  Request last() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
  std::deque<Response> responses_ ABSL_GUARDED_BY(mu_);
  Response response_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_) = grpc::Status::OK;
};

namespace entryv1 = ::spire::api::server::entry::v1;
namespace agentv1 = ::spire::api::server::agent::v1;
namespace bundlev1 = ::spire::api::server::bundle::v1;
namespace svidv1 = ::spire::api::server::svid::v1;
namespace lav1 = ::spire::api::server::localauthority::v1;
namespace types = ::spire::api::types;

class FakeEntryService final : public entryv1::Entry::Service {
 public:
  Canned<entryv1::CountEntriesRequest, entryv1::CountEntriesResponse> count;
  Canned<entryv1::ListEntriesRequest, entryv1::ListEntriesResponse> list;
  Canned<entryv1::GetEntryRequest, types::Entry> get;
  Canned<entryv1::BatchCreateEntryRequest, entryv1::BatchCreateEntryResponse> create;
  Canned<entryv1::BatchUpdateEntryRequest, entryv1::BatchUpdateEntryResponse> update;
  Canned<entryv1::BatchDeleteEntryRequest, entryv1::BatchDeleteEntryResponse> remove;

  grpc::Status CountEntries(grpc::ServerContext*, const entryv1::CountEntriesRequest* req,
                            entryv1::CountEntriesResponse* resp) override {
    return count.Handle(*req, resp);
  }
  grpc::Status ListEntries(grpc::ServerContext*, const entryv1::ListEntriesRequest* req,
                           entryv1::ListEntriesResponse* resp) override {
    return list.Handle(*req, resp);
  }
  grpc::Status GetEntry(grpc::ServerContext*, const entryv1::GetEntryRequest* req,
                        types::Entry* resp) override {
    return get.Handle(*req, resp);
  }
  grpc::Status BatchCreateEntry(grpc::ServerContext*, const entryv1::BatchCreateEntryRequest* req,
                                entryv1::BatchCreateEntryResponse* resp) override {
    return create.Handle(*req, resp);
  }
  grpc::Status BatchUpdateEntry(grpc::ServerContext*, const entryv1::BatchUpdateEntryRequest* req,
                                entryv1::BatchUpdateEntryResponse* resp) override {
    return update.Handle(*req, resp);
  }
  grpc::Status BatchDeleteEntry(grpc::ServerContext*, const entryv1::BatchDeleteEntryRequest* req,
                                entryv1::BatchDeleteEntryResponse* resp) override {
    return remove.Handle(*req, resp);
  }
};

class FakeAgentService final : public agentv1::Agent::Service {
 public:
  Canned<agentv1::CountAgentsRequest, agentv1::CountAgentsResponse> count;
  Canned<agentv1::ListAgentsRequest, agentv1::ListAgentsResponse> list;
  Canned<agentv1::GetAgentRequest, types::Agent> get;
  Canned<agentv1::DeleteAgentRequest, google::protobuf::Empty> remove;
  Canned<agentv1::BanAgentRequest, google::protobuf::Empty> ban;
  Canned<agentv1::CreateJoinTokenRequest, types::JoinToken> join_token;

  grpc::Status CountAgents(grpc::ServerContext*, const agentv1::CountAgentsRequest* req,
                           agentv1::CountAgentsResponse* resp) override {
    return count.Handle(*req, resp);
  }
  grpc::Status ListAgents(grpc::ServerContext*, const agentv1::ListAgentsRequest* req,
                          agentv1::ListAgentsResponse* resp) override {
    return list.Handle(*req, resp);
  }
  grpc::Status GetAgent(grpc::ServerContext*, const agentv1::GetAgentRequest* req,
                        types::Agent* resp) override {
    return get.Handle(*req, resp);
  }
  grpc::Status DeleteAgent(grpc::ServerContext*, const agentv1::DeleteAgentRequest* req,
                           google::protobuf::Empty* resp) override {
    return remove.Handle(*req, resp);
  }
  grpc::Status BanAgent(grpc::ServerContext*, const agentv1::BanAgentRequest* req,
                        google::protobuf::Empty* resp) override {
    return ban.Handle(*req, resp);
  }
  grpc::Status CreateJoinToken(grpc::ServerContext*, const agentv1::CreateJoinTokenRequest* req,
                               types::JoinToken* resp) override {
    return join_token.Handle(*req, resp);
  }
};

class FakeBundleService final : public bundlev1::Bundle::Service {
 public:
  Canned<bundlev1::CountBundlesRequest, bundlev1::CountBundlesResponse> count;
  Canned<bundlev1::GetBundleRequest, types::Bundle> get;
  Canned<bundlev1::ListFederatedBundlesRequest, bundlev1::ListFederatedBundlesResponse> list;
  Canned<bundlev1::GetFederatedBundleRequest, types::Bundle> get_federated;
  Canned<bundlev1::BatchSetFederatedBundleRequest, bundlev1::BatchSetFederatedBundleResponse> set;
  Canned<bundlev1::BatchDeleteFederatedBundleRequest, bundlev1::BatchDeleteFederatedBundleResponse>
      remove;

  grpc::Status CountBundles(grpc::ServerContext*, const bundlev1::CountBundlesRequest* req,
                            bundlev1::CountBundlesResponse* resp) override {
    return count.Handle(*req, resp);
  }
  grpc::Status GetBundle(grpc::ServerContext*, const bundlev1::GetBundleRequest* req,
                         types::Bundle* resp) override {
    return get.Handle(*req, resp);
  }
  grpc::Status ListFederatedBundles(grpc::ServerContext*,
                                    const bundlev1::ListFederatedBundlesRequest* req,
                                    bundlev1::ListFederatedBundlesResponse* resp) override {
    return list.Handle(*req, resp);
  }
  grpc::Status GetFederatedBundle(grpc::ServerContext*,
                                  const bundlev1::GetFederatedBundleRequest* req,
                                  types::Bundle* resp) override {
    return get_federated.Handle(*req, resp);
  }
  grpc::Status BatchSetFederatedBundle(grpc::ServerContext*,
                                       const bundlev1::BatchSetFederatedBundleRequest* req,
                                       bundlev1::BatchSetFederatedBundleResponse* resp) override {
    return set.Handle(*req, resp);
  }
  grpc::Status BatchDeleteFederatedBundle(
      grpc::ServerContext*, const bundlev1::BatchDeleteFederatedBundleRequest* req,
      bundlev1::BatchDeleteFederatedBundleResponse* resp) override {
    return remove.Handle(*req, resp);
  }
};

// MintX509SVID verifies the CSR and signs its key with `ca` for `ttl`
// seconds (or 3600 when the request says 0) from `now`; `jwt` is canned.
class FakeSvidService final : public svidv1::SVID::Service {
 public:
  FakeSvidService(crypto::Certificate ca, std::shared_ptr<crypto::CertificateIssuer> issuer,
                  absl::Time now)
      : ca_(std::move(ca)), issuer_(std::move(issuer)), now_(now) {}

  Canned<svidv1::MintX509SVIDRequest, svidv1::MintX509SVIDResponse> x509;
  Canned<svidv1::MintJWTSVIDRequest, svidv1::MintJWTSVIDResponse> jwt;

  grpc::Status MintX509SVID(grpc::ServerContext*, const svidv1::MintX509SVIDRequest* req,
                            svidv1::MintX509SVIDResponse* resp) override;
  grpc::Status MintJWTSVID(grpc::ServerContext*, const svidv1::MintJWTSVIDRequest* req,
                           svidv1::MintJWTSVIDResponse* resp) override {
    return jwt.Handle(*req, resp);
  }

  // Caps the lifetime of minted X509-SVIDs, like a server's CA TTL.
  void set_max_ttl(absl::Duration d) { max_ttl_ = d; }

 private:
  crypto::Certificate ca_;
  std::shared_ptr<crypto::CertificateIssuer> issuer_;
  absl::Time now_;
  absl::Duration max_ttl_ = absl::Hours(24);
};

class FakeLocalAuthorityService final : public lav1::LocalAuthority::Service {
 public:
  Canned<lav1::GetX509AuthorityStateRequest, lav1::GetX509AuthorityStateResponse> x509_show;
  Canned<lav1::PrepareX509AuthorityRequest, lav1::PrepareX509AuthorityResponse> x509_prepare;
  Canned<lav1::ActivateX509AuthorityRequest, lav1::ActivateX509AuthorityResponse> x509_activate;
  Canned<lav1::TaintX509AuthorityRequest, lav1::TaintX509AuthorityResponse> x509_taint;
  Canned<lav1::RevokeX509AuthorityRequest, lav1::RevokeX509AuthorityResponse> x509_revoke;
  Canned<lav1::GetJWTAuthorityStateRequest, lav1::GetJWTAuthorityStateResponse> jwt_show;
  Canned<lav1::PrepareJWTAuthorityRequest, lav1::PrepareJWTAuthorityResponse> jwt_prepare;
  Canned<lav1::ActivateJWTAuthorityRequest, lav1::ActivateJWTAuthorityResponse> jwt_activate;
  Canned<lav1::TaintJWTAuthorityRequest, lav1::TaintJWTAuthorityResponse> jwt_taint;
  Canned<lav1::RevokeJWTAuthorityRequest, lav1::RevokeJWTAuthorityResponse> jwt_revoke;

  grpc::Status GetX509AuthorityState(grpc::ServerContext*,
                                     const lav1::GetX509AuthorityStateRequest* req,
                                     lav1::GetX509AuthorityStateResponse* resp) override {
    return x509_show.Handle(*req, resp);
  }
  grpc::Status PrepareX509Authority(grpc::ServerContext*,
                                    const lav1::PrepareX509AuthorityRequest* req,
                                    lav1::PrepareX509AuthorityResponse* resp) override {
    return x509_prepare.Handle(*req, resp);
  }
  grpc::Status ActivateX509Authority(grpc::ServerContext*,
                                     const lav1::ActivateX509AuthorityRequest* req,
                                     lav1::ActivateX509AuthorityResponse* resp) override {
    return x509_activate.Handle(*req, resp);
  }
  grpc::Status TaintX509Authority(grpc::ServerContext*, const lav1::TaintX509AuthorityRequest* req,
                                  lav1::TaintX509AuthorityResponse* resp) override {
    return x509_taint.Handle(*req, resp);
  }
  grpc::Status RevokeX509Authority(grpc::ServerContext*,
                                   const lav1::RevokeX509AuthorityRequest* req,
                                   lav1::RevokeX509AuthorityResponse* resp) override {
    return x509_revoke.Handle(*req, resp);
  }
  grpc::Status GetJWTAuthorityState(grpc::ServerContext*,
                                    const lav1::GetJWTAuthorityStateRequest* req,
                                    lav1::GetJWTAuthorityStateResponse* resp) override {
    return jwt_show.Handle(*req, resp);
  }
  grpc::Status PrepareJWTAuthority(grpc::ServerContext*, const lav1::PrepareJWTAuthorityRequest* req,
                                   lav1::PrepareJWTAuthorityResponse* resp) override {
    return jwt_prepare.Handle(*req, resp);
  }
  grpc::Status ActivateJWTAuthority(grpc::ServerContext*,
                                    const lav1::ActivateJWTAuthorityRequest* req,
                                    lav1::ActivateJWTAuthorityResponse* resp) override {
    return jwt_activate.Handle(*req, resp);
  }
  grpc::Status TaintJWTAuthority(grpc::ServerContext*, const lav1::TaintJWTAuthorityRequest* req,
                                 lav1::TaintJWTAuthorityResponse* resp) override {
    return jwt_taint.Handle(*req, resp);
  }
  grpc::Status RevokeJWTAuthority(grpc::ServerContext*, const lav1::RevokeJWTAuthorityRequest* req,
                                  lav1::RevokeJWTAuthorityResponse* resp) override {
    return jwt_revoke.Handle(*req, resp);
  }
};

class FakeHealthService final : public ::grpc::health::v1::Health::Service {
 public:
  Canned<::grpc::health::v1::HealthCheckRequest, ::grpc::health::v1::HealthCheckResponse> check;

  grpc::Status Check(grpc::ServerContext*, const ::grpc::health::v1::HealthCheckRequest* req,
                     ::grpc::health::v1::HealthCheckResponse* resp) override {
    return check.Handle(*req, resp);
  }
};

// The server and its fakes. The socket lives in a fresh temporary
// directory removed on destruction.
class FakeServer {
 public:
  // `now` is the SVID fake's notion of the current time.
  explicit FakeServer(absl::Time now);
  ~FakeServer();

  const std::string& socket_path() const { return socket_path_; }
  const std::string& dir() const { return dir_.path(); }
  const crypto::Certificate& ca() const { return ca_; }

  FakeEntryService entry;
  FakeAgentService agent;
  FakeBundleService bundle;
  std::unique_ptr<FakeSvidService> svid;
  FakeLocalAuthorityService local_authority;
  FakeHealthService health;

 private:
  FakeServer(absl::Time now, spiffe::testing::TestCa ca);

  ::sigil::testing::TempDir dir_{"sigil-cli-test"};
  std::string socket_path_;
  crypto::Certificate ca_;
  std::unique_ptr<grpc::Server> server_;
};

template <typename Request, typename Response>
Request Canned<Request, Response>::last() const {
  absl::MutexLock lock(&mu_);
  if (requests_.empty()) {
    ADD_FAILURE() << "no request was received";
    return Request();
  }
  return requests_.back();
}

}  // namespace sigil::server::cli::testing
