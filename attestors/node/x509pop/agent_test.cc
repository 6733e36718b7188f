#include "attestors/node/x509pop/agent.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "attestors/node/x509pop/server.h"
#include "attestors/node/x509pop/test_util.h"
#include "spiffe/crypto/encoding.h"

namespace sigil::attestors::node::x509pop {
namespace {

using ::sigil::attestors::node::x509pop::testing::CaTemplate;
using ::sigil::attestors::node::x509pop::testing::FixtureCert;
using ::sigil::attestors::node::x509pop::testing::FixturePath;
using ::sigil::attestors::node::x509pop::testing::Issued;
using ::sigil::attestors::node::x509pop::testing::IssueFrom;
using ::sigil::attestors::node::x509pop::testing::NewKey;
using ::sigil::attestors::node::x509pop::testing::NodeTemplate;
using ::sigil::attestors::node::x509pop::testing::SelfSigned;
using ::sigil::attestors::node::x509pop::testing::TempDir;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

Challenge EcChallenge() {
  Challenge c;
  c.ecdsa_signature = EcdsaSignatureChallenge{crypto::RandomBytes(kNonceSize)};
  return c;
}

Challenge RsaChallenge() {
  Challenge c;
  c.rsa_signature = RsaSignatureChallenge{crypto::RandomBytes(kNonceSize)};
  return c;
}

class X509PopAgent : public ::testing::Test {
 protected:
  X509PopAgent() : root_(SelfSigned(CaTemplate("Root"))), intermediate_(IssueFrom(root_, CaTemplate("Inter"))) {}

  AgentConfig Write(const Issued& node, bool chain_in_certificate_file) {
    AgentConfig config;
    std::string certs = node.cert.ToPem();
    if (chain_in_certificate_file) certs += intermediate_.cert.ToPem();
    config.certificate_path = dir_.Write("node.pem", certs);
    config.private_key_path = dir_.Write("node.key", node.key.ToPkcs8Pem());
    return config;
  }

  TempDir dir_;
  Issued root_;
  Issued intermediate_;
};

TEST_F(X509PopAgent, NameIsX509pop) {
  Issued node = IssueFrom(intermediate_, NodeTemplate("n"));
  ASSERT_OK_AND_ASSIGN(auto agent, X509PopAgentAttestor::Create(Write(node, false)));
  EXPECT_EQ(agent->name(), "x509pop");
}

TEST_F(X509PopAgent, RequiresKeyAndCertificatePaths) {
  AgentConfig no_key;
  no_key.certificate_path = FixturePath("ec_leaf.pem");
  EXPECT_STATUS(X509PopAgentAttestor::Create(no_key), kInvalid, "nodeattestor(x509pop): private_key_path is required");
  AgentConfig no_cert;
  no_cert.private_key_path = FixturePath("ec_leaf_key.pem");
  EXPECT_STATUS(X509PopAgentAttestor::Create(no_cert), kInvalid, "nodeattestor(x509pop): certificate_path is required");
}

TEST_F(X509PopAgent, UnreadableFilesKeepTheirCode) {
  AgentConfig config;
  config.certificate_path = dir_.path() + "/missing.pem";
  config.private_key_path = FixturePath("ec_leaf_key.pem");
  EXPECT_STATUS(X509PopAgentAttestor::Create(config), absl::StatusCode::kNotFound,
                "nodeattestor(x509pop): unable to load keypair: ");
  config.certificate_path = FixturePath("ec_leaf.pem");
  config.intermediates_path = dir_.path() + "/missing-intermediates.pem";
  EXPECT_STATUS(X509PopAgentAttestor::Create(config), absl::StatusCode::kNotFound,
                "nodeattestor(x509pop): unable to load intermediate certificates: ");
}

TEST_F(X509PopAgent, MalformedFilesAreRefused) {
  AgentConfig config;
  config.certificate_path = dir_.Write("bad.pem", "hello");
  config.private_key_path = FixturePath("ec_leaf_key.pem");
  EXPECT_STATUS(X509PopAgentAttestor::Create(config), kInvalid,
                "unable to load keypair: certificate_path \"" + config.certificate_path +
                    "\": no PEM \"CERTIFICATE\" block found");
  config.certificate_path = FixturePath("ec_leaf.pem");
  config.private_key_path = FixturePath("ec_leaf.pem");
  EXPECT_STATUS(X509PopAgentAttestor::Create(config), kInvalid, "unable to load keypair: private_key_path \"");
  config.private_key_path = FixturePath("ec_leaf_key.pem");
  config.intermediates_path = dir_.Write("bad-intermediates.pem", "nothing");
  EXPECT_STATUS(X509PopAgentAttestor::Create(config), kInvalid, "unable to load intermediate certificates: \"");
}

TEST_F(X509PopAgent, KeyMustMatchTheLeaf) {
  AgentConfig config;
  config.certificate_path = FixturePath("ec_leaf.pem");
  config.private_key_path = FixturePath("rsa_leaf_key.pem");
  EXPECT_STATUS(X509PopAgentAttestor::Create(config), kInvalid,
                "unable to load keypair: the private key does not match the public key of the first certificate");
}

TEST_F(X509PopAgent, PayloadIsTheChainAsSpireSendsIt) {
  Issued node = IssueFrom(intermediate_, NodeTemplate("n"));
  AgentConfig config = Write(node, /*chain_in_certificate_file=*/true);
  config.intermediates_path = dir_.Write("more.pem", root_.cert.ToPem());
  ASSERT_OK_AND_ASSIGN(auto agent, X509PopAgentAttestor::Create(config));
  ASSERT_OK_AND_ASSIGN(std::string payload, agent->Payload());
  EXPECT_EQ(payload, absl::StrCat(R"({"certificates":[")", crypto::Base64Encode(node.cert.der()), R"(",")",
                                  crypto::Base64Encode(intermediate_.cert.der()), R"(",")",
                                  crypto::Base64Encode(root_.cert.der()), R"("]})"));
}

