#include "attestors/node/x509pop/server.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/x509_builder.h"

namespace sigil::attestors::node::x509pop {
namespace {

constexpr char kPrefix[] = "nodeattestor(x509pop): ";
constexpr char kSelectorType[] = "x509pop";
constexpr char kUriSanField[] = "URISanSelectors.";
constexpr char kSupportedFields[] =
    ".PluginName, .Fingerprint, .TrustDomain, .SerialNumberHex, .Subject.CommonName, "
    ".URISanSelectors.<key>";

absl::Status WithPrefix(const absl::Status& s, absl::string_view context = "") {
  return absl::Status(s.code(), absl::StrCat(kPrefix, context, s.message()));
}

bool IsIdentifierChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// A field path as Go's template lexer reads one: ".Name" followed by more
// ".Name"s, each a run of letters, digits and underscores.
bool IsFieldPath(absl::string_view action) {
  if (action.empty() || action[0] != '.') return false;
  size_t i = 0;
  while (i < action.size()) {
    if (action[i] != '.') return false;
    size_t start = ++i;
    while (i < action.size() && IsIdentifierChar(action[i])) ++i;
    if (i == start) return false;
  }
  return true;
}

bool IsSupportedField(absl::string_view field) {
  if (field == "PluginName" || field == "Fingerprint" || field == "TrustDomain" || field == "SerialNumberHex" ||
      field == "Subject.CommonName") {
    return true;
  }
  return absl::StartsWith(field, kUriSanField) && field.size() > sizeof(kUriSanField) - 1 &&
         field.substr(sizeof(kUriSanField) - 1).find('.') == absl::string_view::npos;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a URI path as Go's url.URL.Path holds it. False on a
// malformed escape (Go refuses to parse such a URI at all).
bool PercentDecode(absl::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = HexDigit(in[i + 1]);
    int lo = HexDigit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

absl::StatusOr<std::vector<crypto::Certificate>> LoadBundle(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  return crypto::Certificate::ParsePemChain(*pem);
}

}  // namespace

absl::StatusOr<AgentPathTemplate> AgentPathTemplate::Parse(absl::string_view text) {
  std::vector<Part> parts;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == absl::string_view::npos) {
      parts.push_back({false, std::string(text.substr(pos))});
      break;
    }
    if (open > pos) parts.push_back({false, std::string(text.substr(pos, open - pos))});
    size_t close = text.find("}}", open + 2);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("agent_path_template: unterminated action \"", text.substr(open), "\" (missing \"}}\")"));
    }
    absl::string_view whole = text.substr(open, close + 2 - open);
    absl::string_view action = absl::StripAsciiWhitespace(text.substr(open + 2, close - open - 2));
    if (!IsFieldPath(action)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "agent_path_template: unsupported action \"", whole,
          "\": only field placeholders such as {{ .Fingerprint }} are supported (", kSupportedFields, ")"));
    }
    absl::string_view field = action.substr(1);
    if (!IsSupportedField(field)) {
      return absl::InvalidArgumentError(
          absl::StrCat("agent_path_template: unknown placeholder \"", whole, "\"; supported: ", kSupportedFields));
    }
    parts.push_back({true, std::string(field)});
    pos = close + 2;
  }
  return AgentPathTemplate(std::string(text), std::move(parts));
}

absl::StatusOr<std::string> AgentPathTemplate::Render(const AgentPathValues& values) const {
  std::string out;
  for (const Part& part : parts_) {
    if (!part.is_field) {
      out += part.text;
    } else if (part.text == "PluginName") {
      out += values.plugin_name;
    } else if (part.text == "Fingerprint") {
      out += values.fingerprint;
    } else if (part.text == "TrustDomain") {
      out += values.trust_domain;
    } else if (part.text == "SerialNumberHex") {
      out += values.serial_number_hex;
    } else if (part.text == "Subject.CommonName") {
      out += values.subject_common_name;
    } else {
      std::string key = part.text.substr(sizeof(kUriSanField) - 1);
      auto it = values.uri_san_selectors.find(key);
      if (it == values.uri_san_selectors.end()) {
        return absl::InvalidArgumentError(absl::StrCat("agent_path_template refers to .URISanSelectors.", key,
                                                       " but the certificate has no x509pop URI SAN with key \"", key,
                                                       "\""));
      }
      out += it->second;
    }
  }
  return out;
}

absl::StatusOr<spiffe::SpiffeId> AgentIdForPath(const spiffe::TrustDomain& td, absl::string_view rendered) {
  std::string path = absl::StrCat("/spire/agent", absl::StartsWith(rendered, "/") ? "" : "/", rendered);
  absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::FromPath(td, path);
  if (!id.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("agent path \"", path, "\" is not a valid SPIFFE ID path: ", id.status().message()));
  }
  return id;
}

