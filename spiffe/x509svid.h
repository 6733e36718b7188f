#pragma once

// X509-SVIDs per the X509-SVID standard (spiffe/standards/X509-SVID.md).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "spiffe/bundle.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/id.h"

namespace sigil::spiffe {

// An SVID with its private key (what a workload holds).
struct X509Svid {
  SpiffeId id;
  std::vector<crypto::Certificate> chain;  // leaf first
  crypto::PrivateKey key;
  std::string hint;

  // Parses a chain (PEM or concatenated DER, detected by a leading
  // "-----BEGIN ") and a key (PEM, or DER PKCS#8; the PEM may also hold
  // certificates, but exactly one private key, unencrypted). Checks the leaf
  // policy (ValidateLeaf), the signing-certificate policy of every further
  // certificate, and that the key matches the leaf's public key
  // (InvalidArgument "private key does not match the leaf certificate").
  // Every failure is InvalidArgument. Does not verify the chain (see Verify).
  static absl::StatusOr<X509Svid> Parse(absl::string_view certs, absl::string_view key);

  absl::Time expires_at() const { return chain.front().not_after(); }
};

// Leaf rules (§2, §3.1, §4, §5.2): exactly one URI SAN, holding a valid
// SPIFFE ID with a non-root path; CA must be false; key usage must include
// digitalSignature and exclude keyCertSign and cRLSign. Returns the leaf's
// SPIFFE ID. InvalidArgument quoting the violated rule and its section.
// (Criticality of the key usage extension is not checked: the crypto layer
// does not expose it.)
absl::StatusOr<SpiffeId> ValidateLeaf(const crypto::Certificate& leaf);

// Signing-certificate rules (§3.2, §4): CA=true and keyCertSign set; a
// SPIFFE ID URI SAN, when present, has no path. InvalidArgument otherwise.
absl::Status ValidateSigningCertificate(const crypto::Certificate& cert);

// Verifies an SVID chain (leaf first): leaf policy, signing-certificate
// policy for every intermediate, and path validation at `now` against only
// the X.509 authorities of the leaf's own trust domain from `bundles`.
// The chain may end with the root. Returns the leaf's ID. NotFound when
// `bundles` has no bundle for that trust domain (other errors of `bundles`
// are passed through); InvalidArgument for an empty chain and every policy
// or verification failure (including a bundle without X.509 authorities).
absl::StatusOr<SpiffeId> Verify(const std::vector<crypto::Certificate>& chain,
                                const BundleSource& bundles, absl::Time now);

}  // namespace sigil::spiffe
