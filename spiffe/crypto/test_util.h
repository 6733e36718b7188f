#pragma once

// Helpers shared by the crypto_test sources (not part of sigil_crypto):
// fixtures, certificate templates, OpenSSL's own parser. Status assertions,
// temporary directories and the shell come from tests/util/.

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"
#include "tests/util/files.h"
#include "tests/util/shell.h"
#include "tests/util/status_matchers.h"

namespace sigil::crypto::testing {

using ::sigil::testing::RunShell;
using ::sigil::testing::ShellResult;
using ::sigil::testing::TempDir;

// The instant the tests treat as now: 2030-01-01T00:00:00Z, inside the
// validity of the checked-in OpenSSL fixtures.
inline absl::Time TestNow() { return absl::FromUnixSeconds(1893456000); }

// Reads tests/testdata/crypto/<name>.
inline std::string Fixture(const std::string& name) {
  return ::sigil::testing::ReadTestData("crypto/" + name);
}

inline CertificateTemplate RootTemplate(absl::Time now = TestNow()) {
  CertificateTemplate t;
  t.serial = RandomSerial();
  t.subject = {{NameAttribute::kCountry, "US"}, {NameAttribute::kOrganization, "SPIFFE"}};
  t.not_before = now - absl::Hours(1);
  t.not_after = now + absl::Hours(24 * 365);
  t.is_ca = true;
  t.key_usage = kKeyUsageKeyCertSign | kKeyUsageCrlSign;
  t.uri_sans = {"spiffe://example.org"};
  return t;
}

// The X509-SVID leaf shape SPIRE issues.
inline CertificateTemplate LeafTemplate(absl::Time now = TestNow(),
                                        const std::string& uri = "spiffe://example.org/workload") {
  CertificateTemplate t;
  t.serial = RandomSerial();
  t.subject = {{NameAttribute::kCountry, "US"}, {NameAttribute::kOrganization, "SPIRE"}};
  t.not_before = now - absl::Seconds(10);
  t.not_after = now + absl::Hours(1);
  t.key_usage = kKeyUsageDigitalSignature | kKeyUsageKeyEncipherment | kKeyUsageKeyAgreement;
  t.ext_key_usage = {ExtKeyUsage::kServerAuth, ExtKeyUsage::kClientAuth};
  t.uri_sans = {uri};
  return t;
}

// Parses DER with OpenSSL's own X.509 parser (independent of Certificate).
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
inline std::unique_ptr<X509, X509Free> OpenSslParse(absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  EXPECT_NE(x, nullptr) << "OpenSSL refused the certificate";
  if (x != nullptr) {
    EXPECT_EQ(p, reinterpret_cast<const unsigned char*>(der.data()) + der.size());
  }
  return std::unique_ptr<X509, X509Free>(x);
}

}  // namespace sigil::crypto::testing
