#include "node-agent/cli/x509_response.h"

#include "absl/strings/str_cat.h"
#include "common/cli_flags.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "node-agent/cli/cli_util.h"
#include "spiffe/bundle.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/key.h"
#include "spiffe/id.h"
#include "spiffe/x509svid.h"

namespace sigil::agent::cli {
namespace {

absl::StatusOr<ParsedX509Svid> ParseSvid(const ::X509SVID& in) {
  ParsedX509Svid out;
  out.spiffe_id = in.spiffe_id();
  out.hint = in.hint();
  if (in.x509_svid().empty()) return absl::InvalidArgumentError("no certificates found");
  SIGIL_ASSIGN_OR_RETURN(out.chain, crypto::Certificate::ParseDerChain(in.x509_svid()));
  absl::StatusOr<crypto::PrivateKey> key = crypto::PrivateKey::FromPkcs8Der(in.x509_svid_key());
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("failed to parse private key: ", key.status().message()));
  }
  if (key->public_key().spki_der() != out.chain.front().public_key().spki_der()) {
    return absl::InvalidArgumentError("private key does not match the leaf certificate");
  }
  out.key_pkcs8_der = in.x509_svid_key();
  if (in.bundle().empty()) return absl::InvalidArgumentError("no certificates in trust bundle");
  absl::StatusOr<std::vector<crypto::Certificate>> bundle =
      crypto::Certificate::ParseDerChain(in.bundle());
  if (!bundle.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("failed to parse trust bundle: ", bundle.status().message()));
  }
  out.bundle = *std::move(bundle);
  return out;
}

absl::Status VerifySvid(const ParsedX509Svid& svid, absl::Time now) {
  absl::StatusOr<spiffe::SpiffeId> parsed_id = spiffe::SpiffeId::FromString(svid.spiffe_id);
  if (!parsed_id.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(GoQuote(svid.spiffe_id),
                                                   " is not a valid SPIFFE ID: ",
                                                   parsed_id.status().message()));
  }
  const spiffe::SpiffeId& id = *parsed_id;
  spiffe::Bundle bundle(id.trust_domain());
  for (const crypto::Certificate& ca : svid.bundle) bundle.AddX509Authority(ca);
  spiffe::BundleSet bundles;
  bundles.Add(std::move(bundle));
  absl::StatusOr<spiffe::SpiffeId> leaf_id = spiffe::Verify(svid.chain, bundles, now);
  std::string failure;
  if (!leaf_id.ok()) {
    failure = std::string(leaf_id.status().message());
  } else if (*leaf_id != id) {
    failure = absl::StrCat("the certificate's SPIFFE ID is ", GoQuote(leaf_id->ToString()));
  }
  if (!failure.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        GoQuote(svid.spiffe_id), " SVID failed verification against bundle: ", failure));
  }
  return absl::OkStatus();
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  if (d == "/") return d + name;
  return absl::StrCat(d, "/", name);
}

std::string CertsPem(const std::vector<crypto::Certificate>& certs) {
  std::string pem;
  for (const crypto::Certificate& c : certs) pem += crypto::EncodePem("CERTIFICATE", c.der());
  return pem;
}

absl::Status WriteOne(const std::string& path, const std::string& data, mode_t mode) {
  absl::Status s = WriteFileAtomic(path, data, mode);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("cannot write ", path, ": ", s.message()));
  }
  return absl::OkStatus();
}

void PrintValidity(std::ostream& out, const std::string& label, const crypto::Certificate& c) {
  out << label << " Valid After:\t" << GoTimeUtc(c.not_before()) << "\n";
  out << label << " Valid Until:\t" << GoTimeUtc(c.not_after()) << "\n";
}

}  // namespace

