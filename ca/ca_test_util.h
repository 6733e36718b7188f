#pragma once

// Helpers shared by the ca_test sources (not part of sigil_ca): keys and an
// upstream PKI made at test time. Status assertions, temporary directories
// and the shell come from tests/util/.

#include <map>
#include <string>

#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"
#include "tests/util/files.h"
#include "tests/util/shell.h"
#include "tests/util/status_matchers.h"

namespace sigil::ca::testing {

using ::sigil::testing::RunShell;
using ::sigil::testing::TempDir;
using ::sigil::testing::WriteTestFile;

// Keys are expensive, so each index is generated once per test binary.
inline const crypto::PrivateKey& TestKey(int index = 0) {
  static auto* cache = new std::map<int, crypto::PrivateKey>();
  auto it = cache->find(index);
  if (it == cache->end()) {
    it = cache->emplace(index, crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value())
             .first;
  }
  return it->second;
}

inline crypto::CertificateTemplate CaTemplate(const std::string& cn, absl::Time not_before,
                                              absl::Time not_after) {
  crypto::CertificateTemplate t;
  t.serial = crypto::RandomSerial();
  t.subject = {{crypto::NameAttribute::kOrganization, "Upstream test PKI"},
               {crypto::NameAttribute::kCommonName, cn}};
  t.not_before = not_before;
  t.not_after = not_after;
  t.is_ca = true;
  t.key_usage = crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign;
  return t;
}

// An upstream PKI: a root and an intermediate signed by it.
struct UpstreamPki {
  crypto::PrivateKey root_key;
  crypto::Certificate root;
  crypto::PrivateKey intermediate_key;
  crypto::Certificate intermediate;
};

inline UpstreamPki MakeUpstreamPki(absl::Time now, absl::Duration root_ttl,
                                   absl::Duration intermediate_ttl) {
  const crypto::PrivateKey& root_key = TestKey(100);
  const crypto::PrivateKey& intermediate_key = TestKey(101);
  crypto::Certificate root =
      crypto::SelfSign(CaTemplate("upstream root", now - absl::Hours(1), now + root_ttl), root_key)
          .value();
  auto issuer = crypto::CertificateIssuer::Create(root, root_key).value();
  crypto::Certificate intermediate =
      issuer
          ->Issue(CaTemplate("upstream intermediate", now - absl::Hours(1), now + intermediate_ttl),
                  intermediate_key.public_key().spki_der())
          .value();
  return UpstreamPki{root_key, root, intermediate_key, intermediate};
}

}  // namespace sigil::ca::testing
