#include "spiffe/crypto/key.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/test_util.h"

namespace sigil::crypto {
namespace {

using absl::StatusCode;
using testing::Fixture;

TEST(ParseKeyType, AcceptsSpireNames) {
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048, KeyType::kRsa4096}) {
    ASSERT_OK_AND_ASSIGN(KeyType parsed, ParseKeyType(KeyTypeName(type)));
    EXPECT_EQ(parsed, type);
  }
  EXPECT_STREQ(KeyTypeName(KeyType::kEcP256), "ec-p256");
}

TEST(ParseKeyType, UnknownNameListsTheAcceptedOnes) {
  EXPECT_STATUS(ParseKeyType("ec-p521"), StatusCode::kInvalidArgument,
                "unknown key type \"ec-p521\" (accepted: ec-p256, ec-p384, rsa-2048, rsa-4096)");
  EXPECT_STATUS(ParseKeyType("EC-P256"), StatusCode::kInvalidArgument, "unknown key type");
}

struct GeneratedCase {
  KeyType type;
  KeyAlgorithm algorithm;
  int size_bytes;
  const char* curve;
  SignatureScheme default_scheme;
};

class GeneratedKeyTest : public ::testing::TestWithParam<GeneratedCase> {};

TEST_P(GeneratedKeyTest, HasTheRequestedShape) {
  const GeneratedCase& c = GetParam();
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(c.type));
  EXPECT_EQ(key.algorithm(), c.algorithm);
  EXPECT_EQ(key.public_key().algorithm(), c.algorithm);
  EXPECT_EQ(key.public_key().size_bytes(), c.size_bytes);
  EXPECT_EQ(key.public_key().curve_name(), c.curve);
  EXPECT_EQ(key.DefaultScheme(), c.default_scheme);
  // The SPKI re-parses to the same key.
  ASSERT_OK_AND_ASSIGN(PublicKey pub, PublicKey::FromSpkiDer(key.public_key().spki_der()));
  EXPECT_EQ(pub, key.public_key());
  EXPECT_EQ(EVP_PKEY_eq(pub.get(), key.get()), 1);
}

TEST_P(GeneratedKeyTest, Pkcs8DerAndPemRoundTrip) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  ASSERT_OK_AND_ASSIGN(PrivateKey from_der, PrivateKey::FromPkcs8Der(key.ToPkcs8Der()));
  EXPECT_EQ(from_der.public_key(), key.public_key());
  std::string pem = key.ToPkcs8Pem();
  EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
  ASSERT_OK_AND_ASSIGN(PrivateKey from_pem, PrivateKey::FromPem(pem));
  EXPECT_EQ(from_pem.public_key(), key.public_key());
  EXPECT_EQ(from_pem.ToPkcs8Der(), key.ToPkcs8Der());
  // What one signs, the other's public key verifies.
  ASSERT_OK_AND_ASSIGN(std::string sig, from_pem.Sign(key.DefaultScheme(), "data"));
  EXPECT_OK(key.public_key().Verify(key.DefaultScheme(), "data", sig));
}

TEST_P(GeneratedKeyTest, PublicPemRoundTrips) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  std::string pem = key.public_key().ToPem();
  EXPECT_EQ(pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);
  ASSERT_OK_AND_ASSIGN(PublicKey pub, PublicKey::FromPem(pem));
  EXPECT_EQ(pub, key.public_key());
}

INSTANTIATE_TEST_SUITE_P(
    KeyTypes, GeneratedKeyTest,
    ::testing::Values(
        GeneratedCase{KeyType::kEcP256, KeyAlgorithm::kEc, 32, "P-256", SignatureScheme::kEcdsaSha256},
        GeneratedCase{KeyType::kEcP384, KeyAlgorithm::kEc, 48, "P-384", SignatureScheme::kEcdsaSha384},
        GeneratedCase{KeyType::kRsa2048, KeyAlgorithm::kRsa, 256, "",
                      SignatureScheme::kRsaPkcs1Sha256}),
    [](const ::testing::TestParamInfo<GeneratedCase>& info) {
      std::string name = KeyTypeName(info.param.type);
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return name;
    });

TEST(PrivateKey, GeneratesRsa4096) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kRsa4096));
  EXPECT_EQ(key.public_key().size_bytes(), 512);
  EXPECT_EQ(key.algorithm(), KeyAlgorithm::kRsa);
}