absl::StatusOr<Challenge> GenerateChallenge(const crypto::Certificate& leaf) {
  if (!leaf.has_key_usage() || (leaf.key_usage() & crypto::kKeyUsageDigitalSignature) == 0) {
    return absl::PermissionDeniedError("certificate not intended for digital signature use");
  }
  Challenge challenge;
  switch (leaf.public_key().algorithm()) {
    case crypto::KeyAlgorithm::kRsa:
      challenge.rsa_signature = RsaSignatureChallenge{crypto::RandomBytes(kNonceSize)};
      return challenge;
    case crypto::KeyAlgorithm::kEc:
      challenge.ecdsa_signature = EcdsaSignatureChallenge{crypto::RandomBytes(kNonceSize)};
      return challenge;
    case crypto::KeyAlgorithm::kOther:
      break;
  }
  return absl::PermissionDeniedError("unsupported public key type: x509pop proves possession of RSA and EC keys only");
}

absl::Status VerifyChallengeResponse(const crypto::PublicKey& key, const Challenge& challenge,
                                     const Response& response) {
  switch (key.algorithm()) {
    case crypto::KeyAlgorithm::kRsa: {
      if (!challenge.rsa_signature) return absl::PermissionDeniedError("expecting RSA challenge");
      if (!response.rsa_signature) return absl::PermissionDeniedError("expecting RSA response");
      absl::StatusOr<std::string> message =
          SignedMessage(challenge.rsa_signature->nonce, response.rsa_signature->nonce);
      if (!message.ok()) return absl::PermissionDeniedError(message.status().message());
      if (!key.Verify(crypto::SignatureScheme::kRsaPssSha256AnySalt, *message, response.rsa_signature->signature).ok()) {
        return absl::PermissionDeniedError("RSA signature verify failed");
      }
      return absl::OkStatus();
    }
    case crypto::KeyAlgorithm::kEc: {
      if (!challenge.ecdsa_signature) return absl::PermissionDeniedError("expecting ECDSA challenge");
      if (!response.ecdsa_signature) return absl::PermissionDeniedError("expecting ECDSA response");
      absl::StatusOr<std::string> message =
          SignedMessage(challenge.ecdsa_signature->nonce, response.ecdsa_signature->nonce);
      if (!message.ok()) return absl::PermissionDeniedError(message.status().message());
      // r and s are big-endian magnitudes of any length (Go's SetBytes);
      // anything wider than the curve's field cannot verify.
      const size_t width = static_cast<size_t>(key.size_bytes());
      std::string raw;
      for (absl::string_view v :
           {absl::string_view(response.ecdsa_signature->r), absl::string_view(response.ecdsa_signature->s)}) {
        size_t zeros = 0;
        while (zeros < v.size() && v[zeros] == '\0') ++zeros;
        v.remove_prefix(zeros);
        if (v.size() > width) return absl::PermissionDeniedError("ECDSA signature verify failed");
        raw.append(width - v.size(), '\0');
        raw.append(v.data(), v.size());
      }
      absl::StatusOr<std::string> der = crypto::EcdsaRawToDer(raw, key.size_bytes());
      if (!der.ok() || !key.Verify(crypto::SignatureScheme::kEcdsaSha256, *message, *der).ok()) {
        return absl::PermissionDeniedError("ECDSA signature verify failed");
      }
      return absl::OkStatus();
    }
    case crypto::KeyAlgorithm::kOther:
      break;
  }
  return absl::PermissionDeniedError("unsupported public key type");
}

std::map<std::string, std::string> UriSanSelectors(const crypto::Certificate& leaf, const spiffe::TrustDomain& td) {
  std::map<std::string, std::string> out;
  const std::string prefix = absl::StrCat("x509pop://", td.name(), "/");
  for (const std::string& uri : leaf.uri_sans()) {
    if (!absl::StartsWith(uri, prefix)) continue;
    // The path is what follows the authority, up to a query or fragment.
    absl::string_view path = absl::string_view(uri).substr(prefix.size() - 1);
    path = path.substr(0, path.find_first_of("?#"));
    std::string decoded;
    if (!PercentDecode(path, &decoded)) continue;
    absl::string_view trimmed = decoded;
    while (absl::ConsumePrefix(&trimmed, "/")) {
    }
    while (absl::ConsumeSuffix(&trimmed, "/")) {
    }
    size_t slash = trimmed.find('/');
    if (slash == absl::string_view::npos) continue;
    out[std::string(trimmed.substr(0, slash))] = std::string(trimmed.substr(slash + 1));
  }
  return out;
}

Selectors BuildSelectors(const crypto::Certificate& leaf, const std::vector<crypto::Certificate>& path,
                         const spiffe::TrustDomain& td) {
  Selectors selectors;
  std::string cn = CommonName(leaf);
  if (!cn.empty()) selectors.push_back({kSelectorType, absl::StrCat("subject:cn:", cn)});
  std::set<std::string> seen;
  for (size_t i = 1; i < path.size(); ++i) {
    std::string fp = Fingerprint(path[i]);
    if (seen.insert(fp).second) selectors.push_back({kSelectorType, absl::StrCat("ca:fingerprint:", fp)});
  }
  selectors.push_back({kSelectorType, absl::StrCat("serialnumber:", SerialNumberHex(leaf))});
  for (const auto& [key, value] : UriSanSelectors(leaf, td)) {
    selectors.push_back({kSelectorType, absl::StrCat("san:", key, ":", value)});
  }
  return selectors;
}

