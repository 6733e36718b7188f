#include "server/cli/bundle_format.h"

#include <sstream>

#include "apitypes/convert.h"
#include "apitypes/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sigil::server::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace types = ::spire::api::types;

class BundleFormatTest : public apitypes::testing::BundleProtoTest {};

TEST(ParseBundleFormat, PemIsTheDefault) {
  EXPECT_EQ(*ParseBundleFormat(""), BundleFormat::kPem);
  EXPECT_EQ(*ParseBundleFormat("PEM"), BundleFormat::kPem);
  EXPECT_EQ(*ParseBundleFormat("spiffe"), BundleFormat::kSpiffe);
  EXPECT_EQ(ParseBundleFormat("jwks").status().message(), "invalid format: \"jwks\"");
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
  EXPECT_EQ(*parsed, *apitypes::BundleFromProto(Proto()));
}

TEST_F(BundleFormatTest, WriteSpiffeOfMalformedBundleNamesThePart) {
  types::Bundle p = Proto();
  p.mutable_x509_authorities(0)->set_asn1("junk");
  std::ostringstream out;
  absl::Status s = WriteBundle(p, BundleFormat::kSpiffe, /*header=*/false, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("bundle example.org: x509_authorities[0]: "));
  EXPECT_EQ(out.str(), "");
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
