#include "spiffe/crypto/key.h"

#include <cstdlib>
#include <cstring>
#include <iostream>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spiffe/crypto/der.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/openssl_util.h"

namespace sigil::crypto {

using internal::Bytes;
using internal::EvpMdCtxPtr;
using internal::EvpPkeyCtxPtr;
using internal::EvpPkeyPtr;

namespace {

struct SchemeInfo {
  KeyAlgorithm algorithm;
  const EVP_MD* md;
  bool pss;
  // PSS salt length for signing and verifying (RSA_PSS_SALTLEN_*).
  int sign_salt = RSA_PSS_SALTLEN_DIGEST;
  int verify_salt = RSA_PSS_SALTLEN_DIGEST;
};

SchemeInfo InfoFor(SignatureScheme scheme) {
  switch (scheme) {
    case SignatureScheme::kEcdsaSha256:
      return {KeyAlgorithm::kEc, EVP_sha256(), false};
    case SignatureScheme::kEcdsaSha384:
      return {KeyAlgorithm::kEc, EVP_sha384(), false};
    case SignatureScheme::kEcdsaSha512:
      return {KeyAlgorithm::kEc, EVP_sha512(), false};
    case SignatureScheme::kRsaPkcs1Sha256:
      return {KeyAlgorithm::kRsa, EVP_sha256(), false};
    case SignatureScheme::kRsaPkcs1Sha384:
      return {KeyAlgorithm::kRsa, EVP_sha384(), false};
    case SignatureScheme::kRsaPkcs1Sha512:
      return {KeyAlgorithm::kRsa, EVP_sha512(), false};
    case SignatureScheme::kRsaPssSha256:
      return {KeyAlgorithm::kRsa, EVP_sha256(), true};
    case SignatureScheme::kRsaPssSha384:
      return {KeyAlgorithm::kRsa, EVP_sha384(), true};
    case SignatureScheme::kRsaPssSha512:
      return {KeyAlgorithm::kRsa, EVP_sha512(), true};
    case SignatureScheme::kRsaPssSha256AnySalt:
      return {KeyAlgorithm::kRsa, EVP_sha256(), true, RSA_PSS_SALTLEN_MAX, RSA_PSS_SALTLEN_AUTO};
  }
  return {KeyAlgorithm::kOther, nullptr, false};
}

// Sets RSA padding on a sign/verify context: PKCS#1 v1.5, or PSS with the
// scheme's salt length (as long as the digest by default: RFC 7518 §3.5,
// also what TLS 1.3 uses).
bool ConfigurePadding(EVP_PKEY_CTX* pctx, const SchemeInfo& info, bool signing) {
  if (info.algorithm != KeyAlgorithm::kRsa) return true;
  if (!info.pss) return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
  return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, signing ? info.sign_salt : info.verify_salt) > 0 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, info.md) > 0;
}

const char* JoseCurveName(const char* group) {
  if (std::strcmp(group, "prime256v1") == 0 || std::strcmp(group, "P-256") == 0) return "P-256";
  if (std::strcmp(group, "secp384r1") == 0 || std::strcmp(group, "P-384") == 0) return "P-384";
  if (std::strcmp(group, "secp521r1") == 0 || std::strcmp(group, "P-521") == 0) return "P-521";
  return "";
}

std::string EncodeSpki(EVP_PKEY* key) {
  unsigned char* buf = nullptr;
  int len = i2d_PUBKEY(key, &buf);
  if (len <= 0) {
    internal::DrainOpenSslErrors();
    return "";
  }
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(len));
  OPENSSL_free(buf);
  return out;
}

using ParamBldPtr =
    std::unique_ptr<OSSL_PARAM_BLD, internal::OpenSslDeleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, internal::OpenSslDeleter<OSSL_PARAM, OSSL_PARAM_free>>;

// An EVP_PKEY holding only the domain parameters of `group`; nullptr if the
// library refuses.
EVP_PKEY* MakeCurveTemplate(const char* group) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_end()};
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_KEY_PARAMETERS, params) != 1) {
    internal::DrainOpenSslErrors();
    return nullptr;
  }
  return key;
}

