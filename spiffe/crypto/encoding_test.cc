#include "spiffe/crypto/encoding.h"

#include <string>

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "spiffe/crypto/der.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/test_util.h"

namespace sigil::crypto {
namespace {

using absl::StatusCode;

std::string S(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

// RFC 4648 §10 test vectors.
TEST(Base64, Rfc4648Vectors) {
  struct Case {
    const char* data;
    const char* std;
    const char* url;
  };
  const Case cases[] = {
      {"", "", ""},
      {"f", "Zg==", "Zg"},
      {"fo", "Zm8=", "Zm8"},
      {"foo", "Zm9v", "Zm9v"},
      {"foob", "Zm9vYg==", "Zm9vYg"},
      {"fooba", "Zm9vYmE=", "Zm9vYmE"},
      {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Base64Encode(c.data), c.std);
    EXPECT_EQ(Base64UrlEncode(c.data), c.url);
    ASSERT_OK_AND_ASSIGN(std::string std_back, Base64Decode(c.std));
    EXPECT_EQ(std_back, c.data);
    ASSERT_OK_AND_ASSIGN(std::string url_back, Base64UrlDecode(c.url));
    EXPECT_EQ(url_back, c.data);
  }
}

TEST(Base64, AlphabetsDifferInTheLastTwoCharacters) {
  const std::string data = S({0xfb, 0xff, 0xbf});
  EXPECT_EQ(Base64Encode(data), "+/+/");
  EXPECT_EQ(Base64UrlEncode(data), "-_-_");
  ASSERT_OK_AND_ASSIGN(std::string back, Base64UrlDecode("-_-_"));
  EXPECT_EQ(back, data);
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t len = 0; len <= all.size(); len += 37) {
    std::string data = all.substr(0, len);
    ASSERT_OK_AND_ASSIGN(std::string a, Base64Decode(Base64Encode(data)));
    EXPECT_EQ(a, data);
    ASSERT_OK_AND_ASSIGN(std::string b, Base64UrlDecode(Base64UrlEncode(data)));
    EXPECT_EQ(b, data);
  }
}

TEST(Base64UrlDecode, RefusesNonCanonicalInput) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"Zg==", "invalid character at offset 2"},  // padding
      {"Zm9v\n", "invalid character at offset 4"},
      {"Zm 9v", "invalid character at offset 2"},
      {"Zm+v", "invalid character at offset 2"},  // standard alphabet
      {"Z", "invalid length 1"},
      {"Zh", "non-zero trailing bits"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_STATUS(Base64UrlDecode(c.text), StatusCode::kInvalidArgument, c.message);
  }
}

TEST(Base64Decode, RefusesMalformedInput) {
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {"Zg", "not a multiple of 4"},
      {"Zg=", "not a multiple of 4"},
      {"Z===", "invalid character at offset 1"},
      {"Zg=a", "invalid character at offset 2"},
      {"-_8=", "invalid character at offset 0"},  // URL alphabet
      {"Zh==", "non-zero trailing bits"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_STATUS(Base64Decode(c.text), StatusCode::kInvalidArgument, c.message);
  }
}

