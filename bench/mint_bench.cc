// X509-SVID minting throughput, all on one pinned core in one run:
//   BM_RawEcdsaP256Sign    bare EVP_DigestSign (ECDSA P-256, SHA-256) over
//                          300 bytes, the floor of any issuance;
//   BM_IssueFromSpki       CertificateIssuer::IssueDer for a SPIFFE leaf;
//   BM_IssueFromCsr        CertificateRequest::FromDer + IssueDer;
//   BM_NaiveOpenSslIssue   X509_new / X509_set_pubkey / X509V3 / X509_sign.
// Also, to explain the figures: BM_RawEcdsaP256SignCopiedCtx (the signing
// step as the issuer does it, from a copied pre-initialised context),
// BM_CsrFromDer (CSR parse + self-signature check alone) and
// BM_NaiveCsrVerify (d2i_X509_REQ + X509_REQ_get_pubkey + X509_REQ_verify).
// The goal: BM_IssueFromSpki >= 50% of BM_RawEcdsaP256Sign (docs/PERFORMANCE.md).

#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/time/time.h"
#include "spiffe/crypto/certificate.h"
#include "spiffe/crypto/csr.h"
#include "spiffe/crypto/key.h"
#include "spiffe/crypto/x509_builder.h"

namespace sigil::crypto {
namespace {

template <typename T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "mint_bench setup failed: %s\n", v.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(v);
}

struct Fixture {
  PrivateKey ca_key = Must(PrivateKey::Generate(KeyType::kEcP256));
  PrivateKey leaf_key = Must(PrivateKey::Generate(KeyType::kEcP256));
  Certificate ca_cert = Must(SelfSign(CaTemplate(), ca_key));
  std::unique_ptr<CertificateIssuer> issuer = Must(CertificateIssuer::Create(ca_cert, ca_key));
  std::string csr_der =
      Must(CreateCsrDer(leaf_key, {}, {"spiffe://example.org/workload"}));
  absl::Time now = absl::FromUnixSeconds(1767225600);

  static CertificateTemplate CaTemplate() {
    CertificateTemplate t;
    t.serial = RandomSerial();
    t.subject = {{NameAttribute::kCountry, "US"}, {NameAttribute::kOrganization, "SPIFFE"}};
    t.not_before = absl::FromUnixSeconds(1767225600);
    t.not_after = t.not_before + absl::Hours(24 * 365);
    t.is_ca = true;
    t.key_usage = kKeyUsageKeyCertSign | kKeyUsageCrlSign | kKeyUsageDigitalSignature;
    t.uri_sans = {"spiffe://example.org"};
    return t;
  }

  CertificateTemplate LeafTemplate() const {
    CertificateTemplate t;
    t.serial = RandomSerial();
    t.subject = {{NameAttribute::kCountry, "US"}, {NameAttribute::kOrganization, "SPIRE"}};
    t.not_before = now - absl::Seconds(10);
    t.not_after = now + absl::Hours(1);
    t.key_usage = kKeyUsageDigitalSignature | kKeyUsageKeyEncipherment | kKeyUsageKeyAgreement;
    t.ext_key_usage = {ExtKeyUsage::kServerAuth, ExtKeyUsage::kClientAuth};
    t.uri_sans = {"spiffe://example.org/workload"};
    return t;
  }
};

Fixture& F() {
  static Fixture* f = new Fixture();
  return *f;
}

void BM_RawEcdsaP256Sign(benchmark::State& state) {
  const std::string message(300, 'm');
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[80];
  for (auto _ : state) {
    size_t len = sizeof(sig);
    if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, F().ca_key.get()) != 1 ||
        EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
      state.SkipWithError("EVP_DigestSign failed");
      break;
    }
    benchmark::DoNotOptimize(sig);
    EVP_MD_CTX_reset(ctx);
  }
  EVP_MD_CTX_free(ctx);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawEcdsaP256Sign);

void BM_RawEcdsaP256SignCopiedCtx(benchmark::State& state) {
  const std::string message(300, 'm');
  EVP_MD_CTX* ready = EVP_MD_CTX_new();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[80];
  if (EVP_DigestSignInit(ready, nullptr, EVP_sha256(), nullptr, F().ca_key.get()) != 1) {
    state.SkipWithError("EVP_DigestSignInit failed");
  }
  for (auto _ : state) {
    size_t len = sizeof(sig);
    if (EVP_MD_CTX_copy_ex(ctx, ready) != 1 ||
        EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) != 1) {
      state.SkipWithError("EVP_DigestSign failed");
      break;
    }
    benchmark::DoNotOptimize(sig);
    EVP_MD_CTX_reset(ctx);
  }
  EVP_MD_CTX_free(ctx);
  EVP_MD_CTX_free(ready);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawEcdsaP256SignCopiedCtx);