// Shared, immutable and never freed (like other process-wide singletons),
// so no exit-time ordering with OpenSSL's own cleanup arises.
EVP_PKEY* CurveTemplate(absl::string_view jose_curve) {
  static EVP_PKEY* const p256 = MakeCurveTemplate("prime256v1");
  static EVP_PKEY* const p384 = MakeCurveTemplate("secp384r1");
  static EVP_PKEY* const p521 = MakeCurveTemplate("secp521r1");
  if (jose_curve == "P-256") return p256;
  if (jose_curve == "P-384") return p384;
  if (jose_curve == "P-521") return p521;
  return nullptr;
}

}  // namespace

namespace internal {

absl::StatusOr<EvpPkeyPtr> PublicEvpFromSpkiInfo(const der::SpkiInfo& info) {
  if (info.algorithm == KeyAlgorithm::kEc) {
    // Copying the curve from a template and setting the point skips the
    // EC_GROUP setup that EVP_PKEY_fromdata repeats for every key (about 3x
    // cheaper; d2i_PUBKEY's decoder path is about 20x dearer).
    EVP_PKEY* tmpl = CurveTemplate(info.curve);
    EvpPkeyPtr key(EVP_PKEY_new());
    if (tmpl == nullptr || key == nullptr || EVP_PKEY_copy_parameters(key.get(), tmpl) != 1 ||
        EVP_PKEY_set1_encoded_public_key(key.get(), Bytes(info.key_bits), info.key_bits.size()) !=
            1) {
      return absl::InvalidArgumentError(WithOpenSslErrors("invalid EC public key"));
    }
    return key;
  }
  if (info.algorithm != KeyAlgorithm::kRsa) {
    return absl::InvalidArgumentError("unsupported public key algorithm");
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  BignumPtr n(BN_bin2bn(Bytes(info.rsa_n), static_cast<int>(info.rsa_n.size()), nullptr));
  BignumPtr e(BN_bin2bn(Bytes(info.rsa_e), static_cast<int>(info.rsa_e.size()), nullptr));
  bool ok = bld != nullptr && n != nullptr && e != nullptr &&
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) &&
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
  ParamPtr params(ok ? OSSL_PARAM_BLD_to_param(bld.get()) : nullptr);
  EvpPkeyCtxPtr ctx(params == nullptr ? nullptr
                                      : EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* key = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return absl::InvalidArgumentError(WithOpenSslErrors("invalid RSA public key"));
  }
  return EvpPkeyPtr(key);
}

}  // namespace internal

absl::StatusOr<KeyType> ParseKeyType(absl::string_view name) {
  if (name == "ec-p256") return KeyType::kEcP256;
  if (name == "ec-p384") return KeyType::kEcP384;
  if (name == "rsa-2048") return KeyType::kRsa2048;
  if (name == "rsa-4096") return KeyType::kRsa4096;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown key type \"", name, "\" (accepted: ec-p256, ec-p384, rsa-2048, rsa-4096)"));
}

const char* KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kEcP256:
      return "ec-p256";
    case KeyType::kEcP384:
      return "ec-p384";
    case KeyType::kRsa2048:
      return "rsa-2048";
    case KeyType::kRsa4096:
      return "rsa-4096";
  }
  return "unknown";
}

// ---- PublicKey ----

PublicKey::PublicKey(std::shared_ptr<EVP_PKEY> key, std::string spki_der)
    : key_(std::move(key)), spki_der_(std::move(spki_der)) {
  EVP_PKEY* k = key_.get();
  if (k == nullptr) return;
  size_bytes_ = (EVP_PKEY_get_bits(k) + 7) / 8;
  switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_EC: {
      char group[64] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(k, group, sizeof(group), &len) == 1) {
        curve_name_ = JoseCurveName(group);
      } else {
        internal::DrainOpenSslErrors();
      }
      // Explicit-parameter curves are not a supported EC key.
      algorithm_ = *curve_name_ != '\0' ? KeyAlgorithm::kEc : KeyAlgorithm::kOther;
      break;
    }
    case EVP_PKEY_RSA:
      algorithm_ = KeyAlgorithm::kRsa;
      break;
    default:
      algorithm_ = KeyAlgorithm::kOther;
  }
}

absl::StatusOr<PublicKey> PublicKey::FromSpkiDer(absl::string_view der) {
  SIGIL_ASSIGN_OR_RETURN(der::SpkiInfo info, der::ParseSpki(der));
  // Not d2i_PUBKEY: OpenSSL 3.0's decoder path costs ~20x more.
  SIGIL_ASSIGN_OR_RETURN(EvpPkeyPtr key, internal::PublicEvpFromSpkiInfo(info));
  return PublicKey(internal::ShareKey(std::move(key)), std::string(der));
}