TEST_F(X509PopAgent, WhitespaceIntermediatesPathIsIgnoredAsInSpire) {
  Issued node = IssueFrom(intermediate_, NodeTemplate("n"));
  AgentConfig config = Write(node, false);
  config.intermediates_path = "  ";
  ASSERT_OK_AND_ASSIGN(auto agent, X509PopAgentAttestor::Create(config));
  ASSERT_OK_AND_ASSIGN(std::string payload, agent->Payload());
  ASSERT_OK_AND_ASSIGN(AttestationData data, UnmarshalAttestationData(payload));
  EXPECT_EQ(data.certificates.size(), 1u);
}

TEST_F(X509PopAgent, PayloadRereadsRenewedFilesAndAnswersWithTheNewKey) {
  Issued old_node = IssueFrom(intermediate_, NodeTemplate("n"));
  AgentConfig config = Write(old_node, false);
  ASSERT_OK_AND_ASSIGN(auto agent, X509PopAgentAttestor::Create(config));
  Issued renewed = IssueFrom(intermediate_, NodeTemplate("n"));
  dir_.Write("node.pem", renewed.cert.ToPem());
  dir_.Write("node.key", renewed.key.ToPkcs8Pem());
  ASSERT_OK_AND_ASSIGN(std::string payload, agent->Payload());
  ASSERT_OK_AND_ASSIGN(AttestationData data, UnmarshalAttestationData(payload));
  ASSERT_EQ(data.certificates.size(), 1u);
  EXPECT_EQ(data.certificates[0], renewed.cert.der());

  Challenge challenge = EcChallenge();
  ASSERT_OK_AND_ASSIGN(std::string answer, agent->Answer(MarshalChallenge(challenge)));
  ASSERT_OK_AND_ASSIGN(Response response, UnmarshalResponse(answer));
  EXPECT_OK(VerifyChallengeResponse(renewed.cert.public_key(), challenge, response));
  EXPECT_STATUS(VerifyChallengeResponse(old_node.cert.public_key(), challenge, response),
                absl::StatusCode::kPermissionDenied, "ECDSA signature verify failed");
}

TEST_F(X509PopAgent, PayloadFailsWhenFilesVanish) {
  Issued node = IssueFrom(intermediate_, NodeTemplate("n"));
  AgentConfig config = Write(node, false);
  ASSERT_OK_AND_ASSIGN(auto agent, X509PopAgentAttestor::Create(config));
  ASSERT_EQ(std::remove(config.private_key_path.c_str()), 0);
  EXPECT_STATUS(agent->Payload(), absl::StatusCode::kNotFound, "nodeattestor(x509pop): unable to load keypair");
}

