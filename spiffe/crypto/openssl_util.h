#pragma once

// Internal to spiffe/crypto/: owning pointers for OpenSSL objects and the
// conversion of OpenSSL's thread-local error queue into a message.

#include <memory>
#include <string>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "spiffe/crypto/der.h"

namespace sigil::crypto::internal {

template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO, BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BIGNUM, BN_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509, X509_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE, X509_STORE_free>>;
using X509StoreCtxPtr =
    std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using Pkcs8Ptr =
    std::unique_ptr<PKCS8_PRIV_KEY_INFO, OpenSslDeleter<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>>;
using GeneralNamesPtr =
    std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES, GENERAL_NAMES_free>>;

// Frees the stack without freeing its elements (the caller keeps them).
struct X509StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;
// Frees the stack and drops one reference on each element.
struct X509StackPopFreeDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509StackOwnedPtr = std::unique_ptr<STACK_OF(X509), X509StackPopFreeDeleter>;

// Shared ownership for the immutable objects held by value types.
inline std::shared_ptr<EVP_PKEY> ShareKey(EvpPkeyPtr key) {
  return std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free);
}

// Drains this thread's OpenSSL error queue and returns its reasons joined by
// "; " ("" when the queue was empty). Call on every failure path so a stale
// error never shows up in an unrelated later call.
std::string DrainOpenSslErrors();

// Returns `context` followed by ": <OpenSSL reasons>" when there are any.
std::string WithOpenSslErrors(absl::string_view context);

// Builds a public EVP_PKEY straight from key parameters (EVP_PKEY_fromdata),
// skipping the SPKI decoder: EC from `curve` and the point in `key_bits`
// (OpenSSL rejects points off the curve), RSA from `rsa_n` and `rsa_e`.
// InvalidArgument when OpenSSL refuses the parameters.
absl::StatusOr<EvpPkeyPtr> PublicEvpFromSpkiInfo(const der::SpkiInfo& info);

inline const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace sigil::crypto::internal
