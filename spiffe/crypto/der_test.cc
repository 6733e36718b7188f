#include "spiffe/crypto/der.h"

#include <string>

#include <gtest/gtest.h>

#include "spiffe/crypto/key.h"
#include "spiffe/crypto/test_util.h"

namespace sigil::crypto::der {
namespace {

std::string S(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

TEST(DerWriter, LengthsUseMinimalForms) {
  struct Case {
    size_t len;
    std::string header;
  };
  const Case cases[] = {
      {0, S({0x04, 0x00})},
      {127, S({0x04, 0x7f})},
      {128, S({0x04, 0x81, 0x80})},
      {255, S({0x04, 0x81, 0xff})},
      {256, S({0x04, 0x82, 0x01, 0x00})},
      {65536, S({0x04, 0x83, 0x01, 0x00, 0x00})},
  };
  for (const Case& c : cases) {
    std::string contents(c.len, 'x');
    std::string tlv = Tlv(kOctetString, contents);
    EXPECT_EQ(tlv.substr(0, c.header.size()), c.header) << c.len;
    EXPECT_EQ(tlv.size(), c.header.size() + c.len);
    Reader r(tlv);
    Element e;
    ASSERT_TRUE(r.Next(&e)) << c.len;
    EXPECT_EQ(e.tag, kOctetString);
    EXPECT_EQ(e.contents, contents);
    EXPECT_EQ(e.encoding, tlv);
    EXPECT_TRUE(r.empty());
  }
}

TEST(DerWriter, UnsignedIntegerIsMinimalAndPositive) {
  EXPECT_EQ(UnsignedInteger(""), S({0x02, 0x01, 0x00}));
  EXPECT_EQ(UnsignedInteger(S({0x00, 0x00, 0x05})), S({0x02, 0x01, 0x05}));
  EXPECT_EQ(UnsignedInteger(S({0x7f})), S({0x02, 0x01, 0x7f}));
  EXPECT_EQ(UnsignedInteger(S({0x80})), S({0x02, 0x02, 0x00, 0x80}));
  EXPECT_EQ(UnsignedInteger(S({0x00, 0xff, 0x01})), S({0x02, 0x03, 0x00, 0xff, 0x01}));
  EXPECT_EQ(SmallInteger(0), S({0x02, 0x01, 0x00}));
  EXPECT_EQ(SmallInteger(300), S({0x02, 0x02, 0x01, 0x2c}));
}

TEST(DerWriter, BitStringCarriesUnusedBits) {
  EXPECT_EQ(BitString(S({0xa8}), 3), S({0x03, 0x02, 0x03, 0xa8}));
  EXPECT_EQ(BitString("", 0), S({0x03, 0x01, 0x00}));
}

TEST(DerReader, RefusesNonDerEncodings) {
  struct Case {
    const char* name;
    std::string input;
  };
  const Case cases[] = {
      {"empty", ""},
      {"tag only", S({0x30})},
      {"indefinite length", S({0x30, 0x80, 0x00, 0x00})},
      {"long form for a short length", S({0x04, 0x81, 0x05, 1, 2, 3, 4, 5})},
      {"leading zero in long length", S({0x04, 0x82, 0x00, 0x80})},
      {"five length octets", S({0x04, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00})},
      {"length beyond the input", S({0x04, 0x05, 1, 2})},
      {"long length beyond the input", S({0x04, 0x81, 0x80, 1})},
      {"high tag number", S({0x1f, 0x81, 0x01, 0x00})},
  };
  for (const Case& c : cases) {
    Reader r(c.input);
    Element e;
    EXPECT_FALSE(r.Next(&e)) << c.name;
  }
}

TEST(DerReader, ExpectChecksTheTag) {
  std::string two = Tlv(kInteger, "\x01") + Tlv(kNull, "");
  Reader r(two);
  EXPECT_TRUE(r.PeekTag(kInteger));
  EXPECT_FALSE(r.PeekTag(kNull));
  absl::string_view contents;
  EXPECT_FALSE(Reader(two).ExpectContents(kSequence, &contents));
  ASSERT_TRUE(r.ExpectContents(kInteger, &contents));
  EXPECT_EQ(contents, "\x01");
  ASSERT_TRUE(r.ExpectContents(kNull, &contents));
  EXPECT_TRUE(contents.empty());
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.PeekTag(kNull));
}

TEST(DerReader, NonNegativeIntegerRules) {
  absl::string_view m;
  const std::string zero = S({0x00}), padded = S({0x00, 0x80}), plain = S({0x7f, 0x00});
  EXPECT_TRUE(ParseNonNegativeInteger(zero, &m));
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(ParseNonNegativeInteger(padded, &m));
  EXPECT_EQ(m, S({0x80}));
  EXPECT_TRUE(ParseNonNegativeInteger(plain, &m));
  EXPECT_EQ(m, plain);
  EXPECT_FALSE(ParseNonNegativeInteger("", &m));
  EXPECT_FALSE(ParseNonNegativeInteger(S({0x80}), &m));        // negative
  EXPECT_FALSE(ParseNonNegativeInteger(S({0x00, 0x7f}), &m));  // redundant zero
}

TEST(ParseSpki, AcceptsGeneratedKeys) {
  struct Case {
    KeyType type;
    KeyAlgorithm algorithm;
    const char* curve;
    int field_size;
    int rsa_bits;
  };
  const Case cases[] = {
      {KeyType::kEcP256, KeyAlgorithm::kEc, "P-256", 32, 0},
      {KeyType::kEcP384, KeyAlgorithm::kEc, "P-384", 48, 0},
      {KeyType::kRsa2048, KeyAlgorithm::kRsa, "", 0, 2048},
  };
  for (const Case& c : cases) {
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(c.type));
    ASSERT_OK_AND_ASSIGN(SpkiInfo info, ParseSpki(key.public_key().spki_der()));
    EXPECT_EQ(info.algorithm, c.algorithm);
    EXPECT_EQ(info.curve, c.curve);
    EXPECT_EQ(info.field_size, c.field_size);
    EXPECT_EQ(info.rsa_bits, c.rsa_bits);
    if (c.algorithm == KeyAlgorithm::kEc) {
      EXPECT_EQ(info.key_bits.size(), 1u + 2u * c.field_size);
    } else {
      EXPECT_EQ(info.rsa_e, S({0x01, 0x00, 0x01}));
    }
  }
}

TEST(ParseSpki, RefusesMalformedAndUnsupportedKeys) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEcP256));
  const std::string good = key.public_key().spki_der();
  std::string ed25519 =
      Tlv(kSequence, Tlv(kSequence, Oid(S({0x2b, 0x65, 0x70}))) + BitString(std::string(32, 'k')));
  // A SEQUENCE{alg, BIT STRING} whose point is one byte short.
  std::string alg = Tlv(kSequence, Oid(oid::kEcPublicKey) + Oid(oid::kP256));
  std::string short_point = Tlv(kSequence, alg + BitString(std::string(64, '\x04')));
  std::string unused_bits = Tlv(kSequence, alg + BitString(std::string(65, '\x04'), 1));
  std::string rsa_alg_no_null = Tlv(kSequence, Oid(oid::kRsaEncryption));
  std::string rsa_small = Tlv(
      kSequence,
      Tlv(kSequence, Oid(oid::kRsaEncryption) + Tlv(kNull, "")) +
          BitString(Tlv(kSequence, UnsignedInteger(std::string(128, '\xff')) +
                                       UnsignedInteger(S({0x01, 0x00, 0x01})))));
  std::string rsa_even_e = Tlv(
      kSequence,
      Tlv(kSequence, Oid(oid::kRsaEncryption) + Tlv(kNull, "")) +
          BitString(Tlv(kSequence, UnsignedInteger(std::string(256, '\xff')) +
                                       UnsignedInteger(S({0x01, 0x00, 0x02})))));
  std::string explicit_params =
      Tlv(kSequence, Tlv(kSequence, Oid(oid::kEcPublicKey) + Tlv(kSequence, SmallInteger(1))) +
                         BitString(std::string(65, '\x04')));
  struct Case {
    const char* name;
    std::string der;
    const char* message;
  };
  const Case cases[] = {
      {"garbage", "not der", "not a DER SEQUENCE"},
      {"trailing byte", good + "x", "trailing bytes"},
      {"short point", short_point, "wrong encoding for P-256"},
      {"unused bits", unused_bits, "unused bits"},
      {"rsa without NULL", Tlv(kSequence, rsa_alg_no_null + BitString("x")),
       "parameters must be NULL"},
      {"rsa 1024", rsa_small, "RSA key of 1024 bits refused"},
      {"rsa even exponent", rsa_even_e, "exponent must be odd"},
      {"ed25519", ed25519, "unsupported public key algorithm"},
      {"explicit curve", explicit_params, "named curve"},
      {"secp256k1", Tlv(kSequence, Tlv(kSequence, Oid(oid::kEcPublicKey) +
                                                     Oid(S({0x2b, 0x81, 0x04, 0x00, 0x0a}))) +
                                       BitString(std::string(65, '\x04'))),
       "unsupported EC curve"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_STATUS(ParseSpki(c.der), absl::StatusCode::kInvalidArgument, c.message);
  }
}

}  // namespace
}  // namespace sigil::crypto::der