absl::StatusOr<std::unique_ptr<X509PopServerAttestor>> X509PopServerAttestor::Create(spiffe::TrustDomain td,
                                                                                     const ServerConfig& config,
                                                                                     const Clock* clock) {
  std::vector<std::string> errors;
  std::vector<std::string> paths;
  if (!config.ca_bundle_path.empty() && !config.ca_bundle_paths.empty()) {
    errors.push_back("only one of ca_bundle_path or ca_bundle_paths can be configured, not both");
  } else if (!config.ca_bundle_path.empty()) {
    paths.push_back(config.ca_bundle_path);
  } else if (!config.ca_bundle_paths.empty()) {
    paths = config.ca_bundle_paths;
  } else {
    errors.push_back("one of ca_bundle_path or ca_bundle_paths must be configured");
  }
  std::vector<crypto::Certificate> roots;
  for (const std::string& path : paths) {
    absl::StatusOr<std::vector<crypto::Certificate>> certs = LoadBundle(path);
    if (!certs.ok()) {
      errors.push_back(absl::StrCat("unable to load trust bundle \"", path, "\": ", certs.status().message()));
      continue;
    }
    roots.insert(roots.end(), certs->begin(), certs->end());
  }
  absl::string_view template_text =
      config.agent_path_template.empty() ? absl::string_view(kDefaultAgentPathTemplate) : config.agent_path_template;
  absl::StatusOr<AgentPathTemplate> tmpl = AgentPathTemplate::Parse(template_text);
  if (!tmpl.ok()) errors.push_back(std::string(tmpl.status().message()));
  if (clock == nullptr) errors.push_back("a clock is required");
  if (!errors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, absl::StrJoin(errors, "; ")));
  }
  return std::unique_ptr<X509PopServerAttestor>(
      new X509PopServerAttestor(std::move(td), std::move(roots), *std::move(tmpl), clock));
}

absl::StatusOr<AttestResult> X509PopServerAttestor::Attest(absl::string_view payload, Challenger* challenger) {
  absl::StatusOr<AttestationData> data = UnmarshalAttestationData(payload);
  if (!data.ok()) return WithPrefix(data.status(), "failed to unmarshal data: ");
  if (data->certificates.empty()) return absl::InvalidArgumentError(absl::StrCat(kPrefix, "no certificate to attest"));
  if (data->certificates.size() - 1 > kMaxIntermediates) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "too many intermediate certificates (",
                                                   data->certificates.size() - 1, "); at most ", kMaxIntermediates,
                                                   " are accepted"));
  }
  std::vector<crypto::Certificate> chain;
  for (size_t i = 0; i < data->certificates.size(); ++i) {
    absl::StatusOr<crypto::Certificate> cert = crypto::Certificate::FromDer(data->certificates[i]);
    if (!cert.ok()) {
      return WithPrefix(cert.status(), i == 0 ? std::string("unable to parse leaf certificate: ")
                                              : absl::StrCat("unable to parse intermediate certificate ", i - 1, ": "));
    }
    chain.push_back(*std::move(cert));
  }
  const crypto::Certificate& leaf = chain.front();

  absl::StatusOr<std::vector<crypto::Certificate>> path = crypto::VerifyChain(chain, roots_, clock_->Now());
  if (!path.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat(kPrefix, "certificate verification failed: ", path.status().message()));
  }

  // The chain is trusted; now the agent must prove it holds the leaf's key.
  absl::StatusOr<Challenge> challenge = GenerateChallenge(leaf);
  if (!challenge.ok()) return WithPrefix(challenge.status(), "unable to generate challenge: ");
  absl::StatusOr<std::string> answer = challenger->Challenge(MarshalChallenge(*challenge));
  if (!answer.ok()) return WithPrefix(answer.status(), "challenge failed: ");
  absl::StatusOr<Response> response = UnmarshalResponse(*answer);
  if (!response.ok()) return WithPrefix(response.status(), "unable to unmarshal challenge response: ");
  absl::Status verified = VerifyChallengeResponse(leaf.public_key(), *challenge, *response);
  if (!verified.ok()) return WithPrefix(verified, "challenge response verification failed: ");

  AgentPathValues values;
  values.plugin_name = kPluginName;
  values.fingerprint = Fingerprint(leaf);
  values.trust_domain = td_.name();
  values.serial_number_hex = SerialNumberHex(leaf);
  values.subject_common_name = CommonName(leaf);
  values.uri_san_selectors = UriSanSelectors(leaf, td_);
  absl::StatusOr<std::string> rendered = template_.Render(values);
  if (!rendered.ok()) return WithPrefix(rendered.status(), "cannot form an agent ID: ");
  absl::StatusOr<spiffe::SpiffeId> id = AgentIdForPath(td_, *rendered);
  if (!id.ok()) return WithPrefix(id.status(), "cannot form an agent ID: ");

  AttestResult result{*std::move(id), BuildSelectors(leaf, *path, td_), true};
  return result;
}

}  // namespace sigil::attestors::node::x509pop
