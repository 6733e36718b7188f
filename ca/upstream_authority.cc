#include "ca/upstream_authority.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace sigil::ca {
namespace {

constexpr absl::string_view kPrefix = "upstreamauthority(disk): ";

absl::Status FileError(absl::string_view field, const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(kPrefix, field, " \"", path, "\": ", why));
}

absl::StatusOr<std::string> ReadNamedFile(absl::string_view field, const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, field, " must not be empty"));
  }
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return FileError(field, path, text.status().message());
  return text;
}

bool Contains(const std::vector<crypto::Certificate>& certs, const crypto::Certificate& cert) {
  return std::find(certs.begin(), certs.end(), cert) != certs.end();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DiskUpstreamAuthority>> DiskUpstreamAuthority::Create(
    const std::string& cert_file_path, const std::string& key_file_path,
    const std::string& bundle_file_path, absl::Time now) {
  SIGIL_ASSIGN_OR_RETURN(std::string cert_pem, ReadNamedFile("cert_file_path", cert_file_path));
  absl::StatusOr<std::vector<crypto::Certificate>> certs =
      crypto::Certificate::ParsePemChain(cert_pem);
  if (!certs.ok()) return FileError("cert_file_path", cert_file_path, certs.status().message());
  const crypto::Certificate& upstream = certs->front();

  absl::StatusOr<crypto::PrivateKey> key;
  {
    SIGIL_ASSIGN_OR_RETURN(std::string key_pem, ReadNamedFile("key_file_path", key_file_path));
    key = crypto::PrivateKey::FromPem(key_pem);
    std::fill(key_pem.begin(), key_pem.end(), '\0');
  }
  if (!key.ok()) return FileError("key_file_path", key_file_path, key.status().message());
  if (key->public_key() != upstream.public_key()) {
    return FileError("key_file_path", key_file_path,
                     absl::StrCat("the key does not match the certificate in \"", cert_file_path,
                                  "\""));
  }
  if (!upstream.is_ca() || !upstream.has_key_usage() ||
      (upstream.key_usage() & crypto::kKeyUsageKeyCertSign) == 0) {
    return FileError("cert_file_path", cert_file_path,
                     "the certificate is not a CA certificate with the keyCertSign key usage");
  }

  std::vector<crypto::Certificate> roots;
  if (!bundle_file_path.empty()) {
    SIGIL_ASSIGN_OR_RETURN(std::string bundle_pem,
                           ReadNamedFile("bundle_file_path", bundle_file_path));
    absl::StatusOr<std::vector<crypto::Certificate>> parsed =
        crypto::Certificate::ParsePemChain(bundle_pem);
    if (!parsed.ok()) {
      return FileError("bundle_file_path", bundle_file_path, parsed.status().message());
    }
    roots = *std::move(parsed);
  } else {
    if (upstream.subject() != upstream.issuer() ||
        !crypto::VerifyChain({upstream}, {upstream}, now).ok()) {
      return FileError("cert_file_path", cert_file_path,
                       "the certificate is not self-signed, so bundle_file_path must name its "
                       "roots");
    }
    roots.push_back(upstream);
  }

  absl::StatusOr<std::vector<crypto::Certificate>> path = crypto::VerifyChain(*certs, roots, now);
  if (!path.ok()) {
    return FileError("cert_file_path", cert_file_path,
                     absl::StrCat("the certificate chain does not verify against the roots",
                                  bundle_file_path.empty() ? "" : " of \"", bundle_file_path,
                                  bundle_file_path.empty() ? "" : "\"", ": ",
                                  path.status().message()));
  }
  absl::Time cap = absl::InfiniteFuture();
  for (const crypto::Certificate& cert : *path) cap = std::min(cap, cert.not_after());

  absl::StatusOr<std::unique_ptr<crypto::CertificateIssuer>> issuer =
      crypto::CertificateIssuer::Create(upstream, *key);
  if (!issuer.ok()) return FileError("key_file_path", key_file_path, issuer.status().message());

  std::vector<crypto::Certificate> chain;
  for (const crypto::Certificate& cert : *certs) {
    if (!Contains(roots, cert)) chain.push_back(cert);
  }
  return std::unique_ptr<DiskUpstreamAuthority>(new DiskUpstreamAuthority(
      std::move(chain), std::move(roots), *std::move(issuer), cap));
}

absl::StatusOr<UpstreamSignedCa> DiskUpstreamAuthority::MintX509Ca(
    const crypto::PublicKey& ca_key, const crypto::DistinguishedName& subject,
    const spiffe::TrustDomain& td, absl::Time not_before, absl::Time not_after) {
  if (not_after <= not_before) {
    return absl::InvalidArgumentError(
        absl::StrCat(kPrefix, "not_after must be later than not_before"));
  }
  if (not_after_cap_ <= not_before) {
    return absl::FailedPreconditionError(absl::StrCat(
        kPrefix, "the upstream certificate expired at ", absl::FormatTime(not_after_cap_)));
  }
  crypto::CertificateTemplate tmpl;
  tmpl.serial = crypto::RandomSerial();
  tmpl.subject = subject;
  tmpl.not_before = not_before;
  tmpl.not_after = std::min(not_after, not_after_cap_);
  tmpl.is_ca = true;
  tmpl.key_usage = crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign |
                   crypto::kKeyUsageDigitalSignature;
  tmpl.uri_sans = {td.IdString()};
  absl::StatusOr<crypto::Certificate> ca = issuer_->Issue(tmpl, ca_key.spki_der());
  if (!ca.ok()) {
    return absl::Status(ca.status().code(),
                        absl::StrCat(kPrefix, "cannot sign the CA certificate: ",
                                     ca.status().message()));
  }
  UpstreamSignedCa out;
  out.chain.reserve(chain_.size() + 1);
  out.chain.push_back(*std::move(ca));
  out.chain.insert(out.chain.end(), chain_.begin(), chain_.end());
  out.roots = roots_;
  return out;
}

}  // namespace sigil::ca