TEST_F(X509PopAgent, EcAnswerIsSpireShaped) {
  Issued node = IssueFrom(intermediate_, NodeTemplate("n"));
  ASSERT_OK_AND_ASSIGN(auto agent, X509PopAgentAttestor::Create(Write(node, false)));
  // r and s are minimal big-endian integers (Go's big.Int.Bytes): never a
  // leading zero byte, at most the field size.
  for (int i = 0; i < 64; ++i) {
    Challenge challenge = EcChallenge();
    ASSERT_OK_AND_ASSIGN(std::string answer, agent->Answer(MarshalChallenge(challenge)));
    ASSERT_TRUE(absl::StartsWith(answer, R"({"rsa_signature":null,"ecdsa_signature":{"nonce":")")) << answer;
    ASSERT_OK_AND_ASSIGN(Response response, UnmarshalResponse(answer));
    ASSERT_TRUE(response.ecdsa_signature.has_value());
    EXPECT_EQ(response.ecdsa_signature->nonce.size(), kNonceSize);
    for (const std::string* v : {&response.ecdsa_signature->r, &response.ecdsa_signature->s}) {
      ASSERT_FALSE(v->empty());
      EXPECT_NE(v->front(), '\0');
      EXPECT_LE(v->size(), 32u);
    }
    EXPECT_OK(VerifyChallengeResponse(node.cert.public_key(), challenge, response));
  }
}

TEST_F(X509PopAgent, RsaAnswerIsPssOverBothNonces) {
  AgentConfig config;
  config.certificate_path = FixturePath("rsa_leaf.pem");
  config.private_key_path = FixturePath("rsa_leaf_key.pem");
  ASSERT_OK_AND_ASSIGN(auto agent, X509PopAgentAttestor::Create(config));
  Challenge challenge = RsaChallenge();
  ASSERT_OK_AND_ASSIGN(std::string answer, agent->Answer(MarshalChallenge(challenge)));
  ASSERT_TRUE(absl::EndsWith(answer, R"("},"ecdsa_signature":null})")) << answer;
  ASSERT_OK_AND_ASSIGN(Response response, UnmarshalResponse(answer));
  ASSERT_TRUE(response.rsa_signature.has_value());
  EXPECT_EQ(response.rsa_signature->signature.size(), 256u);
  // Independently of VerifyChallengeResponse: a PSS/SHA-256 signature of
  // challenge nonce || response nonce under the certificate's key.
  EXPECT_OK(FixtureCert("rsa_leaf.pem")
                .public_key()
                .Verify(crypto::SignatureScheme::kRsaPssSha256AnySalt,
                        challenge.rsa_signature->nonce + response.rsa_signature->nonce,
                        response.rsa_signature->signature));
}

TEST_F(X509PopAgent, AnswersOnlyWhatItsKeyCan) {
  ASSERT_OK_AND_ASSIGN(auto agent,
                       X509PopAgentAttestor::Create(Write(IssueFrom(intermediate_, NodeTemplate("n")), false)));
  EXPECT_STATUS(agent->Answer(MarshalChallenge(RsaChallenge())), kInvalid,
                "nodeattestor(x509pop): failed to calculate challenge response: expecting ECDSA challenge");
  EXPECT_STATUS(agent->Answer("{}"), kInvalid, "expecting ECDSA challenge");
  Challenge short_nonce;
  short_nonce.ecdsa_signature = EcdsaSignatureChallenge{"short"};
  EXPECT_STATUS(agent->Answer(MarshalChallenge(short_nonce)), kInvalid, "invalid challenge nonce");

  AgentConfig rsa;
  rsa.certificate_path = FixturePath("rsa_leaf.pem");
  rsa.private_key_path = FixturePath("rsa_leaf_key.pem");
  ASSERT_OK_AND_ASSIGN(auto rsa_agent, X509PopAgentAttestor::Create(rsa));
  EXPECT_STATUS(rsa_agent->Answer(MarshalChallenge(EcChallenge())), kInvalid, "expecting RSA challenge");
}

TEST_F(X509PopAgent, MalformedChallengeIsRefused) {
  ASSERT_OK_AND_ASSIGN(auto agent,
                       X509PopAgentAttestor::Create(Write(IssueFrom(intermediate_, NodeTemplate("n")), false)));
  EXPECT_STATUS(agent->Answer("join-token-style challenge"), kInvalid,
                "nodeattestor(x509pop): unable to unmarshal challenge: ");
  EXPECT_STATUS(agent->Answer(R"({"ecdsa_signature":{"nonce":"not base64!"}})"), kInvalid,
                "unable to unmarshal challenge: ecdsa_signature: \"nonce\": base64");
}

TEST(CalculateResponse, UsesAFreshResponseNonceEachTime) {
  crypto::PrivateKey key = NewKey(crypto::KeyType::kEcP256);
  Challenge challenge = EcChallenge();
  ASSERT_OK_AND_ASSIGN(Response a, CalculateResponse(key, challenge));
  ASSERT_OK_AND_ASSIGN(Response b, CalculateResponse(key, challenge));
  EXPECT_NE(a.ecdsa_signature->nonce, b.ecdsa_signature->nonce);
}

}  // namespace
}  // namespace sigil::attestors::node::x509pop