TEST(PrivateKey, GeneratedKeysDiffer) {
  ASSERT_OK_AND_ASSIGN(PrivateKey a, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey b, PrivateKey::Generate(KeyType::kEcP256));
  EXPECT_NE(a.public_key(), b.public_key());
}

TEST(PrivateKey, ReadsSec1EcPemFromOpenSsl) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::FromPem(Fixture("ec_p256_sec1.pem")));
  EXPECT_EQ(key.algorithm(), KeyAlgorithm::kEc);
  EXPECT_EQ(key.public_key().curve_name(), "P-256");
  // The key is the one that signed the OpenSSL root fixture.
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> root,
                       Certificate::ParsePemChain(Fixture("openssl_root.pem")));
  EXPECT_EQ(root[0].public_key(), key.public_key());
}

TEST(PrivateKey, ReadsPkcs1RsaPemFromOpenSsl) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::FromPem(Fixture("rsa2048_pkcs1.pem")));
  EXPECT_EQ(key.algorithm(), KeyAlgorithm::kRsa);
  EXPECT_EQ(key.public_key().size_bytes(), 256);
  ASSERT_OK_AND_ASSIGN(std::string sig, key.Sign(SignatureScheme::kRsaPssSha256, "m"));
  EXPECT_OK(key.public_key().Verify(SignatureScheme::kRsaPssSha256, "m", sig));
  // Re-exported as PKCS#8.
  ASSERT_OK_AND_ASSIGN(PrivateKey again, PrivateKey::FromPkcs8Der(key.ToPkcs8Der()));
  EXPECT_EQ(again.public_key(), key.public_key());
}

TEST(PrivateKey, SkipsOtherPemBlocksBeforeTheKey) {
  std::string text = Fixture("openssl_root.pem") + Fixture("openssl_leaf_key.pem");
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::FromPem(text));
  ASSERT_OK_AND_ASSIGN(PublicKey pub, PublicKey::FromPem(Fixture("openssl_leaf_pub.pem")));
  EXPECT_EQ(key.public_key(), pub);
}

TEST(PrivateKey, RefusesUnusableKeyFiles) {
  struct Case {
    const char* fixture;
    const char* message;
  };
  const Case cases[] = {
      {"ec_p384_encrypted_pkcs8.pem", "encrypted private keys are not supported"},
      {"ec_p256_encrypted_sec1.pem", "encrypted private keys are not supported"},
      {"rsa1024_pkcs8.pem", "RSA key of 1024 bits refused"},
      {"ed25519_pkcs8.pem", "unsupported public key algorithm"},
      {"ec_secp256k1_sec1.pem", "unsupported EC curve"},
      {"openssl_root.pem", "no private key PEM block found"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fixture);
    EXPECT_STATUS(PrivateKey::FromPem(Fixture(c.fixture)), StatusCode::kInvalidArgument,
                  c.message);
  }
}

TEST(PrivateKey, RefusesMalformedDer) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  std::string der = key.ToPkcs8Der();
  EXPECT_STATUS(PrivateKey::FromPkcs8Der("garbage"), StatusCode::kInvalidArgument,
                "malformed PKCS#8 private key");
  EXPECT_STATUS(PrivateKey::FromPkcs8Der(der + "x"), StatusCode::kInvalidArgument,
                "malformed PKCS#8 private key");
  EXPECT_STATUS(PrivateKey::FromPkcs8Der(der.substr(0, der.size() - 1)),
                StatusCode::kInvalidArgument, "malformed PKCS#8 private key");
  EXPECT_STATUS(PrivateKey::FromPem(EncodePem("EC PRIVATE KEY", "not a key")),
                StatusCode::kInvalidArgument, "malformed PEM \"EC PRIVATE KEY\" block");
}

TEST(PrivateKey, RefusesPkcs8WhosePublicHalfDoesNotMatch) {
  // SEC1 carries the public point next to the scalar; splice in another
  // key's point of the same length.
  ASSERT_OK_AND_ASSIGN(PrivateKey a, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey b, PrivateKey::Generate(KeyType::kEcP256));
  std::string der = a.ToPkcs8Der();
  std::string point_a = a.public_key().spki_der().substr(a.public_key().spki_der().size() - 65);
  std::string point_b = b.public_key().spki_der().substr(b.public_key().spki_der().size() - 65);
  size_t at = der.find(point_a);
  ASSERT_NE(at, std::string::npos);
  der.replace(at, 65, point_b);
  EXPECT_STATUS(PrivateKey::FromPkcs8Der(der), StatusCode::kInvalidArgument,
                "fails its consistency check");
}

