#include "server/cli/bundle_format.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spiffe/spiffe_test_util.h"

namespace sigil::server::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace types = ::spire::api::types;

class BundleFormatTest : public ::testing::Test {
 protected:
  BundleFormatTest()
      : ca_(spiffe::testing::MakeRootCa("example.org",
                                        spiffe::testing::TestKey(crypto::KeyType::kEcP256))),
        jwt_key_(spiffe::testing::TestKey(crypto::KeyType::kEcP256, 1)) {}

  types::Bundle Proto() {
    types::Bundle b;
    b.set_trust_domain("example.org");
    b.add_x509_authorities()->set_asn1(ca_.cert.der());
    types::JWTKey* k = b.add_jwt_authorities();
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

TEST(ParseBundleFormat, PemIsTheDefault) {
  EXPECT_EQ(*ParseBundleFormat(""), BundleFormat::kPem);
  EXPECT_EQ(*ParseBundleFormat("PEM"), BundleFormat::kPem);
  EXPECT_EQ(*ParseBundleFormat("spiffe"), BundleFormat::kSpiffe);
  EXPECT_EQ(ParseBundleFormat("jwks").status().message(), "invalid format: \"jwks\"");
}

TEST_F(BundleFormatTest, ProtoRoundTripsThroughSpiffeBundle) {
  absl::StatusOr<spiffe::Bundle> b = BundleFromProto(Proto());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->trust_domain().name(), "example.org");
  ASSERT_EQ(b->x509_authorities().size(), 1u);
  const spiffe::JwtAuthority* a = b->FindJwtAuthority("kid-a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->public_key, jwt_key_.public_key());
  EXPECT_EQ(a->expires_at, absl::FromUnixSeconds(1767229200));
  EXPECT_EQ(b->refresh_hint(), absl::Seconds(60));
  EXPECT_EQ(b->sequence_number(), 11u);
  EXPECT_EQ(BundleToProto(*b).SerializeAsString(), Proto().SerializeAsString());
}

TEST_F(BundleFormatTest, ZeroHintAndSequenceAreUnset) {
  types::Bundle p = Proto();
  p.set_refresh_hint(0);
  p.set_sequence_number(0);
  absl::StatusOr<spiffe::Bundle> b = BundleFromProto(p);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->refresh_hint().has_value());
  EXPECT_FALSE(b->sequence_number().has_value());
  EXPECT_THAT(b->ToSpiffeJson(), Not(HasSubstr("spiffe_sequence")));
}

TEST_F(BundleFormatTest, BadMaterialIsNamed) {
  types::Bundle p = Proto();
  p.mutable_x509_authorities(0)->set_asn1("junk");
  EXPECT_THAT(std::string(BundleFromProto(p).status().message()), StartsWith("unable to parse root CA 0: "));
  p = Proto();
  p.mutable_jwt_authorities(0)->set_public_key("junk");
  EXPECT_THAT(std::string(BundleFromProto(p).status().message()),
              StartsWith("unable to parse JWT signing key 0: "));
  p = Proto();
  p.set_trust_domain("Bad.Org");
  EXPECT_THAT(std::string(BundleFromProto(p).status().message()),
              StartsWith("bundle trust domain \"Bad.Org\" is not valid"));
}

TEST_F(BundleFormatTest, WritePemListsX509AuthoritiesOnly) {
  std::ostringstream out;
  ASSERT_TRUE(WriteBundle(Proto(), BundleFormat::kPem, /*header=*/false, out).ok());
  EXPECT_EQ(out.str(), ca_.cert.ToPem());
}

TEST_F(BundleFormatTest, WriteSpiffeIsIndentedJson) {
  std::ostringstream out;
  ASSERT_TRUE(WriteBundle(Proto(), BundleFormat::kSpiffe, /*header=*/false, out).ok());
  EXPECT_THAT(out.str(), StartsWith("{\n    \"keys\": [\n"));
  EXPECT_THAT(out.str(), HasSubstr("\"spiffe_sequence\": 11"));
  EXPECT_THAT(out.str(), HasSubstr("\"spiffe_refresh_hint\": 60"));
  EXPECT_EQ(out.str().back(), '\n');
  absl::StatusOr<spiffe::Bundle> parsed = spiffe::Bundle::ParseSpiffeJson(
      spiffe::TrustDomain::FromString("example.org").value(), out.str());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, *BundleFromProto(Proto()));
}

TEST_F(BundleFormatTest, HeaderNamesTheTrustDomain) {
  std::ostringstream out;
  ASSERT_TRUE(WriteBundle(Proto(), BundleFormat::kPem, /*header=*/true, out).ok());
  EXPECT_THAT(out.str(), StartsWith("****************************************\n"
                                    "* example.org\n"
                                    "****************************************\n"
                                    "-----BEGIN CERTIFICATE-----\n"));
}

TEST_F(BundleFormatTest, WriteFailsOnBadCertificateWithoutPrinting) {
  types::Bundle p = Proto();
  p.mutable_x509_authorities(0)->set_asn1("junk");
  std::ostringstream out;
  absl::Status s = WriteBundle(p, BundleFormat::kPem, /*header=*/true, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("unable to parse certificates ASN.1 DER data: "));
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace sigil::server::cli
