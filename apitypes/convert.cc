#include "apitypes/convert.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"

namespace sigil::apitypes {

namespace types = ::spire::api::types;

absl::StatusOr<spiffe::TrustDomain> ParseTrustDomain(absl::string_view s) {
  absl::StatusOr<spiffe::TrustDomain> td = spiffe::TrustDomain::FromString(s);
  if (!td.ok()) return td.status();
  // FromString also takes a full SPIFFE ID and drops its path; a trust
  // domain field holding a path is a mistake worth reporting.
  if (s != td->name() && s != td->IdString()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", s, "\" is not a trust domain name (expected e.g. \"", td->name(), "\")"));
  }
  return td;
}

absl::StatusOr<spiffe::SpiffeId> SpiffeIdFromProto(const types::SPIFFEID& id) {
  if (id.trust_domain().empty()) return absl::InvalidArgumentError("trust domain is missing");
  absl::StatusOr<spiffe::TrustDomain> td = ParseTrustDomain(id.trust_domain());
  if (!td.ok()) return td.status();
  return spiffe::SpiffeId::FromPath(*td, id.path());
}

types::SPIFFEID SpiffeIdToProto(const spiffe::SpiffeId& id) {
  types::SPIFFEID out;
  out.set_trust_domain(id.trust_domain().name());
  out.set_path(id.path());
  return out;
}

std::string SpiffeIdString(const types::SPIFFEID& id) {
  if (id.trust_domain().empty() && id.path().empty()) return "";
  return absl::StrCat("spiffe://", id.trust_domain(), id.path());
}

types::Status StatusToProto(const absl::Status& status) {
  types::Status out;
  out.set_code(static_cast<int32_t>(status.code()));
  out.set_message(status.ok() ? "OK" : std::string(status.message()));
  return out;
}

absl::StatusOr<spiffe::Bundle> BundleFromProto(const types::Bundle& proto,
                                               std::set<std::string>* tainted_x509_key_ids) {
  absl::StatusOr<spiffe::TrustDomain> td = ParseTrustDomain(proto.trust_domain());
  if (!td.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bundle trust_domain \"", proto.trust_domain(),
                                                   "\": ", td.status().message()));
  }
  const std::string where = absl::StrCat("bundle ", td->name(), ": ");
  spiffe::Bundle bundle(*td);
  for (int i = 0; i < proto.x509_authorities_size(); ++i) {
    const types::X509Certificate& authority = proto.x509_authorities(i);
    absl::StatusOr<crypto::Certificate> cert = crypto::Certificate::FromDer(authority.asn1());
    if (!cert.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "x509_authorities[", i, "]: ", cert.status().message()));
    }
    if (authority.tainted() && tainted_x509_key_ids != nullptr && !cert->subject_key_id().empty()) {
      tainted_x509_key_ids->insert(cert->subject_key_id());
    }
    bundle.AddX509Authority(*cert);
  }
  for (int i = 0; i < proto.jwt_authorities_size(); ++i) {
    const types::JWTKey& key = proto.jwt_authorities(i);
    absl::StatusOr<crypto::PublicKey> public_key = crypto::PublicKey::FromSpkiDer(key.public_key());
    if (!public_key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "jwt_authorities[", i, "].public_key: ", public_key.status().message()));
    }
    spiffe::JwtAuthority authority{
        key.key_id(), *std::move(public_key),
        key.expires_at() > 0 ? absl::FromUnixSeconds(key.expires_at()) : absl::InfinitePast()};
    absl::Status added = bundle.AddJwtAuthority(std::move(authority));
    if (!added.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "jwt_authorities[", i, "]: ", added.message()));
    }
  }
  if (proto.refresh_hint() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, "refresh_hint must not be negative"));
  }
  if (proto.refresh_hint() > 0) bundle.set_refresh_hint(absl::Seconds(proto.refresh_hint()));
  if (proto.sequence_number() > 0) bundle.set_sequence_number(proto.sequence_number());
  return bundle;
}

types::Bundle BundleToProto(const spiffe::Bundle& bundle) {
  types::Bundle out;
  out.set_trust_domain(bundle.trust_domain().name());
  for (const crypto::Certificate& cert : bundle.x509_authorities()) {
    out.add_x509_authorities()->set_asn1(cert.der());
  }
  for (const spiffe::JwtAuthority& authority : bundle.jwt_authorities()) {
    types::JWTKey* key = out.add_jwt_authorities();
    key->set_public_key(authority.public_key.spki_der());
    key->set_key_id(authority.key_id);
    if (authority.expires_at != absl::InfinitePast()) {
      key->set_expires_at(absl::ToUnixSeconds(authority.expires_at));
    }
  }
  if (bundle.refresh_hint().has_value()) {
    out.set_refresh_hint(absl::ToInt64Seconds(*bundle.refresh_hint()));
  }
  if (bundle.sequence_number().has_value()) out.set_sequence_number(*bundle.sequence_number());
  return out;
}

}  // namespace sigil::apitypes
