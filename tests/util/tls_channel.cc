#include "tests/util/tls_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <vector>

namespace sigil::testing {

std::shared_ptr<grpc::Channel> TlsChannel(const std::string& target, const std::string& roots_pem,
                                          const std::string& chain_pem, const std::string& key_pem) {
  using grpc::experimental::IdentityKeyCertPair;
  std::vector<IdentityKeyCertPair> identity;
  if (!chain_pem.empty()) identity.push_back(IdentityKeyCertPair{key_pem, chain_pem});
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(roots_pem, identity);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (!identity.empty()) options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_check_call_host(false);
  options.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  grpc::ChannelArguments args;
  // Every test gets its own connection, so identities never mix.
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  args.SetString("grpc.ssl_target_name_override", "sigil-server");
  return grpc::CreateCustomChannel(target, grpc::experimental::TlsCredentials(options), args);
}

}  // namespace sigil::testing
