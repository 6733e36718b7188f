#include "server/server_svid.h"

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace sigil::server {

ServerSvid::ServerSvid(ca::CaManager* ca, std::string dir, absl::Duration ttl, const Clock* clock)
    : ca_(ca),
      cert_path_(absl::StrCat(dir, "/server_svid.pem")),
      key_path_(absl::StrCat(dir, "/server_svid.key")),
      ttl_(ttl),
      clock_(clock) {}

absl::Status ServerSvid::Rotate() {
  SIGIL_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::Generate(crypto::KeyType::kEcP256));
  SIGIL_ASSIGN_OR_RETURN(
      spiffe::SpiffeId id,
      spiffe::SpiffeId::FromPath(ca_->options().trust_domain, "/spire/server"));
  ca::X509SvidParams params(key.public_key().spki_der(), id);
  params.ttl = ttl_;
  SIGIL_ASSIGN_OR_RETURN(std::vector<crypto::Certificate> chain, ca_->MintX509Svid(params));
  // Key first: the TLS stack skips a cert/key pair that does not match and
  // retries, so a reader between the two writes sees the old pair or waits.
  SIGIL_RETURN_IF_ERROR(WriteFileAtomic(key_path_, key.ToPkcs8Pem(), 0600));
  SIGIL_RETURN_IF_ERROR(WriteFileAtomic(cert_path_, crypto::ToPem(chain), 0644));
  spdlog::info("server SVID {} rotated (serial {}, expires {})", id.ToString(), chain.front().serial_hex(),
               absl::FormatTime(chain.front().not_after()));
  absl::MutexLock lock(&mu_);
  chain_ = std::move(chain);
  return absl::OkStatus();
}

absl::Status ServerSvid::RotateIfDue() {
  {
    absl::MutexLock lock(&mu_);
    if (!chain_.empty()) {
      const auto& leaf = chain_.front();
      absl::Time half = leaf.not_before() + (leaf.not_after() - leaf.not_before()) / 2;
      if (clock_->Now() < half) return absl::OkStatus();
    }
  }
  return Rotate();
}

std::vector<crypto::Certificate> ServerSvid::chain() const {
  absl::MutexLock lock(&mu_);
  return chain_;
}

}  // namespace sigil::server
