#include "node-agent/cli/fake_workload_api.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "spiffe/id.h"
#include "spiffe/jwtsvid.h"

namespace sigil::agent::cli::testing {

namespace {
constexpr char kHeaderMissing[] = "security header missing from request";
}  // namespace

FakeWorkloadApi::FakeWorkloadApi(spiffe::TrustDomain trust_domain, crypto::PrivateKey jwt_key,
                                 std::string jwt_kid, absl::Time now)
    : trust_domain_(std::move(trust_domain)),
      jwt_key_(std::move(jwt_key)),
      jwt_kid_(std::move(jwt_kid)),
      now_(now),
      jwt_bundle_(trust_domain_) {
  absl::Status added = jwt_bundle_.AddJwtAuthority({jwt_kid_, jwt_key_.public_key()});
  if (!added.ok()) ADD_FAILURE() << added;
  x509_scripts_.push_back(X509StreamScript{});
  jwt_subject_ = trust_domain_.IdString() + "/workload";
}

void FakeWorkloadApi::ScriptX509(std::vector<X509StreamScript> scripts) {
  absl::MutexLock lock(&mu_);
  x509_scripts_.assign(scripts.begin(), scripts.end());
}

void FakeWorkloadApi::SetJwtSubject(const std::string& id) {
  absl::MutexLock lock(&mu_);
  jwt_subject_ = id;
}

void FakeWorkloadApi::FailJwtSvid(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  jwt_svid_status_ = std::move(status);
}

void FakeWorkloadApi::FailJwtBundles(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  jwt_bundles_status_ = std::move(status);
}

void FakeWorkloadApi::FailValidate(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  validate_status_ = std::move(status);
}

std::vector<CallRecord> FakeWorkloadApi::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

std::vector<::JWTSVIDRequest> FakeWorkloadApi::jwt_requests() const {
  absl::MutexLock lock(&mu_);
  return jwt_requests_;
}

std::vector<::ValidateJWTSVIDRequest> FakeWorkloadApi::validate_requests() const {
  absl::MutexLock lock(&mu_);
  return validate_requests_;
}

std::string FakeWorkloadApi::jwks() const { return jwt_bundle_.ToJwtJwksJson(); }

bool FakeWorkloadApi::Admit(grpc::ServerContext* context, const std::string& method) {
  const auto& md = context->client_metadata();
  auto it = md.find("workload.spiffe.io");
  bool ok = it != md.end() && std::string(it->second.data(), it->second.size()) == "true";
  absl::MutexLock lock(&mu_);
  calls_.push_back({method, ok});
  return ok;
}

bool FakeWorkloadApi::Pause(grpc::ServerContext* context, absl::Duration d) {
  absl::Time until = absl::Now() + d;
  while (absl::Now() < until) {
    if (context->IsCancelled() || closing_) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return !context->IsCancelled() && !closing_;
}

void FakeWorkloadApi::HoldOpen(grpc::ServerContext* context) {
  while (!context->IsCancelled() && !closing_) absl::SleepFor(absl::Milliseconds(5));
}

grpc::Status FakeWorkloadApi::FetchX509SVID(grpc::ServerContext* context,
                                            const ::X509SVIDRequest*,
                                            grpc::ServerWriter<::X509SVIDResponse>* writer) {
  if (!Admit(context, "FetchX509SVID")) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, kHeaderMissing);
  }
  X509StreamScript script;
  {
    absl::MutexLock lock(&mu_);
    script = x509_scripts_.front();
    if (x509_scripts_.size() > 1) x509_scripts_.pop_front();
  }
  for (const ::X509SVIDResponse& r : script.responses) {
    if (!Pause(context, script.delay)) return grpc::Status::CANCELLED;
    if (!writer->Write(r)) return grpc::Status::CANCELLED;
  }
  if (script.hold_open) {
    HoldOpen(context);
    return grpc::Status::CANCELLED;
  }
  return script.final_status;
}

