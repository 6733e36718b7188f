#include "node-agent/convert.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sigil::agent {

absl::StatusOr<spiffe::SpiffeId> SpiffeIdFromProto(const spire::api::types::SPIFFEID& id,
                                                   const std::string& field) {
  if (id.trust_domain().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": trust domain is missing"));
  }
  auto td = spiffe::TrustDomain::FromString(id.trust_domain());
  if (!td.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", td.status().message()));
  auto parsed = spiffe::SpiffeId::FromPath(*td, id.path());
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ": ", parsed.status().message()));
  return parsed;
}

spire::api::types::SPIFFEID SpiffeIdToProto(const spiffe::SpiffeId& id) {
  spire::api::types::SPIFFEID out;
  out.set_trust_domain(id.trust_domain().name());
  out.set_path(id.path());
  return out;
}

std::string AuthorityKeyIdOf(const crypto::Certificate& ca) { return ca.subject_key_id(); }

absl::StatusOr<ReceivedBundle> BundleFromProto(const spire::api::types::Bundle& b) {
  auto td = spiffe::TrustDomain::FromString(b.trust_domain());
  if (!td.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bundle trust_domain \"", b.trust_domain(),
                                                   "\": ", td.status().message()));
  }
  const std::string where = absl::StrCat("bundle ", td->name(), ": ");
  ReceivedBundle out{spiffe::Bundle(*td), {}};
  for (int i = 0; i < b.x509_authorities_size(); ++i) {
    const auto& a = b.x509_authorities(i);
    auto cert = crypto::Certificate::FromDer(a.asn1());
    if (!cert.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "x509_authorities[", i, "]: ", cert.status().message()));
    }
    if (a.tainted()) {
      std::string kid = AuthorityKeyIdOf(*cert);
      if (!kid.empty()) out.tainted_x509_key_ids.insert(kid);
    }
    out.bundle.AddX509Authority(*cert);
  }
  for (int i = 0; i < b.jwt_authorities_size(); ++i) {
    const auto& k = b.jwt_authorities(i);
    auto key = crypto::PublicKey::FromSpkiDer(k.public_key());
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "jwt_authorities[", i, "].public_key: ", key.status().message()));
    }
    spiffe::JwtAuthority authority{k.key_id(), *key,
                                   k.expires_at() > 0 ? absl::FromUnixSeconds(k.expires_at())
                                                      : absl::InfinitePast()};
    absl::Status added = out.bundle.AddJwtAuthority(std::move(authority));
    if (!added.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "jwt_authorities[", i, "]: ", added.message()));
    }
  }
  if (b.refresh_hint() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, "refresh_hint must not be negative"));
  }
  if (b.refresh_hint() > 0) out.bundle.set_refresh_hint(absl::Seconds(b.refresh_hint()));
  if (b.sequence_number() > 0) out.bundle.set_sequence_number(b.sequence_number());
  return out;
}

absl::StatusOr<std::vector<crypto::Certificate>> ChainFromDer(
    const google::protobuf::RepeatedPtrField<std::string>& der, const std::string& field) {
  if (der.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty certificate chain"));
  std::vector<crypto::Certificate> chain;
  chain.reserve(der.size());
  for (int i = 0; i < der.size(); ++i) {
    auto cert = crypto::Certificate::FromDer(der.Get(i));
    if (!cert.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "]: ", cert.status().message()));
    }
    chain.push_back(std::move(*cert));
  }
  return chain;
}

attestors::Selectors SortedSelectors(const spire::api::types::Entry& e) {
  attestors::Selectors out;
  out.reserve(e.selectors_size());
  for (const auto& s : e.selectors()) out.push_back({s.type(), s.value()});
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace sigil::agent