TEST(PublicKey, RefusesMalformedSpkiAndPem) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  const std::string& spki = key.public_key().spki_der();
  EXPECT_STATUS(PublicKey::FromSpkiDer(""), StatusCode::kInvalidArgument, "not a DER SEQUENCE");
  EXPECT_STATUS(PublicKey::FromSpkiDer(spki + std::string(1, '\0')),
                StatusCode::kInvalidArgument, "trailing bytes");
  std::string off_curve = spki;
  off_curve.back() = static_cast<char>(off_curve.back() ^ 1);
  EXPECT_STATUS(PublicKey::FromSpkiDer(off_curve), StatusCode::kInvalidArgument,
                "invalid EC public key");
  EXPECT_STATUS(PublicKey::FromPem(key.ToPkcs8Pem()), StatusCode::kInvalidArgument,
                "no PEM \"PUBLIC KEY\" block found");
  EXPECT_STATUS(PublicKey::FromPem(EncodePem("PUBLIC KEY", "junk")),
                StatusCode::kInvalidArgument, "malformed SubjectPublicKeyInfo");
}

struct SchemeCase {
  SignatureScheme scheme;
  KeyType key;
  const char* md;
  bool pss;
};

class SignatureTest : public ::testing::TestWithParam<SchemeCase> {
 protected:
  static const PrivateKey& Key(KeyType type) {
    static const PrivateKey* p256 = new PrivateKey(*PrivateKey::Generate(KeyType::kEcP256));
    static const PrivateKey* p384 = new PrivateKey(*PrivateKey::Generate(KeyType::kEcP384));
    static const PrivateKey* rsa = new PrivateKey(*PrivateKey::Generate(KeyType::kRsa2048));
    return type == KeyType::kEcP256 ? *p256 : type == KeyType::kEcP384 ? *p384 : *rsa;
  }
};

TEST_P(SignatureTest, SignsAndVerifies) {
  const SchemeCase& c = GetParam();
  const PrivateKey& key = Key(c.key);
  ASSERT_OK_AND_ASSIGN(std::string sig, key.Sign(c.scheme, "the message"));
  EXPECT_OK(key.public_key().Verify(c.scheme, "the message", sig));
  EXPECT_STATUS(key.public_key().Verify(c.scheme, "the massage", sig),
                StatusCode::kInvalidArgument, "signature verification failed");
  std::string bad = sig;
  bad[bad.size() / 2] = static_cast<char>(bad[bad.size() / 2] ^ 0x40);
  EXPECT_STATUS(key.public_key().Verify(c.scheme, "the message", bad),
                StatusCode::kInvalidArgument, "signature verification failed");
  if (key.algorithm() == KeyAlgorithm::kEc) {
    // ECDSA signatures are DER.
    EXPECT_OK(EcdsaDerToRaw(sig, key.public_key().size_bytes()).status());
  }
}

// OpenSSL, configured independently, agrees on digest, padding and salt.
TEST_P(SignatureTest, OpenSslVerifiesWithTheDocumentedParameters) {
  const SchemeCase& c = GetParam();
  const PrivateKey& key = Key(c.key);
  ASSERT_OK_AND_ASSIGN(std::string sig, key.Sign(c.scheme, "payload"));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  ASSERT_EQ(EVP_DigestVerifyInit(ctx, &pctx, EVP_get_digestbyname(c.md), nullptr,
                                 key.public_key().get()),
            1);
  if (c.pss) {
    ASSERT_GT(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 0);
    // An explicit salt length equal to the digest length, not "auto".
    ASSERT_GT(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, EVP_MD_get_size(EVP_get_digestbyname(c.md))),
              0);
  }
  EXPECT_EQ(EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>("payload"), 7),
            1);
  EVP_MD_CTX_free(ctx);
}

INSTANTIATE_TEST_SUITE_P(
    Schemes, SignatureTest,
    ::testing::Values(SchemeCase{SignatureScheme::kEcdsaSha256, KeyType::kEcP256, "SHA256", false},
                      SchemeCase{SignatureScheme::kEcdsaSha384, KeyType::kEcP384, "SHA384", false},
                      SchemeCase{SignatureScheme::kEcdsaSha512, KeyType::kEcP384, "SHA512", false},
                      SchemeCase{SignatureScheme::kRsaPkcs1Sha256, KeyType::kRsa2048, "SHA256", false},
                      SchemeCase{SignatureScheme::kRsaPkcs1Sha384, KeyType::kRsa2048, "SHA384", false},
                      SchemeCase{SignatureScheme::kRsaPkcs1Sha512, KeyType::kRsa2048, "SHA512", false},
                      SchemeCase{SignatureScheme::kRsaPssSha256, KeyType::kRsa2048, "SHA256", true},
                      SchemeCase{SignatureScheme::kRsaPssSha384, KeyType::kRsa2048, "SHA384", true},
                      SchemeCase{SignatureScheme::kRsaPssSha512, KeyType::kRsa2048, "SHA512", true}));