absl::StatusOr<ParsedX509Response> ParseX509Response(const ::X509SVIDResponse& response,
                                                     absl::Time now) {
  if (response.svids().empty()) {
    return absl::InvalidArgumentError("workload response contains no svids");
  }
  ParsedX509Response out;
  for (const auto& [td_id, der] : response.federated_bundles()) {
    if (der.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no certificates in bundle for federated domain ", GoQuote(td_id)));
    }
    absl::StatusOr<std::vector<crypto::Certificate>> certs =
        crypto::Certificate::ParseDerChain(der);
    if (!certs.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("failed to parse bundle for federated domain ",
                                                     GoQuote(td_id), ": ",
                                                     certs.status().message()));
    }
    out.federated_bundles.emplace(td_id, *std::move(certs));
  }
  for (int i = 0; i < response.svids_size(); ++i) {
    const ::X509SVID& in = response.svids(i);
    absl::StatusOr<ParsedX509Svid> svid = ParseSvid(in);
    if (!svid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("failed to parse svid entry ", i,
                                                     " for spiffe id ", GoQuote(in.spiffe_id()),
                                                     ": ", svid.status().message()));
    }
    out.svids.push_back(*std::move(svid));
  }
  for (const ParsedX509Svid& svid : out.svids) SIGIL_RETURN_IF_ERROR(VerifySvid(svid, now));
  return out;
}

void PrintX509Response(const ParsedX509Response& response, absl::Duration elapsed,
                       std::ostream& out) {
  out << "Received " << response.svids.size() << (response.svids.size() == 1 ? " svid" : " svids")
      << " after " << ::sigil::cli::FormatGoDuration(elapsed) << "\n";
  for (const ParsedX509Svid& svid : response.svids) {
    out << "\n";
    out << "SPIFFE ID:\t\t" << svid.spiffe_id << "\n";
    if (!svid.hint.empty()) out << "Hint:\t\t\t" << svid.hint << "\n";
    PrintValidity(out, "SVID", svid.chain.front());
    for (size_t i = 1; i < svid.chain.size(); ++i) {
      PrintValidity(out, absl::StrCat("Intermediate #", i), svid.chain[i]);
    }
    for (size_t i = 0; i < svid.bundle.size(); ++i) {
      PrintValidity(out, absl::StrCat("CA #", i + 1), svid.bundle[i]);
    }
    for (const auto& [td_id, certs] : response.federated_bundles) {
      for (size_t i = 0; i < certs.size(); ++i) {
        PrintValidity(out, absl::StrCat("[", td_id, "] CA #", i + 1), certs[i]);
      }
    }
  }
  out << "\n";
}

absl::Status WriteX509Response(const ParsedX509Response& response, const std::string& dir,
                               std::ostream& out) {
  if (absl::Status d = MakeDirs(dir, 0755); !d.ok()) {
    return absl::Status(d.code(), absl::StrCat("cannot create directory ", dir, ": ", d.message()));
  }
  for (size_t i = 0; i < response.svids.size(); ++i) {
    const ParsedX509Svid& svid = response.svids[i];
    std::string svid_path = JoinPath(dir, absl::StrCat("svid.", i, ".pem"));
    std::string key_path = JoinPath(dir, absl::StrCat("svid.", i, ".key"));
    std::string bundle_path = JoinPath(dir, absl::StrCat("bundle.", i, ".pem"));

    out << "Writing SVID #" << i << " to file " << svid_path << ".\n";
    SIGIL_RETURN_IF_ERROR(WriteOne(svid_path, CertsPem(svid.chain), 0644));
    out << "Writing key #" << i << " to file " << key_path << ".\n";
    SIGIL_RETURN_IF_ERROR(
        WriteOne(key_path, crypto::EncodePem("PRIVATE KEY", svid.key_pkcs8_der), 0600));
    out << "Writing bundle #" << i << " to file " << bundle_path << ".\n";
    SIGIL_RETURN_IF_ERROR(WriteOne(bundle_path, CertsPem(svid.bundle), 0644));

    size_t j = 0;
    for (const auto& [td_id, certs] : response.federated_bundles) {
      std::string path = JoinPath(dir, absl::StrCat("federated_bundle.", i, ".", j, ".pem"));
      out << "Writing federated bundle #" << j << " for trust domain " << td_id << " to file "
          << path << ".\n";
      SIGIL_RETURN_IF_ERROR(WriteOne(path, CertsPem(certs), 0644));
      ++j;
    }
  }
  return absl::OkStatus();
}

}  // namespace sigil::agent::cli
