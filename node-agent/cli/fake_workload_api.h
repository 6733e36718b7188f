#pragma once

// Test-only: an in-process gRPC server on a Unix socket in a temporary
// directory, serving a fake SPIFFE Workload API and gRPC health. Like the
// real agent it refuses calls without the `workload.spiffe.io: true`
// header (InvalidArgument "security header missing from request") and
// keeps streams open until the client goes away; what it sends is scripted
// by the test. JWT-SVIDs are really signed and really validated against the
// fake's JWT bundle at a fixed time, so `api fetch jwt` and
// `api validate jwt` are exercised end to end.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "spiffe/bundle.h"
#include "spiffe/crypto/key.h"
#include "tests/util/files.h"
#include "workload.grpc.pb.h"

namespace sigil::agent::cli::testing {

// What one FetchX509SVID stream does: send `responses` in order (waiting
// `delay` before each), then end with `final_status`, or, when
// `hold_open`, stay open until the client cancels.
struct X509StreamScript {
  std::vector<::X509SVIDResponse> responses;
  absl::Duration delay = absl::ZeroDuration();
  bool hold_open = true;
  grpc::Status final_status = grpc::Status::OK;
};

// One call as the fake saw it.
struct CallRecord {
  std::string method;  // "FetchX509SVID", "FetchJWTSVID", ...
  bool had_header = false;
};

class FakeWorkloadApi final : public ::SpiffeWorkloadAPI::Service {
 public:
  // `jwt_key` signs JWT-SVIDs under key ID `jwt_kid` for `trust_domain`;
  // `now` is the fake's notion of the current time.
  FakeWorkloadApi(spiffe::TrustDomain trust_domain, crypto::PrivateKey jwt_key,
                  std::string jwt_kid, absl::Time now);

  // Each FetchX509SVID call takes the next script; the last one is reused.
  void ScriptX509(std::vector<X509StreamScript> scripts);
  // FetchJWTSVID mints one token for `id` (or the requested spiffe_id)
  // with the requested audience, valid for an hour from `now`.
  void SetJwtSubject(const std::string& id);
  // Makes FetchJWTSVID / FetchJWTBundles / ValidateJWTSVID fail.
  void FailJwtSvid(grpc::Status status);
  void FailJwtBundles(grpc::Status status);
  void FailValidate(grpc::Status status);

  std::vector<CallRecord> calls() const;
  std::vector<::JWTSVIDRequest> jwt_requests() const;
  std::vector<::ValidateJWTSVIDRequest> validate_requests() const;
  // The JWKS the fake serves for its trust domain.
  std::string jwks() const;
  const spiffe::Bundle& jwt_bundle() const { return jwt_bundle_; }

  // Makes every open stream end (called before the server shuts down).
  void Close() { closing_ = true; }

  // ::SpiffeWorkloadAPI::Service
  grpc::Status FetchX509SVID(grpc::ServerContext* context, const ::X509SVIDRequest* request,
                             grpc::ServerWriter<::X509SVIDResponse>* writer) override;
  grpc::Status FetchX509Bundles(grpc::ServerContext* context, const ::X509BundlesRequest* request,
                                grpc::ServerWriter<::X509BundlesResponse>* writer) override;
  grpc::Status FetchJWTSVID(grpc::ServerContext* context, const ::JWTSVIDRequest* request,
                            ::JWTSVIDResponse* response) override;
  grpc::Status FetchJWTBundles(grpc::ServerContext* context, const ::JWTBundlesRequest* request,
                               grpc::ServerWriter<::JWTBundlesResponse>* writer) override;
  grpc::Status ValidateJWTSVID(grpc::ServerContext* context,
                               const ::ValidateJWTSVIDRequest* request,
                               ::ValidateJWTSVIDResponse* response) override;

 private:
  // Records the call; false when the security header is missing.
  bool Admit(grpc::ServerContext* context, const std::string& method);
  // Sleeps in small steps; false when the client went away or the fake is
  // closing.
  bool Pause(grpc::ServerContext* context, absl::Duration d);
  void HoldOpen(grpc::ServerContext* context);

  const spiffe::TrustDomain trust_domain_;
  const crypto::PrivateKey jwt_key_;
  const std::string jwt_kid_;
  const absl::Time now_;
  spiffe::Bundle jwt_bundle_;
  std::atomic<bool> closing_{false};

  mutable absl::Mutex mu_;
  std::deque<X509StreamScript> x509_scripts_ ABSL_GUARDED_BY(mu_);
  std::string jwt_subject_ ABSL_GUARDED_BY(mu_);
  grpc::Status jwt_svid_status_ ABSL_GUARDED_BY(mu_);
  grpc::Status jwt_bundles_status_ ABSL_GUARDED_BY(mu_);
  grpc::Status validate_status_ ABSL_GUARDED_BY(mu_);
  std::vector<CallRecord> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<::JWTSVIDRequest> jwt_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<::ValidateJWTSVIDRequest> validate_requests_ ABSL_GUARDED_BY(mu_);
};

class FakeHealth final : public ::grpc::health::v1::Health::Service {
 public:
  void SetStatus(::grpc::health::v1::HealthCheckResponse::ServingStatus status) {
    status_ = status;
  }
  grpc::Status Check(grpc::ServerContext*, const ::grpc::health::v1::HealthCheckRequest*,
                     ::grpc::health::v1::HealthCheckResponse* response) override {
    response->set_status(status_);
    return grpc::Status::OK;
  }

 private:
  std::atomic<::grpc::health::v1::HealthCheckResponse::ServingStatus> status_{
      ::grpc::health::v1::HealthCheckResponse::SERVING};
};

// The server and its fakes, listening on <fresh temp dir>/api.sock; the
// directory is removed on destruction.
class FakeAgent {
 public:
  FakeAgent(spiffe::TrustDomain trust_domain, crypto::PrivateKey jwt_key, std::string jwt_kid,
            absl::Time now);
  ~FakeAgent();

  const std::string& socket_path() const { return socket_path_; }
  const std::string& dir() const { return dir_.path(); }

  FakeWorkloadApi workload;
  FakeHealth health;

 private:
  ::sigil::testing::TempDir dir_{"sigil-agent-cli-test"};
  std::string socket_path_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace sigil::agent::cli::testing