absl::StatusOr<PublicKey> PublicKey::FromPem(absl::string_view pem) {
  SIGIL_ASSIGN_OR_RETURN(std::vector<PemBlock> blocks, ParsePem(pem));
  for (const PemBlock& block : blocks) {
    if (block.type == "PUBLIC KEY") return FromSpkiDer(block.der);
  }
  return absl::InvalidArgumentError("no PEM \"PUBLIC KEY\" block found");
}

std::string PublicKey::ToPem() const { return EncodePem("PUBLIC KEY", spki_der_); }

absl::Status PublicKey::Verify(SignatureScheme scheme, absl::string_view data,
                               absl::string_view signature) const {
  SchemeInfo info = InfoFor(scheme);
  if (info.md == nullptr || info.algorithm != algorithm_) {
    return absl::InvalidArgumentError(
        "signature verification failed: the scheme does not fit the key's algorithm");
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), &pctx, info.md, nullptr, key_.get()) != 1 ||
      !ConfigurePadding(pctx, info, /*signing=*/false)) {
    internal::DrainOpenSslErrors();
    return absl::InternalError("signature verification could not be set up");
  }
  if (EVP_DigestVerify(ctx.get(), Bytes(signature), signature.size(), Bytes(data), data.size()) !=
      1) {
    internal::DrainOpenSslErrors();
    return absl::InvalidArgumentError("signature verification failed");
  }
  return absl::OkStatus();
}

// ---- PrivateKey ----

absl::StatusOr<PrivateKey> PrivateKey::FromEvp(EVP_PKEY* owned) {
  EvpPkeyPtr key(owned);
  std::string spki = EncodeSpki(key.get());
  if (spki.empty()) return absl::InvalidArgumentError("private key has no encodable public key");
  SIGIL_ASSIGN_OR_RETURN(PublicKey pub, PublicKey::FromSpkiDer(spki));
  // A stored public half that does not match the private scalar would make
  // every certificate issued for this key useless; refuse such files.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (check == nullptr || EVP_PKEY_pairwise_check(check.get()) != 1) {
    return absl::InvalidArgumentError(
        internal::WithOpenSslErrors("private key fails its consistency check"));
  }
  return PrivateKey(internal::ShareKey(std::move(key)), std::move(pub));
}

absl::StatusOr<PrivateKey> PrivateKey::Generate(KeyType type) {
  bool ec = type == KeyType::kEcP256 || type == KeyType::kEcP384;
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(ec ? EVP_PKEY_EC : EVP_PKEY_RSA, nullptr));
  bool ok = ctx != nullptr && EVP_PKEY_keygen_init(ctx.get()) == 1;
  if (ok) {
    switch (type) {
      case KeyType::kEcP256:
        ok = EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), NID_X9_62_prime256v1) > 0;
        break;
      case KeyType::kEcP384:
        ok = EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), NID_secp384r1) > 0;
        break;
      case KeyType::kRsa2048:
        ok = EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 2048) > 0;
        break;
      case KeyType::kRsa4096:
        ok = EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 4096) > 0;
        break;
    }
  }
  EVP_PKEY* key = nullptr;
  if (!ok || EVP_PKEY_keygen(ctx.get(), &key) != 1) {
    return absl::InternalError(
        internal::WithOpenSslErrors(absl::StrCat("generating a ", KeyTypeName(type), " key")));
  }
  EvpPkeyPtr owned(key);
  std::string spki = EncodeSpki(owned.get());
  absl::StatusOr<PublicKey> pub = PublicKey::FromSpkiDer(spki);
  if (!pub.ok()) {
    return absl::InternalError(absl::StrCat("generated key unusable: ", pub.status().message()));
  }
  return PrivateKey(internal::ShareKey(std::move(owned)), *std::move(pub));
}

absl::StatusOr<PrivateKey> PrivateKey::FromPkcs8Der(absl::string_view der) {
  const unsigned char* p = Bytes(der);
  internal::Pkcs8Ptr p8(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
  if (p8 == nullptr || p != Bytes(der) + der.size()) {
    return absl::InvalidArgumentError(
        internal::WithOpenSslErrors("malformed PKCS#8 private key"));
  }
  EVP_PKEY* key = EVP_PKCS82PKEY(p8.get());
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        internal::WithOpenSslErrors("unsupported or malformed PKCS#8 private key"));
  }
  return FromEvp(key);
}

