#include "server/cli/bundle_format.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/cli/cli_util.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"

namespace sigil::server::cli {

namespace types = ::spire::api::types;

absl::StatusOr<BundleFormat> ParseBundleFormat(absl::string_view s) {
  std::string lower = absl::AsciiStrToLower(s);
  if (lower.empty() || lower == "pem") return BundleFormat::kPem;
  if (lower == "spiffe") return BundleFormat::kSpiffe;
  return absl::InvalidArgumentError(absl::StrCat("invalid format: ", GoQuote(lower)));
}

absl::StatusOr<spiffe::Bundle> BundleFromProto(const types::Bundle& proto) {
  absl::StatusOr<spiffe::TrustDomain> td = spiffe::TrustDomain::FromString(proto.trust_domain());
  if (!td.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bundle trust domain ",
                                                   GoQuote(proto.trust_domain()),
                                                   " is not valid: ", td.status().message()));
  }
  spiffe::Bundle bundle(*td);
  for (int i = 0; i < proto.x509_authorities_size(); ++i) {
    absl::StatusOr<crypto::Certificate> cert =
        crypto::Certificate::FromDer(proto.x509_authorities(i).asn1());
    if (!cert.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unable to parse root CA ", i, ": ", cert.status().message()));
    }
    bundle.AddX509Authority(*cert);
  }
  for (int i = 0; i < proto.jwt_authorities_size(); ++i) {
    const types::JWTKey& key = proto.jwt_authorities(i);
    absl::StatusOr<crypto::PublicKey> public_key = crypto::PublicKey::FromSpkiDer(key.public_key());
    if (!public_key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unable to parse JWT signing key ", i, ": ", public_key.status().message()));
    }
    spiffe::JwtAuthority authority{
        key.key_id(), *public_key,
        key.expires_at() != 0 ? absl::FromUnixSeconds(key.expires_at()) : absl::InfinitePast()};
    absl::Status added = bundle.AddJwtAuthority(std::move(authority));
    if (!added.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unable to parse JWT signing key ", i, ": ", added.message()));
    }
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

absl::Status WriteBundle(const types::Bundle& bundle, BundleFormat format, bool header,
                         std::ostream& out) {
  std::string text;
  if (format == BundleFormat::kPem) {
    for (const types::X509Certificate& authority : bundle.x509_authorities()) {
      absl::StatusOr<std::vector<crypto::Certificate>> certs =
          crypto::Certificate::ParseDerChain(authority.asn1());
      if (!certs.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unable to parse certificates ASN.1 DER data: ", certs.status().message()));
      }
      text += crypto::ToPem(*certs);
    }
  } else {
    absl::StatusOr<spiffe::Bundle> b = BundleFromProto(bundle);
    if (!b.ok()) return b.status();
    text = b->ToSpiffeJson(4) + "\n";
  }
  if (header) {
    out << "****************************************\n"
        << "* " << bundle.trust_domain() << "\n"
        << "****************************************\n";
  }
  out << text;
  return absl::OkStatus();
}

}  // namespace sigil::server::cli