// Go's crypto/rsa without options (what SPIRE's x509pop uses): the longest
// salt when signing, any salt when verifying.
TEST(Signature, PssAnySaltSignsWithTheLongestSaltAndVerifiesAnySalt) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kRsa2048));
  ASSERT_OK_AND_ASSIGN(std::string sig, key.Sign(SignatureScheme::kRsaPssSha256AnySalt, "m"));
  EXPECT_OK(key.public_key().Verify(SignatureScheme::kRsaPssSha256AnySalt, "m", sig));
  // Not a digest-length salt: the strict JOSE scheme refuses it...
  EXPECT_STATUS(key.public_key().Verify(SignatureScheme::kRsaPssSha256, "m", sig),
                StatusCode::kInvalidArgument, "signature verification failed");
  // ...and OpenSSL finds the maximal salt (256 - 32 - 2 bytes for RSA-2048).
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  ASSERT_EQ(EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), nullptr, key.public_key().get()), 1);
  ASSERT_GT(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 0);
  ASSERT_GT(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 222), 0);
  EXPECT_EQ(EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>("m"), 1),
            1);
  EVP_MD_CTX_free(ctx);
  // A digest-length salt verifies under AnySalt too.
  ASSERT_OK_AND_ASSIGN(std::string short_salt, key.Sign(SignatureScheme::kRsaPssSha256, "m"));
  EXPECT_OK(key.public_key().Verify(SignatureScheme::kRsaPssSha256AnySalt, "m", short_salt));
}

TEST(Signature, PssAndPkcs1AreNotInterchangeable) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kRsa2048));
  ASSERT_OK_AND_ASSIGN(std::string pss, key.Sign(SignatureScheme::kRsaPssSha256, "m"));
  EXPECT_STATUS(key.public_key().Verify(SignatureScheme::kRsaPkcs1Sha256, "m", pss),
                StatusCode::kInvalidArgument, "signature verification failed");
  ASSERT_OK_AND_ASSIGN(std::string pkcs1, key.Sign(SignatureScheme::kRsaPkcs1Sha256, "m"));
  EXPECT_STATUS(key.public_key().Verify(SignatureScheme::kRsaPssSha256, "m", pkcs1),
                StatusCode::kInvalidArgument, "signature verification failed");
}

TEST(Signature, SchemeMustFitTheKey) {
  ASSERT_OK_AND_ASSIGN(PrivateKey ec, PrivateKey::Generate(KeyType::kEcP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey rsa, PrivateKey::Generate(KeyType::kRsa2048));
  EXPECT_STATUS(ec.Sign(SignatureScheme::kRsaPkcs1Sha256, "m"), StatusCode::kInvalidArgument,
                "does not fit the key");
  EXPECT_STATUS(rsa.Sign(SignatureScheme::kEcdsaSha256, "m"), StatusCode::kInvalidArgument,
                "does not fit the key");
  ASSERT_OK_AND_ASSIGN(std::string sig, ec.Sign(SignatureScheme::kEcdsaSha256, "m"));
  EXPECT_STATUS(ec.public_key().Verify(SignatureScheme::kRsaPssSha256, "m", sig),
                StatusCode::kInvalidArgument, "signature verification failed");
  // A signature by another key of the same type fails too.
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(KeyType::kEcP256));
  EXPECT_STATUS(other.public_key().Verify(SignatureScheme::kEcdsaSha256, "m", sig),
                StatusCode::kInvalidArgument, "signature verification failed");
}

TEST(Signature, OneKeySignsFromManyThreads) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string msg = "thread " + std::to_string(t) + " message " + std::to_string(i);
        absl::StatusOr<std::string> sig = key.Sign(SignatureScheme::kEcdsaSha256, msg);
        if (!sig.ok() || !key.public_key().Verify(SignatureScheme::kEcdsaSha256, msg, *sig).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace sigil::crypto
