#include "server/api/bundle/service.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "apitypes/convert.h"
#include "server/store/entry_validation.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"

namespace sigil::server::api {
namespace {

namespace types = ::spire::api::types;
namespace v1 = ::spire::api::server::bundle::v1;

constexpr uint32_t kAdmin = kAllowLocal | kAllowAdmin;

absl::Status FieldError(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("invalid ", field, ": ", reason));
}

absl::Status ValidateX509Authorities(
    const google::protobuf::RepeatedPtrField<types::X509Certificate>& certs) {
  for (int i = 0; i < certs.size(); ++i) {
    absl::StatusOr<crypto::Certificate> cert = crypto::Certificate::FromDer(certs[i].asn1());
    if (!cert.ok()) {
      return FieldError(absl::StrCat("x509_authorities[", i, "]"), cert.status().message());
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateJwtAuthorities(const google::protobuf::RepeatedPtrField<types::JWTKey>& keys) {
  for (int i = 0; i < keys.size(); ++i) {
    std::string field = absl::StrCat("jwt_authorities[", i, "]");
    if (keys[i].key_id().empty()) return FieldError(field, "missing key ID");
    absl::StatusOr<crypto::PublicKey> key = crypto::PublicKey::FromSpkiDer(keys[i].public_key());
    if (!key.ok()) {
      return FieldError(field, absl::StrCat("public key: ", key.status().message()));
    }
    if (keys[i].expires_at() < 0) return FieldError(field, "expires_at is negative");
  }
  return absl::OkStatus();
}

// Records in `result` the outcome of one bundle of a batch write: the
// validation failure `valid` carries, or else what `write` makes of the
// valid bundle: its status and, on success, the bundle as `output` masks it.
template <typename Result, typename Write>
void RecordBatchWrite(const absl::StatusOr<types::Bundle>& valid, const Write& write,
                      const types::BundleMask* output, Result* result) {
  absl::StatusOr<types::Bundle> written = valid.ok() ? write(*valid) : valid.status();
  *result->mutable_status() = apitypes::StatusToProto(written.status());
  if (written.ok()) *result->mutable_bundle() = ApplyBundleMask(*written, output);
}

}  // namespace

types::Bundle ApplyBundleMask(const types::Bundle& bundle, const types::BundleMask* mask) {
  if (mask == nullptr) return bundle;
  types::Bundle out;
  out.set_trust_domain(bundle.trust_domain());
  if (mask->x509_authorities()) *out.mutable_x509_authorities() = bundle.x509_authorities();
  if (mask->jwt_authorities()) *out.mutable_jwt_authorities() = bundle.jwt_authorities();
  if (mask->refresh_hint()) out.set_refresh_hint(bundle.refresh_hint());
  if (mask->sequence_number()) out.set_sequence_number(bundle.sequence_number());
  return out;
}

BundleService::BundleService(Store* store, Authenticator* authn, const Clock* clock,
                             spiffe::TrustDomain td)
    : store_(store), authn_(authn), clock_(clock), td_(std::move(td)) {}

absl::StatusOr<std::string> BundleService::FederatedTrustDomain(absl::string_view td,
                                                                absl::string_view action) const {
  absl::StatusOr<spiffe::TrustDomain> parsed = apitypes::ParseTrustDomain(td);
  if (!parsed.ok()) return FieldError("trust_domain", parsed.status().message());
  if (*parsed == td_) {
    return FieldError("trust_domain",
                      absl::StrCat(action, " for the server's own trust domain (\"", td_.name(),
                                   "\") is not allowed"));
  }
  return parsed->name();
}

absl::StatusOr<types::Bundle> BundleService::ValidateFederatedBundle(
    const types::Bundle& bundle, const types::BundleMask* mask) const {
  absl::StatusOr<std::string> td =
      FederatedTrustDomain(bundle.trust_domain(), "managing a federated bundle");
  if (!td.ok()) return td.status();
  types::Bundle out = bundle;
  out.set_trust_domain(*td);
  if (mask == nullptr || mask->x509_authorities()) {
    absl::Status s = ValidateX509Authorities(bundle.x509_authorities());
    if (!s.ok()) return s;
  }
  if (mask == nullptr || mask->jwt_authorities()) {
    absl::Status s = ValidateJwtAuthorities(bundle.jwt_authorities());
    if (!s.ok()) return s;
  }
  if ((mask == nullptr || mask->refresh_hint()) && bundle.refresh_hint() < 0) {
    return FieldError("refresh_hint", absl::StrCat(bundle.refresh_hint(), " is negative"));
  }
  return out;
}

grpc::Status BundleService::CountBundles(grpc::ServerContext* ctx,
                                         const v1::CountBundlesRequest* req,
                                         v1::CountBundlesResponse* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Bundle.CountBundles");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<int64_t> count = store_->CountBundles();
  if (!count.ok()) return ToGrpc(count.status());
  resp->set_count(static_cast<int32_t>(*count));
  return grpc::Status::OK;
}

grpc::Status BundleService::GetBundle(grpc::ServerContext* ctx, const v1::GetBundleRequest* req,
                                      types::Bundle* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAllowAny, "Bundle.GetBundle");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<types::Bundle> bundle = store_->GetBundle(td_.name());
  if (bundle.status().code() == absl::StatusCode::kNotFound) {
    return ToGrpc(absl::NotFoundError("bundle not found"));
  }
  if (!bundle.ok()) return ToGrpc(bundle.status());
  *resp = ApplyBundleMask(*bundle, req->has_output_mask() ? &req->output_mask() : nullptr);
  return grpc::Status::OK;
}

grpc::Status BundleService::AppendBundle(grpc::ServerContext* ctx,
                                         const v1::AppendBundleRequest* req, types::Bundle* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin, "Bundle.AppendBundle");
  if (!caller.ok()) return ToGrpc(caller.status());
  if (req->x509_authorities().empty() && req->jwt_authorities().empty()) {
    return ToGrpc(absl::InvalidArgumentError("no authorities to append"));
  }
  absl::Status valid = ValidateX509Authorities(req->x509_authorities());
  if (valid.ok()) valid = ValidateJwtAuthorities(req->jwt_authorities());
  if (!valid.ok()) return ToGrpc(valid);
  types::Bundle add;
  add.set_trust_domain(td_.name());
  *add.mutable_x509_authorities() = req->x509_authorities();
  *add.mutable_jwt_authorities() = req->jwt_authorities();
  absl::StatusOr<types::Bundle> appended = store_->AppendBundle(add, /*create_if_missing=*/false);
  if (appended.status().code() == absl::StatusCode::kNotFound) {
    return ToGrpc(absl::NotFoundError("bundle not found"));
  }
  if (!appended.ok()) return ToGrpc(appended.status());
  *resp = ApplyBundleMask(*appended, req->has_output_mask() ? &req->output_mask() : nullptr);
  return grpc::Status::OK;
}

grpc::Status BundleService::ListFederatedBundles(grpc::ServerContext* ctx,
                                                 const v1::ListFederatedBundlesRequest* req,
                                                 v1::ListFederatedBundlesResponse* resp) {
  absl::StatusOr<Caller> caller =
      Authenticate(authn_, *ctx, kAdmin, "Bundle.ListFederatedBundles");
  if (!caller.ok()) return ToGrpc(caller.status());
  const int32_t page_size = req->page_size();
  // One extra so that dropping the server's own bundle still fills a page.
  absl::StatusOr<BundlePage> page =
      store_->ListBundles(page_size > 0 ? page_size + 1 : 0, req->page_token());
  if (!page.ok()) return ToGrpc(page.status());
  const types::BundleMask* mask = req->has_output_mask() ? &req->output_mask() : nullptr;
  for (const types::Bundle& b : page->bundles) {
    if (b.trust_domain() == td_.name()) continue;
    if (page_size > 0 && resp->bundles_size() == page_size) {
      // More remain: continue after the last one returned.
      resp->set_next_page_token(resp->bundles(resp->bundles_size() - 1).trust_domain());
      return grpc::Status::OK;
    }
    *resp->add_bundles() = ApplyBundleMask(b, mask);
  }
  resp->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status BundleService::GetFederatedBundle(grpc::ServerContext* ctx,
                                               const v1::GetFederatedBundleRequest* req,
                                               types::Bundle* resp) {
  absl::StatusOr<Caller> caller = Authenticate(authn_, *ctx, kAdmin | kAllowAgent,
                                               "Bundle.GetFederatedBundle");
  if (!caller.ok()) return ToGrpc(caller.status());
  absl::StatusOr<spiffe::TrustDomain> td = apitypes::ParseTrustDomain(req->trust_domain());
  if (!td.ok()) return ToGrpc(FieldError("trust_domain", td.status().message()));
  if (*td == td_) {
    return ToGrpc(FieldError(
        "trust_domain", absl::StrCat("\"", td_.name(),
                                     "\" is this server's own trust domain; use GetBundle")));
  }
  absl::StatusOr<types::Bundle> bundle = store_->GetBundle(td->name());
  if (bundle.status().code() == absl::StatusCode::kNotFound) {
    return ToGrpc(absl::NotFoundError(absl::StrCat("bundle for \"", td->name(), "\" not found")));
  }
  if (!bundle.ok()) return ToGrpc(bundle.status());
  *resp = ApplyBundleMask(*bundle, req->has_output_mask() ? &req->output_mask() : nullptr);
  return grpc::Status::OK;
}

grpc::Status BundleService::BatchCreateFederatedBundle(
    grpc::ServerContext* ctx, const v1::BatchCreateFederatedBundleRequest* req,
    v1::BatchCreateFederatedBundleResponse* resp) {
  absl::StatusOr<Caller> caller =
      Authenticate(authn_, *ctx, kAdmin, "Bundle.BatchCreateFederatedBundle");
  if (!caller.ok()) return ToGrpc(caller.status());
  const types::BundleMask* mask = req->has_output_mask() ? &req->output_mask() : nullptr;
  auto create = [this](const types::Bundle& bundle) -> absl::StatusOr<types::Bundle> {
    absl::StatusOr<types::Bundle> created = store_->CreateBundle(bundle);
    if (created.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError("bundle already exists");
    }
    return created;
  };
  for (const types::Bundle& requested : req->bundle()) {
    RecordBatchWrite(ValidateFederatedBundle(requested, nullptr), create, mask,
                     resp->add_results());
  }
  return grpc::Status::OK;
}

grpc::Status BundleService::BatchUpdateFederatedBundle(
    grpc::ServerContext* ctx, const v1::BatchUpdateFederatedBundleRequest* req,
    v1::BatchUpdateFederatedBundleResponse* resp) {
  absl::StatusOr<Caller> caller =
      Authenticate(authn_, *ctx, kAdmin, "Bundle.BatchUpdateFederatedBundle");
  if (!caller.ok()) return ToGrpc(caller.status());
  const types::BundleMask* input = req->has_input_mask() ? &req->input_mask() : nullptr;
  const types::BundleMask* output = req->has_output_mask() ? &req->output_mask() : nullptr;
  auto update = [this, input](const types::Bundle& bundle) -> absl::StatusOr<types::Bundle> {
    absl::StatusOr<types::Bundle> updated = store_->UpdateBundle(bundle, input);
    if (updated.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError("bundle not found");
    }
    return updated;
  };
  for (const types::Bundle& requested : req->bundle()) {
    RecordBatchWrite(ValidateFederatedBundle(requested, input), update, output,
                     resp->add_results());
  }
  return grpc::Status::OK;
}

grpc::Status BundleService::BatchSetFederatedBundle(grpc::ServerContext* ctx,
                                                    const v1::BatchSetFederatedBundleRequest* req,
                                                    v1::BatchSetFederatedBundleResponse* resp) {
  absl::StatusOr<Caller> caller =
      Authenticate(authn_, *ctx, kAdmin, "Bundle.BatchSetFederatedBundle");
  if (!caller.ok()) return ToGrpc(caller.status());
  const types::BundleMask* mask = req->has_output_mask() ? &req->output_mask() : nullptr;
  auto set = [this](const types::Bundle& bundle) { return store_->SetBundle(bundle); };
  for (const types::Bundle& requested : req->bundle()) {
    RecordBatchWrite(ValidateFederatedBundle(requested, nullptr), set, mask, resp->add_results());
  }
  return grpc::Status::OK;
}

grpc::Status BundleService::BatchDeleteFederatedBundle(
    grpc::ServerContext* ctx, const v1::BatchDeleteFederatedBundleRequest* req,
    v1::BatchDeleteFederatedBundleResponse* resp) {
  absl::StatusOr<Caller> caller =
      Authenticate(authn_, *ctx, kAdmin, "Bundle.BatchDeleteFederatedBundle");
  if (!caller.ok()) return ToGrpc(caller.status());
  BundleDeleteMode mode;
  switch (req->mode()) {
    case v1::BatchDeleteFederatedBundleRequest::RESTRICT:
      mode = BundleDeleteMode::kRestrict;
      break;
    case v1::BatchDeleteFederatedBundleRequest::DELETE:
      mode = BundleDeleteMode::kDelete;
      break;
    case v1::BatchDeleteFederatedBundleRequest::DISSOCIATE:
      mode = BundleDeleteMode::kDissociate;
      break;
    default:
      return ToGrpc(absl::InvalidArgumentError(
          absl::StrCat("invalid mode: unknown value ", static_cast<int>(req->mode()))));
  }
  for (const std::string& requested : req->trust_domains()) {
    auto* result = resp->add_results();
    result->set_trust_domain(requested);
    absl::StatusOr<std::string> td = FederatedTrustDomain(requested, "removing the bundle");
    if (!td.ok()) {
      *result->mutable_status() = apitypes::StatusToProto(td.status());
      continue;
    }
    absl::Status deleted = store_->DeleteBundle(*td, mode);
    if (deleted.code() == absl::StatusCode::kNotFound) {
      *result->mutable_status() = apitypes::StatusToProto(
          absl::NotFoundError(absl::StrCat("bundle for \"", *td, "\" not found")));
      continue;
    }
    *result->mutable_status() = apitypes::StatusToProto(deleted);
  }
  return grpc::Status::OK;
}

}  // namespace sigil::server::api
