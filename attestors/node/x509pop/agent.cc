#include "attestors/node/x509pop/agent.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/x509_builder.h"

namespace sigil::attestors::node::x509pop {
namespace {

constexpr char kPrefix[] = "nodeattestor(x509pop): ";

absl::Status Error(const absl::Status& s, absl::string_view context) {
  return absl::Status(s.code(), absl::StrCat(kPrefix, context, s.message()));
}

std::string StripLeadingZeros(absl::string_view v) {
  size_t zeros = 0;
  while (zeros < v.size() && v[zeros] == '\0') ++zeros;
  return std::string(v.substr(zeros));
}

}  // namespace

absl::StatusOr<NodeCredentials> LoadNodeCredentials(const AgentConfig& config) {
  if (config.private_key_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "private_key_path is required"));
  }
  if (config.certificate_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "certificate_path is required"));
  }
  absl::StatusOr<std::string> cert_pem = ReadFile(config.certificate_path);
  if (!cert_pem.ok()) return Error(cert_pem.status(), "unable to load keypair: ");
  absl::StatusOr<std::vector<crypto::Certificate>> chain = crypto::Certificate::ParsePemChain(*cert_pem);
  if (!chain.ok()) {
    return Error(chain.status(),
                 absl::StrCat("unable to load keypair: certificate_path \"", config.certificate_path, "\": "));
  }
  absl::StatusOr<std::string> key_pem = ReadFile(config.private_key_path);
  if (!key_pem.ok()) return Error(key_pem.status(), "unable to load keypair: ");
  absl::StatusOr<crypto::PrivateKey> key = crypto::PrivateKey::FromPem(*key_pem);
  if (!key.ok()) {
    return Error(key.status(),
                 absl::StrCat("unable to load keypair: private_key_path \"", config.private_key_path, "\": "));
  }
  if (key->public_key() != chain->front().public_key()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPrefix, "unable to load keypair: the private key does not match the public key of the first certificate in \"",
        config.certificate_path, "\""));
  }
  if (!absl::StripAsciiWhitespace(config.intermediates_path).empty()) {
    absl::StatusOr<std::string> pem = ReadFile(config.intermediates_path);
    if (!pem.ok()) return Error(pem.status(), "unable to load intermediate certificates: ");
    absl::StatusOr<std::vector<crypto::Certificate>> intermediates = crypto::Certificate::ParsePemChain(*pem);
    if (!intermediates.ok()) {
      return Error(intermediates.status(),
                   absl::StrCat("unable to load intermediate certificates: \"", config.intermediates_path, "\": "));
    }
    chain->insert(chain->end(), intermediates->begin(), intermediates->end());
  }
  return NodeCredentials{*std::move(chain), *std::move(key)};
}

absl::StatusOr<Response> CalculateResponse(const crypto::PrivateKey& key, const Challenge& challenge) {
  const std::string response_nonce = crypto::RandomBytes(kNonceSize);
  Response response;
  switch (key.algorithm()) {
    case crypto::KeyAlgorithm::kRsa: {
      if (!challenge.rsa_signature) return absl::InvalidArgumentError("expecting RSA challenge");
      absl::StatusOr<std::string> message = SignedMessage(challenge.rsa_signature->nonce, response_nonce);
      if (!message.ok()) return message.status();
      absl::StatusOr<std::string> signature = key.Sign(crypto::SignatureScheme::kRsaPssSha256AnySalt, *message);
      if (!signature.ok()) return absl::InternalError(signature.status().message());
      response.rsa_signature = RsaSignatureResponse{response_nonce, *std::move(signature)};
      return response;
    }
    case crypto::KeyAlgorithm::kEc: {
      if (!challenge.ecdsa_signature) return absl::InvalidArgumentError("expecting ECDSA challenge");
      absl::StatusOr<std::string> message = SignedMessage(challenge.ecdsa_signature->nonce, response_nonce);
      if (!message.ok()) return message.status();
      absl::StatusOr<std::string> der = key.Sign(crypto::SignatureScheme::kEcdsaSha256, *message);
      if (!der.ok()) return absl::InternalError(der.status().message());
      const int width = key.public_key().size_bytes();
      absl::StatusOr<std::string> raw = crypto::EcdsaDerToRaw(*der, width);
      if (!raw.ok()) return absl::InternalError(raw.status().message());
      absl::string_view rs = *raw;
      response.ecdsa_signature = EcdsaSignatureResponse{response_nonce, StripLeadingZeros(rs.substr(0, width)),
                                                        StripLeadingZeros(rs.substr(width))};
      return response;
    }
    case crypto::KeyAlgorithm::kOther:
      break;
  }
  return absl::InvalidArgumentError("unsupported private key type");
}

absl::StatusOr<std::unique_ptr<X509PopAgentAttestor>> X509PopAgentAttestor::Create(AgentConfig config) {
  absl::StatusOr<NodeCredentials> credentials = LoadNodeCredentials(config);
  if (!credentials.ok()) return credentials.status();
  return std::unique_ptr<X509PopAgentAttestor>(new X509PopAgentAttestor(std::move(config), *std::move(credentials)));
}

absl::StatusOr<std::string> X509PopAgentAttestor::Payload() {
  absl::StatusOr<NodeCredentials> credentials = LoadNodeCredentials(config_);
  if (!credentials.ok()) return credentials.status();
  AttestationData data;
  for (const crypto::Certificate& cert : credentials->chain) data.certificates.push_back(cert.der());
  absl::MutexLock lock(&mu_);
  credentials_ = *std::move(credentials);
  return MarshalAttestationData(data);
}

absl::StatusOr<std::string> X509PopAgentAttestor::Answer(absl::string_view challenge_json) {
  absl::StatusOr<Challenge> challenge = UnmarshalChallenge(challenge_json);
  if (!challenge.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kPrefix, "unable to unmarshal challenge: ", challenge.status().message()));
  }
  crypto::PrivateKey key = [this] {
    absl::MutexLock lock(&mu_);
    return credentials_.key;
  }();
  absl::StatusOr<Response> response = CalculateResponse(key, *challenge);
  if (!response.ok()) return Error(response.status(), "failed to calculate challenge response: ");
  return MarshalResponse(*response);
}

}  // namespace sigil::attestors::node::x509pop
