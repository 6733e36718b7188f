#pragma once

// Test-only helpers for spiffe_test: keys, CA hierarchies and SVIDs built
// with the crypto layer at test time (nothing is read from disk).

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"

namespace sigil::spiffe::testing {

// Fixed "now" for every test: 2026-01-01T00:00:00Z.
inline absl::Time TestNow() { return absl::FromUnixSeconds(1767225600); }

// A P-521 key for ES512, which crypto::KeyType cannot generate. Test-only
// material, made with:
//   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521
inline constexpr char kP521KeyPem[] = R"(-----BEGIN PRIVATE KEY-----
MIHuAgEAMBAGByqGSM49AgEGBSuBBAAjBIHWMIHTAgEBBEIAXCOIqlXY5ofWTYgD
bzx5yj1XJS3nwHMg+xswzrUBPk9IxK1k77vPDWxPECnfbiM9updhOyhe3BlteGYr
5xvV00ahgYkDgYYABAHiHHEuxnwqKocUz94An26v0R0RgDG7oLupaOfJBq5W/c9s
lZgiiAqwihugoisqDD97Cpr5ubD/i2fICW9W2EaKSgH0t8Olp628bKyD/EqdX6uK
Vryio4V3kQU2TFPreuxQNyqC6rYWsM9typMSccdzVN07pTVrOiSckcggXdyPlI6W
Zg==
-----END PRIVATE KEY-----
)";

// Keys are expensive (RSA especially), so each (type, index) pair is
// generated once per test binary and reused.
inline const crypto::PrivateKey& TestKey(crypto::KeyType type, int index = 0) {
  static auto* cache = new std::map<std::pair<crypto::KeyType, int>, crypto::PrivateKey>();
  auto it = cache->find({type, index});
  if (it == cache->end()) {
    it = cache->emplace(std::make_pair(type, index), crypto::PrivateKey::Generate(type).value())
             .first;
  }
  return it->second;
}

inline const crypto::PrivateKey& P521Key() {
  static auto* key = new crypto::PrivateKey(crypto::PrivateKey::FromPem(kP521KeyPem).value());
  return *key;
}

inline std::string NextSerial() {
  static int serial = 1;
  return std::string(1, static_cast<char>(serial++ % 120 + 1)) + crypto::RandomBytes(8);
}

// A CA template valid from an hour before TestNow() for a day.
inline crypto::CertificateTemplate CaTemplate(const std::string& uri_san) {
  crypto::CertificateTemplate t;
  t.serial = NextSerial();
  t.subject = {{crypto::NameAttribute::kOrganization, "Sigil test"},
               {crypto::NameAttribute::kCommonName, uri_san.empty() ? "Sigil test CA" : uri_san}};
  t.not_before = TestNow() - absl::Hours(1);
  t.not_after = TestNow() + absl::Hours(24);
  t.is_ca = true;
  t.key_usage = crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign;
  if (!uri_san.empty()) t.uri_sans = {uri_san};
  return t;
}

// A leaf SVID template valid from an hour before TestNow() for two hours.
inline crypto::CertificateTemplate LeafTemplate(const std::string& spiffe_id) {
  crypto::CertificateTemplate t;
  t.serial = NextSerial();
  t.subject = {{crypto::NameAttribute::kOrganization, "Sigil test"}};
  t.not_before = TestNow() - absl::Hours(1);
  t.not_after = TestNow() + absl::Hours(1);
  t.key_usage = crypto::kKeyUsageDigitalSignature | crypto::kKeyUsageKeyEncipherment;
  t.ext_key_usage = {crypto::ExtKeyUsage::kServerAuth, crypto::ExtKeyUsage::kClientAuth};
  t.uri_sans = {spiffe_id};
  return t;
}

struct TestCa {
  crypto::Certificate cert;
  crypto::PrivateKey key;
  std::shared_ptr<crypto::CertificateIssuer> issuer;

  crypto::Certificate Issue(const crypto::CertificateTemplate& t,
                            const crypto::PublicKey& subject) const {
    return issuer->Issue(t, subject.spki_der()).value();
  }
};

inline TestCa MakeRootCa(const std::string& trust_domain, const crypto::PrivateKey& key) {
  crypto::Certificate cert =
      crypto::SelfSign(CaTemplate("spiffe://" + trust_domain), key).value();
  std::shared_ptr<crypto::CertificateIssuer> issuer =
      crypto::CertificateIssuer::Create(cert, key).value();
  return TestCa{cert, key, std::move(issuer)};
}

inline TestCa MakeIntermediateCa(const TestCa& parent, const std::string& trust_domain,
                                 const crypto::PrivateKey& key) {
  crypto::Certificate cert = parent.Issue(CaTemplate("spiffe://" + trust_domain), key.public_key());
  std::shared_ptr<crypto::CertificateIssuer> issuer =
      crypto::CertificateIssuer::Create(cert, key).value();
  return TestCa{cert, key, std::move(issuer)};
}

}  // namespace sigil::spiffe::testing