grpc::Status FakeWorkloadApi::FetchX509Bundles(grpc::ServerContext* context,
                                               const ::X509BundlesRequest*,
                                               grpc::ServerWriter<::X509BundlesResponse>*) {
  Admit(context, "FetchX509Bundles");
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "not used by the CLI");
}

grpc::Status FakeWorkloadApi::FetchJWTSVID(grpc::ServerContext* context,
                                           const ::JWTSVIDRequest* request,
                                           ::JWTSVIDResponse* response) {
  if (!Admit(context, "FetchJWTSVID")) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, kHeaderMissing);
  }
  std::string subject;
  {
    absl::MutexLock lock(&mu_);
    jwt_requests_.push_back(*request);
    if (!jwt_svid_status_.ok()) return jwt_svid_status_;
    subject = jwt_subject_;
  }
  if (request->audience().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "audience must be specified");
  }
  if (!request->spiffe_id().empty()) subject = request->spiffe_id();
  absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::FromString(subject);
  if (!id.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(id.status().message()));
  }
  spiffe::JwtSvidClaims claims{*id,
                               {request->audience().begin(), request->audience().end()},
                               now_ + absl::Hours(1),
                               now_,
                               ""};
  absl::StatusOr<std::string> token = spiffe::SignJwtSvid(claims, jwt_key_, jwt_kid_);
  if (!token.ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(token.status().message()));
  }
  ::JWTSVID* svid = response->add_svids();
  svid->set_spiffe_id(id->ToString());
  svid->set_svid(*token);
  return grpc::Status::OK;
}

grpc::Status FakeWorkloadApi::FetchJWTBundles(grpc::ServerContext* context,
                                              const ::JWTBundlesRequest*,
                                              grpc::ServerWriter<::JWTBundlesResponse>* writer) {
  if (!Admit(context, "FetchJWTBundles")) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, kHeaderMissing);
  }
  {
    absl::MutexLock lock(&mu_);
    if (!jwt_bundles_status_.ok()) return jwt_bundles_status_;
  }
  ::JWTBundlesResponse response;
  (*response.mutable_bundles())[trust_domain_.IdString()] = jwks();
  if (!writer->Write(response)) return grpc::Status::CANCELLED;
  HoldOpen(context);
  return grpc::Status::CANCELLED;
}

grpc::Status FakeWorkloadApi::ValidateJWTSVID(grpc::ServerContext* context,
                                              const ::ValidateJWTSVIDRequest* request,
                                              ::ValidateJWTSVIDResponse* response) {
  if (!Admit(context, "ValidateJWTSVID")) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, kHeaderMissing);
  }
  {
    absl::MutexLock lock(&mu_);
    validate_requests_.push_back(*request);
    if (!validate_status_.ok()) return validate_status_;
  }
  spiffe::BundleSet bundles;
  bundles.Add(jwt_bundle_);
  absl::StatusOr<spiffe::JwtSvid> svid =
      spiffe::ParseAndValidate(request->svid(), bundles, request->audience(), now_);
  if (!svid.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(svid.status().message()));
  }
  response->set_spiffe_id(svid->id.ToString());
  auto parsed = google::protobuf::util::JsonStringToMessage(svid->claims_json,
                                                            response->mutable_claims());
  if (!parsed.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "claims do not convert");
  return grpc::Status::OK;
}

FakeAgent::FakeAgent(spiffe::TrustDomain trust_domain, crypto::PrivateKey jwt_key,
                     std::string jwt_kid, absl::Time now)
    : workload(std::move(trust_domain), std::move(jwt_key), std::move(jwt_kid), now) {
  socket_path_ = dir_.File("api.sock");
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path_, grpc::InsecureServerCredentials());
  builder.RegisterService(&workload);
  builder.RegisterService(&health);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) ADD_FAILURE() << "cannot listen on " << socket_path_;
}

FakeAgent::~FakeAgent() {
  workload.Close();
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
}

}  // namespace sigil::agent::cli::testing
