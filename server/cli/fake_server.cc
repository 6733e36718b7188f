#include "server/cli/fake_server.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spiffe/crypto/csr.h"
#include "spiffe/id.h"

namespace sigil::server::cli::testing {

grpc::Status FakeSvidService::MintX509SVID(grpc::ServerContext*,
                                           const svidv1::MintX509SVIDRequest* req,
                                           svidv1::MintX509SVIDResponse* resp) {
  // Records the request and honours a canned failure.
  grpc::Status canned = x509.Handle(*req, resp);
  if (!canned.ok()) return canned;
  absl::StatusOr<crypto::CertificateRequest> csr = crypto::CertificateRequest::FromDer(req->csr());
  if (!csr.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(csr.status().message()));
  }
  if (csr->uri_sans().size() != 1) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "CSR must have exactly one URI SAN");
  }
  absl::StatusOr<spiffe::SpiffeId> id = spiffe::SpiffeId::FromString(csr->uri_sans()[0]);
  if (!id.ok()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(id.status().message()));
  }
  absl::Duration ttl = req->ttl() == 0 ? absl::Hours(1) : absl::Seconds(req->ttl());
  ttl = std::min(ttl, max_ttl_);

  crypto::CertificateTemplate t;
  t.serial = crypto::RandomSerial();
  t.subject = {{crypto::NameAttribute::kOrganization, "Sigil test"}};
  t.not_before = now_ - absl::Minutes(1);
  t.not_after = now_ + ttl;
  t.key_usage = crypto::kKeyUsageDigitalSignature | crypto::kKeyUsageKeyEncipherment;
  t.ext_key_usage = {crypto::ExtKeyUsage::kServerAuth, crypto::ExtKeyUsage::kClientAuth};
  t.uri_sans = {id->ToString()};
  absl::StatusOr<std::string> der = issuer_->IssueDer(t, csr->spki_der());
  if (!der.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, std::string(der.status().message()));

  types::X509SVID* svid = resp->mutable_svid();
  svid->add_cert_chain(*der);
  svid->mutable_id()->set_trust_domain(id->trust_domain().name());
  svid->mutable_id()->set_path(id->path());
  svid->set_expires_at(absl::ToUnixSeconds(t.not_after));
  return grpc::Status::OK;
}

FakeServer::FakeServer(absl::Time now)
    : FakeServer(now, spiffe::testing::MakeRootCa(
                          "example.org", spiffe::testing::TestKey(crypto::KeyType::kEcP256))) {}

FakeServer::FakeServer(absl::Time now, spiffe::testing::TestCa ca) : ca_(ca.cert) {
  socket_path_ = dir_.File("api.sock");

  svid = std::make_unique<FakeSvidService>(ca.cert, ca.issuer, now);
  types::Bundle b;
  b.set_trust_domain("example.org");
  b.add_x509_authorities()->set_asn1(ca.cert.der());
  bundle.get.Respond(b);

  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path_, grpc::InsecureServerCredentials());
  builder.RegisterService(&entry);
  builder.RegisterService(&agent);
  builder.RegisterService(&bundle);
  builder.RegisterService(svid.get());
  builder.RegisterService(&local_authority);
  builder.RegisterService(&health);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) ADD_FAILURE() << "cannot listen on " << socket_path_;
}

FakeServer::~FakeServer() {
  if (server_ != nullptr) server_->Shutdown();
}

}  // namespace sigil::server::cli::testing
