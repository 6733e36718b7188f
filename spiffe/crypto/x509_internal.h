#pragma once

// Internal to spiffe/crypto/: pieces of X.509 DER shared by the certificate
// builder (x509_builder.cc) and the CSR code (csr.cc).

#include <memory>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/openssl_util.h"
#include "spiffe/crypto/x509_builder.h"

namespace sigil::crypto::internal {

// A Name (RFC 5280 §4.1.2.4): one RDN per attribute, C and serialNumber as
// PrintableString, the others as UTF8String. InvalidArgument naming the
// attribute when a value is empty, too long (upper bounds of RFC 5280
// Appendix A.1), not valid UTF-8, or outside PrintableString's alphabet.
absl::StatusOr<std::string> EncodeName(const DistinguishedName& name);

// The extnValue contents of a subjectAltName holding `uris` then `dns`
// names. InvalidArgument when one is empty or not an IA5String (ASCII).
absl::StatusOr<std::string> SubjectAltNameValue(const std::vector<std::string>& uris,
                                                const std::vector<std::string>& dns);

// One Extension SEQUENCE (critical flag omitted when false, as DER wants).
std::string Extension(absl::string_view oid, bool critical, absl::string_view value_der);

// How `key` signs certificates and CSRs: the AlgorithmIdentifier DER and
// digest. ecdsa-with-SHA256/384/512 for P-256/P-384/P-521,
// sha256WithRSAEncryption for RSA.
struct SignatureAlgorithm {
  std::string algorithm_identifier_der;
  const EVP_MD* md = nullptr;
  // A signing context already initialised for the key (EVP_DigestSignInit
  // done once), copied for each signature: the copy skips the algorithm
  // fetches that an init repeats. Only read after construction, so several
  // threads may copy it at once. Null when the library could not make one.
  std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX, EVP_MD_CTX_free>> ready;
};
// `prepare` = also build `ready` (for issuers that sign many times).
SignatureAlgorithm SignatureAlgorithmFor(const PrivateKey& key, bool prepare = false);

// Signs `tbs` once with `key` (through alg.ready when set) and returns
// SEQUENCE { tbs, algorithm, BIT STRING signature } (a Certificate or a
// CertificationRequest).
absl::StatusOr<std::string> SignAndWrap(const PrivateKey& key, const SignatureAlgorithm& alg,
                                        absl::string_view tbs);

}  // namespace sigil::crypto::internal
