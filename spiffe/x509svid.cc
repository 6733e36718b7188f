#include "spiffe/x509svid.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spiffe/crypto/encoding.h"

namespace sigil::spiffe {
namespace {

absl::Status SvidError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("x509svid: ", what));
}

bool LooksLikePem(absl::string_view data) {
  return absl::StartsWith(absl::StripLeadingAsciiWhitespace(data), "-----BEGIN ");
}

absl::StatusOr<std::vector<crypto::Certificate>> ParseChain(absl::string_view certs) {
  if (absl::StripAsciiWhitespace(certs).empty()) return SvidError("no certificates");
  absl::StatusOr<std::vector<crypto::Certificate>> chain =
      LooksLikePem(certs) ? crypto::Certificate::ParsePemChain(certs)
                          : crypto::Certificate::ParseDerChain(certs);
  if (!chain.ok()) {
    return SvidError(absl::StrCat("cannot parse certificates: ", chain.status().message()));
  }
  if (chain->empty()) return SvidError("no certificates");
  return chain;
}

absl::StatusOr<crypto::PrivateKey> ParseKey(absl::string_view key) {
  if (absl::StripAsciiWhitespace(key).empty()) return SvidError("no private key");
  if (!LooksLikePem(key)) {
    absl::StatusOr<crypto::PrivateKey> parsed = crypto::PrivateKey::FromPkcs8Der(key);
    if (!parsed.ok()) {
      return SvidError(absl::StrCat("cannot parse PKCS#8 private key: ", parsed.status().message()));
    }
    return parsed;
  }
  // The key may share a file with certificates; pick out its one block.
  absl::StatusOr<std::vector<crypto::PemBlock>> blocks = crypto::ParsePem(key);
  if (!blocks.ok()) return SvidError(absl::StrCat("cannot parse PEM: ", blocks.status().message()));
  const crypto::PemBlock* found = nullptr;
  int count = 0;
  for (const crypto::PemBlock& block : *blocks) {
    if (block.type == "ENCRYPTED PRIVATE KEY") {
      return SvidError("encrypted private keys are not supported");
    }
    if (absl::EndsWith(block.type, "PRIVATE KEY")) {
      found = &block;
      ++count;
    }
  }
  if (count == 0) return SvidError("no PRIVATE KEY block in PEM");
  if (count > 1) return SvidError(absl::StrCat("PEM holds ", count, " private keys, expected one"));
  absl::StatusOr<crypto::PrivateKey> parsed =
      crypto::PrivateKey::FromPem(crypto::EncodePem(found->type, found->der));
  if (!parsed.ok()) {
    return SvidError(absl::StrCat("cannot parse private key: ", parsed.status().message()));
  }
  return parsed;
}

absl::Status ValidateSigningCertificates(const std::vector<crypto::Certificate>& chain) {
  for (size_t i = 1; i < chain.size(); ++i) {
    absl::Status s = ValidateSigningCertificate(chain[i]);
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("chain[", i, "]: ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<X509Svid> X509Svid::Parse(absl::string_view certs, absl::string_view key) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<crypto::Certificate> chain, ParseChain(certs));
  SIGIL_ASSIGN_OR_RETURN(SpiffeId id, ValidateLeaf(chain.front()));
  SIGIL_RETURN_IF_ERROR(ValidateSigningCertificates(chain));
  SIGIL_ASSIGN_OR_RETURN(crypto::PrivateKey private_key, ParseKey(key));
  if (private_key.public_key() != chain.front().public_key()) {
    return SvidError("private key does not match the leaf certificate");
  }
  return X509Svid{std::move(id), std::move(chain), std::move(private_key), ""};
}

absl::StatusOr<SpiffeId> ValidateLeaf(const crypto::Certificate& leaf) {
  std::vector<std::string> uris = leaf.uri_sans();
  if (uris.size() != 1) {
    return SvidError(absl::StrCat("leaf certificate must have exactly one URI SAN (§2), found ",
                                  uris.size()));
  }
  absl::StatusOr<SpiffeId> id = SpiffeId::FromString(uris.front());
  if (!id.ok()) {
    return SvidError(
        absl::StrCat("leaf certificate URI SAN is not a SPIFFE ID: ", id.status().message()));
  }
  if (id->path().empty()) {
    return SvidError(absl::StrCat("leaf certificate SPIFFE ID \"", id->ToString(),
                                  "\" must have a non-root path (§3.1)"));
  }
  if (leaf.is_ca()) return SvidError("leaf certificate must not have the CA flag set (§4.1)");
  uint32_t usage = leaf.has_key_usage() ? leaf.key_usage() : 0;
  if ((usage & crypto::kKeyUsageDigitalSignature) == 0) {
    return SvidError("leaf certificate must have 'digitalSignature' key usage (§4.3)");
  }
  if ((usage & crypto::kKeyUsageKeyCertSign) != 0) {
    return SvidError("leaf certificate must not have 'keyCertSign' key usage (§4.3)");
  }
  if ((usage & crypto::kKeyUsageCrlSign) != 0) {
    return SvidError("leaf certificate must not have 'cRLSign' key usage (§4.3)");
  }
  return *std::move(id);
}

absl::Status ValidateSigningCertificate(const crypto::Certificate& cert) {
  if (!cert.is_ca()) return SvidError("signing certificate must have the CA flag set (§4.1)");
  if (!cert.has_key_usage() || (cert.key_usage() & crypto::kKeyUsageKeyCertSign) == 0) {
    return SvidError("signing certificate must have 'keyCertSign' key usage (§4.3)");
  }
  // §3.2: a signing certificate need not be an SVID, but if it carries a
  // SPIFFE ID that ID has no path.
  for (const std::string& uri : cert.uri_sans()) {
    absl::StatusOr<SpiffeId> id = SpiffeId::FromString(uri);
    if (id.ok() && !id->path().empty()) {
      return SvidError(absl::StrCat("signing certificate SPIFFE ID \"", uri,
                                    "\" must not have a path (§3.2)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SpiffeId> Verify(const std::vector<crypto::Certificate>& chain,
                                const BundleSource& bundles, absl::Time now) {
  if (chain.empty()) return SvidError("empty certificate chain");
  SIGIL_ASSIGN_OR_RETURN(SpiffeId id, ValidateLeaf(chain.front()));
  SIGIL_RETURN_IF_ERROR(ValidateSigningCertificates(chain));
  // Only the leaf's own trust domain may vouch for it (X509-SVID §5,
  // Trust Domain and Bundle §3): a CA trusted for another domain is not
  // consulted even when it signed this chain.
  absl::StatusOr<Bundle> bundle = bundles.GetBundleForTrustDomain(id.trust_domain());
  if (!bundle.ok()) {
    if (absl::IsNotFound(bundle.status())) {
      return absl::NotFoundError(absl::StrCat("x509svid: no bundle for trust domain \"",
                                              id.trust_domain().name(), "\""));
    }
    return bundle.status();
  }
  if (bundle->x509_authorities().empty()) {
    return SvidError(absl::StrCat("bundle of trust domain \"", id.trust_domain().name(),
                                  "\" has no X.509 authorities"));
  }
  absl::StatusOr<std::vector<crypto::Certificate>> path =
      crypto::VerifyChain(chain, bundle->x509_authorities(), now);
  if (!path.ok()) {
    return SvidError(absl::StrCat("could not verify leaf certificate against the bundle of \"",
                                  id.trust_domain().name(), "\": ", path.status().message()));
  }
  return id;
}

}  // namespace sigil::spiffe