// FIPS 180-2 "abc" vectors.
TEST(Sha1, KnownVector) {
  EXPECT_EQ(HexEncode(Sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(HexEncode(Sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

TEST(Sha256Hasher, MatchesOneShotAcrossChunks) {
  std::string data(200000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  Sha256Hasher h;
  for (size_t off = 0; off < data.size(); off += 65536) h.Update(absl::string_view(data).substr(off, 65536));
  EXPECT_EQ(h.Finish(), Sha256(data));
  Sha256Hasher empty;
  EXPECT_EQ(HexEncode(empty.Finish()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha2, KnownVectors) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha384("abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
            "8086072ba1e7cc2358baeca134c825a7");
  EXPECT_EQ(HexEncode(Sha512("abc")),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

TEST(HexEncode, Lowercase) { EXPECT_EQ(HexEncode(S({0x00, 0x0f, 0xab, 0xff})), "000fabff"); }

TEST(ParsePem, ReadsBlocksInOrderAndSkipsExplanatoryText) {
  std::string text = "Bag Attributes: ignored\r\n" + EncodePem("CERTIFICATE", "first") +
                     "some text between\n" + EncodePem("PRIVATE KEY", "second");
  // CRLF line endings, as Windows tools write them.
  std::string crlf;
  for (char c : text) {
    if (c == '\n' && (crlf.empty() || crlf.back() != '\r')) crlf.push_back('\r');
    crlf.push_back(c);
  }
  for (const std::string& input : {text, crlf}) {
    ASSERT_OK_AND_ASSIGN(std::vector<PemBlock> blocks, ParsePem(input));
    ASSERT_EQ(blocks.size(), 2u);
    EXPECT_EQ(blocks[0].type, "CERTIFICATE");
    EXPECT_EQ(blocks[0].der, "first");
    EXPECT_EQ(blocks[1].type, "PRIVATE KEY");
    EXPECT_EQ(blocks[1].der, "second");
  }
}

TEST(ParsePem, NoBlockGivesEmptyVector) {
  ASSERT_OK_AND_ASSIGN(std::vector<PemBlock> blocks, ParsePem("nothing here\n"));
  EXPECT_TRUE(blocks.empty());
}

TEST(ParsePem, RefusesMalformedBlocks) {
  struct Case {
    const char* name;
    std::string text;
    const char* message;
  };
  const Case cases[] = {
      {"no end", "-----BEGIN CERTIFICATE-----\nZm9v\n", "has no END line"},
      {"end mismatch", "-----BEGIN CERTIFICATE-----\nZm9v\n-----END PRIVATE KEY-----\n",
       "ends with END \"PRIVATE KEY\""},
      {"begin inside", "-----BEGIN A-----\nZm9v\n-----BEGIN B-----\nZm9v\n-----END B-----\n",
       "block \"A\" has no END line"},
      {"headers",
       "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nZm9v\n"
       "-----END RSA PRIVATE KEY-----\n",
       "RFC 1421 headers"},
      {"bad base64", "-----BEGIN X-----\nZm9v!\n-----END X-----\n", "invalid character"},
      {"empty", "-----BEGIN X-----\n-----END X-----\n", "is empty"},
      {"no label", "-----BEGIN -----\nZm9v\n-----END -----\n", "without a label"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_STATUS(ParsePem(c.text), StatusCode::kInvalidArgument, c.message);
  }
}

TEST(EncodePem, WrapsAt64Columns) {
  std::string pem = EncodePem("TEST", std::string(100, 'a'));
  EXPECT_EQ(pem.substr(0, 21), "-----BEGIN TEST-----\n");
  size_t first_nl = pem.find('\n');
  size_t second_nl = pem.find('\n', first_nl + 1);
  EXPECT_EQ(second_nl - first_nl - 1, 64u);
  EXPECT_NE(pem.find("-----END TEST-----\n"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(std::vector<PemBlock> blocks, ParsePem(pem));
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].der, std::string(100, 'a'));
}

TEST(EcdsaSignature, DerAndRawRoundTripAndVerify) {
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384}) {
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(type));
    int size = key.public_key().size_bytes();
    for (int i = 0; i < 20; ++i) {  // some signatures have short r or s
      ASSERT_OK_AND_ASSIGN(std::string der, key.Sign(key.DefaultScheme(), "message"));
      ASSERT_OK_AND_ASSIGN(std::string raw, EcdsaDerToRaw(der, size));
      EXPECT_EQ(raw.size(), 2u * size);
      ASSERT_OK_AND_ASSIGN(std::string back, EcdsaRawToDer(raw, size));
      EXPECT_EQ(back, der);
      EXPECT_OK(key.public_key().Verify(key.DefaultScheme(), "message", back));
    }
  }
}

TEST(EcdsaSignature, ShortIntegersAreLeftPadded) {
  std::string der = der::Tlv(der::kSequence, der::UnsignedInteger(S({0x01})) +
                                                 der::UnsignedInteger(S({0x80, 0x02})));
  ASSERT_OK_AND_ASSIGN(std::string raw, EcdsaDerToRaw(der, 4));
  EXPECT_EQ(raw, S({0, 0, 0, 1, 0, 0, 0x80, 2}));
  ASSERT_OK_AND_ASSIGN(std::string back, EcdsaRawToDer(raw, 4));
  EXPECT_EQ(back, der);
}

TEST(EcdsaDerToRaw, RefusesMalformedSignatures) {
  auto seq = [](const std::string& body) { return der::Tlv(der::kSequence, body); };
  const std::string one = der::UnsignedInteger(S({1}));
  struct Case {
    const char* name;
    std::string der;
    int field_size;
    const char* message;
  };
  const Case cases[] = {
      {"field size zero", seq(one + one), 0, "field size 0 out of range"},
      {"field size too big", seq(one + one), 67, "out of range"},
      {"not a sequence", one, 32, "not one DER SEQUENCE"},
      {"trailing bytes", seq(one + one) + "x", 32, "not one DER SEQUENCE"},
      {"one integer", seq(one), 32, "r and s must be"},
      {"negative", seq(one + der::Tlv(der::kInteger, S({0x80}))), 32, "r and s must be"},
      {"non-minimal", seq(one + der::Tlv(der::kInteger, S({0x00, 0x01}))), 32, "r and s must be"},
      {"too long", seq(one + der::UnsignedInteger(std::string(33, '\x01'))), 32,
       "longer than the field size 32"},
      {"three integers", seq(one + one + one), 32, "trailing fields"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_STATUS(EcdsaDerToRaw(c.der, c.field_size), StatusCode::kInvalidArgument, c.message);
  }
}

TEST(EcdsaRawToDer, RefusesWrongSizesAndZero) {
  EXPECT_STATUS(EcdsaRawToDer(std::string(63, '\x01'), 32), StatusCode::kInvalidArgument,
                "63 bytes, expected 64");
  EXPECT_STATUS(EcdsaRawToDer(std::string(32, '\0') + std::string(32, '\x01'), 32),
                StatusCode::kInvalidArgument, "r or s is zero");
  EXPECT_STATUS(EcdsaRawToDer("", -1), StatusCode::kInvalidArgument, "out of range");
}

// RFC 7517 Appendix A.1, the first (EC P-256) key.
TEST(Jwk, Rfc7517EcKeyRoundTrips) {
  JwkKeyParams in;
  in.kty = "EC";
  in.crv = "P-256";
  in.x = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
  in.y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";
  ASSERT_OK_AND_ASSIGN(PublicKey key, FromJwkParams(in));
  EXPECT_EQ(key.algorithm(), KeyAlgorithm::kEc);
  EXPECT_EQ(key.curve_name(), "P-256");
  ASSERT_OK_AND_ASSIGN(JwkKeyParams out, ToJwkParams(key));
  EXPECT_EQ(out.kty, "EC");
  EXPECT_EQ(out.crv, "P-256");
  EXPECT_EQ(out.x, in.x);
  EXPECT_EQ(out.y, in.y);
  EXPECT_TRUE(out.n.empty());
}

TEST(Jwk, GeneratedKeysRoundTrip) {
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa2048}) {
    SCOPED_TRACE(KeyTypeName(type));
    ASSERT_OK_AND_ASSIGN(PrivateKey priv, PrivateKey::Generate(type));
    ASSERT_OK_AND_ASSIGN(JwkKeyParams params, ToJwkParams(priv.public_key()));
    if (priv.algorithm() == KeyAlgorithm::kRsa) {
      EXPECT_EQ(params.kty, "RSA");
      EXPECT_EQ(params.e, "AQAB");
      ASSERT_OK_AND_ASSIGN(std::string n, Base64UrlDecode(params.n));
      EXPECT_EQ(n.size(), 256u);
    } else {
      ASSERT_OK_AND_ASSIGN(std::string x, Base64UrlDecode(params.x));
      EXPECT_EQ(static_cast<int>(x.size()), priv.public_key().size_bytes());
    }
    ASSERT_OK_AND_ASSIGN(PublicKey back, FromJwkParams(params));
    EXPECT_EQ(back, priv.public_key());
    ASSERT_OK_AND_ASSIGN(std::string sig, priv.Sign(priv.DefaultScheme(), "jwt"));
    EXPECT_OK(back.Verify(priv.DefaultScheme(), "jwt", sig));
  }
}

TEST(Jwk, P521RoundTrips) {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521");
  ASSERT_NE(raw, nullptr);
  unsigned char* buf = nullptr;
  int len = i2d_PUBKEY(raw, &buf);
  ASSERT_GT(len, 0);
  std::string spki(reinterpret_cast<char*>(buf), len);
  OPENSSL_free(buf);
  EVP_PKEY_free(raw);
  ASSERT_OK_AND_ASSIGN(PublicKey key, PublicKey::FromSpkiDer(spki));
  EXPECT_EQ(key.size_bytes(), 66);
  ASSERT_OK_AND_ASSIGN(JwkKeyParams params, ToJwkParams(key));
  EXPECT_EQ(params.crv, "P-521");
  EXPECT_EQ(params.x.size(), 88u);  // 66 bytes, base64url without padding
  ASSERT_OK_AND_ASSIGN(PublicKey back, FromJwkParams(params));
  EXPECT_EQ(back, key);
}

TEST(FromJwkParams, NamesTheBadMember) {
  JwkKeyParams ec;
  ec.kty = "EC";
  ec.crv = "P-256";
  ec.x = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
  ec.y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";
  JwkKeyParams rsa;
  rsa.kty = "RSA";
  rsa.n = Base64UrlEncode(std::string(128, '\xc1'));  // 1024 bits
  rsa.e = "AQAB";
  struct Case {
    const char* name;
    JwkKeyParams params;
    const char* message;
  };
  std::vector<Case> cases;
  auto add = [&](const char* name, JwkKeyParams p, const char* message) {
    cases.push_back({name, std::move(p), message});
  };
  JwkKeyParams p = ec;
  p.kty = "";
  add("missing kty", p, "jwk: missing \"kty\"");
  p = ec;
  p.kty = "OKP";
  add("unknown kty", p, "unsupported \"kty\" \"OKP\"");
  p = ec;
  p.crv = "";
  add("missing crv", p, "jwk: missing \"crv\"");
  p = ec;
  p.crv = "secp256k1";
  add("unknown crv", p, "unsupported \"crv\" \"secp256k1\"");
  p = ec;
  p.x = "";
  add("missing x", p, "jwk: missing \"x\"");
  p = ec;
  p.y = "";
  add("missing y", p, "jwk: missing \"y\"");
  p = ec;
  p.x = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4=";
  add("padded x", p, "\"x\" is not valid base64url");
  p = ec;
  p.y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4I";
  add("short y", p, "\"y\" must be 32 bytes for P-256, got 30");
  p = ec;
  p.y = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyA";  // off the curve
  add("off curve", p, "jwk: invalid EC public key");
  p = ec;
  p.crv = "P-384";
  add("crv mismatch", p, "\"x\" must be 48 bytes for P-384");
  p = rsa;
  p.n = "";
  add("missing n", p, "jwk: missing \"n\"");
  p = rsa;
  p.e = "";
  add("missing e", p, "jwk: missing \"e\"");
  add("rsa too small", rsa, "RSA key of 1024 bits refused");
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_STATUS(FromJwkParams(c.params), StatusCode::kInvalidArgument, c.message);
  }
}

TEST(ToJwkParams, RefusesOtherAlgorithms) {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(raw, nullptr);
  unsigned char* buf = nullptr;
  int len = i2d_PUBKEY(raw, &buf);
  std::string spki(reinterpret_cast<char*>(buf), len);
  OPENSSL_free(buf);
  PublicKey key(std::shared_ptr<EVP_PKEY>(raw, EVP_PKEY_free), spki);
  EXPECT_EQ(key.algorithm(), KeyAlgorithm::kOther);
  EXPECT_STATUS(ToJwkParams(key), StatusCode::kInvalidArgument, "only EC and RSA");
}

}  // namespace
}  // namespace sigil::crypto