void BM_IssueFromSpki(benchmark::State& state) {
  const std::string& spki = F().leaf_key.public_key().spki_der();
  size_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> der = F().issuer->IssueDer(F().LeafTemplate(), spki);
    if (!der.ok()) {
      state.SkipWithError(std::string(der.status().message()).c_str());
      break;
    }
    bytes = der->size();
    benchmark::DoNotOptimize(der);
  }
  state.counters["cert_bytes"] = static_cast<double>(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IssueFromSpki);

void BM_IssueFromCsr(benchmark::State& state) {
  for (auto _ : state) {
    absl::StatusOr<CertificateRequest> csr = CertificateRequest::FromDer(F().csr_der);
    if (!csr.ok()) {
      state.SkipWithError(std::string(csr.status().message()).c_str());
      break;
    }
    absl::StatusOr<std::string> der = F().issuer->IssueDer(F().LeafTemplate(), csr->spki_der());
    if (!der.ok()) {
      state.SkipWithError(std::string(der.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(der);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IssueFromCsr);

// The CSR parse and signature check alone, to split BM_IssueFromCsr.
void BM_CsrFromDer(benchmark::State& state) {
  for (auto _ : state) {
    absl::StatusOr<CertificateRequest> csr = CertificateRequest::FromDer(F().csr_der);
    if (!csr.ok()) {
      state.SkipWithError(std::string(csr.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(csr);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CsrFromDer);

// The generic OpenSSL path for the same CSR check, for contrast.
void BM_NaiveCsrVerify(benchmark::State& state) {
  const std::string& der = F().csr_der;
  for (auto _ : state) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()));
    EVP_PKEY* key = req == nullptr ? nullptr : X509_REQ_get_pubkey(req);
    int ok = key != nullptr && X509_REQ_verify(req, key) == 1;
    EVP_PKEY_free(key);
    X509_REQ_free(req);
    if (!ok) {
      state.SkipWithError("X509_REQ_verify failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NaiveCsrVerify);

// What a straightforward OpenSSL 3 CA does: decode the requested key, build
// an X509 object, let X509V3 make the extensions, X509_sign, i2d.
void BM_NaiveOpenSslIssue(benchmark::State& state) {
  const std::string& spki = F().leaf_key.public_key().spki_der();
  X509* ca = F().ca_cert.get();
  for (auto _ : state) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(spki.data());
    EVP_PKEY* pub = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size()));
    X509* x = X509_new();
    std::string serial = RandomSerial();
    BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()),
                           static_cast<int>(serial.size()), nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_set_version(x, X509_VERSION_3);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("US"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("SPIRE"), -1, -1, 0);
    time_t now = absl::ToTimeT(F().now);
    X509_time_adj_ex(X509_getm_notBefore(x), 0, -10, &now);
    X509_time_adj_ex(X509_getm_notAfter(x), 0, 3600, &now);
    X509_set_pubkey(x, pub);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca, x, nullptr, nullptr, 0);
    const std::pair<int, const char*> exts[] = {
        {NID_key_usage, "critical,digitalSignature,keyEncipherment,keyAgreement"},
        {NID_ext_key_usage, "serverAuth,clientAuth"},
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"},
        {NID_subject_alt_name, "URI:spiffe://example.org/workload"},
    };
    for (const auto& [nid, value] : exts) {
      X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &v3, nid, value);
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
    if (X509_sign(x, F().ca_key.get(), EVP_sha256()) <= 0) {
      state.SkipWithError("X509_sign failed");
      break;
    }
    unsigned char* der = nullptr;
    int len = i2d_X509(x, &der);
    benchmark::DoNotOptimize(len);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(pub);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NaiveOpenSslIssue);

}  // namespace
}  // namespace sigil::crypto

int main(int argc, char** argv) {
  // One core for every benchmark, so the ratios compare like with like.
  int cpu = sched_getcpu();
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) == 0) {
      benchmark::AddCustomContext("pinned_cpu", std::to_string(cpu));
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  sigil::crypto::F();  // key generation outside the timings
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
