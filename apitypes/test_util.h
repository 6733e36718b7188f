#pragma once

// Test-only helpers for tests of code that converts or prints
// spire.api.types messages (not part of sigil_apitypes).

#include <gtest/gtest.h>

#include "spiffe/crypto/key.h"
#include "spiffe/spiffe_test_util.h"
#include "spire/api/types/bundle.pb.h"

namespace sigil::apitypes::testing {

// A fixture whose Proto() is a types.Bundle of example.org: one X.509
// authority (ca_, a root CA), one JWT authority "kid-a" (jwt_key_'s public
// key, expiring at 2026-01-01T01:00:00Z), refresh hint 60 s, sequence
// number 11. Keys come from spiffe::testing::TestKey, so every test sees the
// same ones.
class BundleProtoTest : public ::testing::Test {
 protected:
  BundleProtoTest()
      : ca_(spiffe::testing::MakeRootCa("example.org",
                                        spiffe::testing::TestKey(crypto::KeyType::kEcP256))),
        jwt_key_(spiffe::testing::TestKey(crypto::KeyType::kEcP256, 1)) {}

  spire::api::types::Bundle Proto() const {
    spire::api::types::Bundle b;
    b.set_trust_domain("example.org");
    b.add_x509_authorities()->set_asn1(ca_.cert.der());
    spire::api::types::JWTKey* k = b.add_jwt_authorities();
    k->set_key_id("kid-a");
    k->set_public_key(jwt_key_.public_key().spki_der());
    k->set_expires_at(1767229200);
    b.set_refresh_hint(60);
    b.set_sequence_number(11);
    return b;
  }

  spiffe::testing::TestCa ca_;
  crypto::PrivateKey jwt_key_;
};

}  // namespace sigil::apitypes::testing