absl::StatusOr<PrivateKey> PrivateKey::FromPem(absl::string_view pem) {
  // RFC 1421 encryption headers; checked before parsing because Sigil's PEM
  // parser refuses headers altogether and the reason should be clear.
  if (absl::StrContains(pem, "Proc-Type:") && absl::StrContains(pem, "ENCRYPTED")) {
    return absl::InvalidArgumentError("encrypted private keys are not supported");
  }
  SIGIL_ASSIGN_OR_RETURN(std::vector<PemBlock> blocks, ParsePem(pem));
  for (PemBlock& block : blocks) {
    int legacy_type = EVP_PKEY_NONE;
    if (block.type == "PRIVATE KEY") {
      absl::StatusOr<PrivateKey> key = FromPkcs8Der(block.der);
      OPENSSL_cleanse(block.der.data(), block.der.size());
      return key;
    } else if (block.type == "ENCRYPTED PRIVATE KEY") {
      return absl::InvalidArgumentError("encrypted private keys are not supported");
    } else if (block.type == "EC PRIVATE KEY") {
      legacy_type = EVP_PKEY_EC;
    } else if (block.type == "RSA PRIVATE KEY") {
      legacy_type = EVP_PKEY_RSA;
    } else {
      continue;
    }
    const unsigned char* p = Bytes(block.der);
    EVP_PKEY* key = d2i_PrivateKey(legacy_type, nullptr, &p, static_cast<long>(block.der.size()));
    bool complete = p == Bytes(block.der) + block.der.size();
    OPENSSL_cleanse(block.der.data(), block.der.size());
    if (key == nullptr || !complete) {
      EVP_PKEY_free(key);
      return absl::InvalidArgumentError(internal::WithOpenSslErrors(
          absl::StrCat("malformed PEM \"", block.type, "\" block")));
    }
    return FromEvp(key);
  }
  return absl::InvalidArgumentError(
      "no private key PEM block found (expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)");
}

std::string PrivateKey::ToPkcs8Der() const {
  internal::Pkcs8Ptr p8(EVP_PKEY2PKCS8(key_.get()));
  unsigned char* buf = nullptr;
  int len = p8 == nullptr ? -1 : i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &buf);
  if (len <= 0) {
    // Every PrivateKey was validated when it was made; failing to encode one
    // means the library is out of memory or broken.
    std::cerr << "sigil::crypto: cannot encode a validated private key: "
              << internal::DrainOpenSslErrors() << std::endl;
    std::abort();
  }
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(len));
  OPENSSL_clear_free(buf, static_cast<size_t>(len));
  return out;
}

std::string PrivateKey::ToPkcs8Pem() const {
  std::string der = ToPkcs8Der();
  std::string pem = EncodePem("PRIVATE KEY", der);
  OPENSSL_cleanse(der.data(), der.size());
  return pem;
}

absl::StatusOr<std::string> PrivateKey::Sign(SignatureScheme scheme,
                                             absl::string_view data) const {
  SchemeInfo info = InfoFor(scheme);
  if (info.md == nullptr || info.algorithm != algorithm()) {
    return absl::InvalidArgumentError("signature scheme does not fit the key's algorithm");
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), &pctx, info.md, nullptr, key_.get()) != 1 ||
      !ConfigurePadding(pctx, info, /*signing=*/true)) {
    return absl::InternalError(internal::WithOpenSslErrors("signing setup failed"));
  }
  std::string sig(static_cast<size_t>(EVP_PKEY_get_size(key_.get())), '\0');
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, Bytes(data),
                     data.size()) != 1) {
    return absl::InternalError(internal::WithOpenSslErrors("signing failed"));
  }
  sig.resize(len);
  return sig;
}

SignatureScheme PrivateKey::DefaultScheme() const {
  if (algorithm() == KeyAlgorithm::kRsa) return SignatureScheme::kRsaPkcs1Sha256;
  int size = public_key_.size_bytes();
  if (size <= 32) return SignatureScheme::kEcdsaSha256;
  if (size <= 48) return SignatureScheme::kEcdsaSha384;
  return SignatureScheme::kEcdsaSha512;
}

}  // namespace sigil::crypto
