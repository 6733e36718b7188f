// The whole server in-process, called over its real listeners: the admin
// Unix socket and the TLS port with and without client SVIDs. Every RPC rule
// is exercised both ways here (allowed and refused).

#include "server/server.h"

#include "attestors/node/x509pop/agent.h"
#include "common/file_util.h"

#include <grpcpp/create_channel.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sigil/agent/v1/sync.grpc.pb.h"
#include "spiffe/crypto/csr.h"
#include "spiffe/crypto/encoding.h"
#include "spiffe/crypto/x509_builder.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"
#include "spire/api/server/bundle/v1/bundle.grpc.pb.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"
#include "spire/api/server/svid/v1/svid.grpc.pb.h"
#include "tests/util/process.h"
#include "tests/util/tls_channel.h"

namespace sigil::server {
namespace {

namespace agentv1 = spire::api::server::agent::v1;
namespace entryv1 = spire::api::server::entry::v1;
namespace svidv1 = spire::api::server::svid::v1;
namespace bundlev1 = spire::api::server::bundle::v1;
using spire::api::types::Entry;
using ::testing::HasSubstr;

// A client identity: SVID chain and key as PEM.
struct Identity {
  std::string chain_pem;
  std::string key_pem;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("sigil-server-test");
    Start();
  }
  void TearDown() override { server_.reset(); }

  void Start() {
    ServerSettings settings(spiffe::TrustDomain::FromString("example.org").value());
    settings.bind_address = "127.0.0.1";
    settings.bind_port = 0;
    settings.data_dir = dir_ + "/data";
    settings.datastore_path = dir_ + "/data/datastore";
    settings.keys_path = dir_ + "/data/keys.json";
    settings.socket_path = dir_ + "/admin/api.sock";
    if (!x509pop_ca_path_.empty()) {
      config::X509PopServerData x;
      x.set_ca_bundle_path(x509pop_ca_path_);
      settings.x509pop = x;
    }
    auto server = Server::Start(settings, RealClock::Get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    target_ = absl::StrCat("127.0.0.1:", server_->tcp_port());
  }

  std::string RootsPem() { return server_->ca()->LocalBundle().X509AuthoritiesPem(); }

  std::shared_ptr<grpc::Channel> Admin() {
    return grpc::CreateChannel("unix:" + dir_ + "/admin/api.sock", grpc::InsecureChannelCredentials());
  }
  std::shared_ptr<grpc::Channel> Tcp(const Identity& id = {}) {
    return testing::TlsChannel(target_, RootsPem(), id.chain_pem, id.key_pem);
  }

  // An SVID minted directly by the CA (as if issued earlier).
  Identity Mint(const std::string& id) {
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    ca::X509SvidParams params(key.public_key().spki_der(), spiffe::SpiffeId::FromString(id).value());
    auto chain = server_->ca()->MintX509Svid(params).value();
    return Identity{crypto::ToPem(chain), key.ToPkcs8Pem()};
  }

  static spire::api::types::SPIFFEID Sid(const std::string& path) {
    spire::api::types::SPIFFEID id;
    id.set_trust_domain("example.org");
    id.set_path(path);
    return id;
  }

  Entry CreateEntry(const std::string& path, const std::string& parent, bool admin = false) {
    Entry e;
    *e.mutable_spiffe_id() = Sid(path);
    *e.mutable_parent_id() = Sid(parent);
    auto* s = e.add_selectors();
    s->set_type("unix");
    s->set_value("uid:1000");
    e.set_admin(admin);
    auto r = server_->store()->CreateEntry(e);
    EXPECT_TRUE(r.ok()) << r.status();
    return r->entry;
  }

  std::string CreateToken(absl::Duration ttl = absl::Minutes(10)) {
    JoinTokenRecord t;
    t.set_token(crypto::HexEncode(crypto::RandomBytes(8)));
    t.set_expires_at(absl::ToUnixSeconds(absl::Now() + ttl));
    EXPECT_TRUE(server_->store()->CreateJoinToken(t).ok());
    return t.token();
  }

  struct Attested {
    grpc::Status status;
    Identity identity;
    std::string agent_id;
  };

  // AttestAgent driven by an agent-side attestor, answering challenges.
  Attested AttestWith(attestors::node::AgentAttestor& agent) {
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    auto stub = agentv1::Agent::NewStub(Tcp());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = stub->AttestAgent(&ctx);
    agentv1::AttestAgentRequest req;
    req.mutable_params()->mutable_data()->set_type(agent.name());
    req.mutable_params()->mutable_data()->set_payload(agent.Payload().value());
    req.mutable_params()->mutable_params()->set_csr(crypto::CreateCsrDer(key, {}, {}).value());
    stream->Write(req);
    Attested out;
    agentv1::AttestAgentResponse resp;
    while (stream->Read(&resp)) {
      if (resp.has_result()) {
        out.agent_id = absl::StrCat("spiffe://", resp.result().svid().id().trust_domain(),
                                    resp.result().svid().id().path());
        break;
      }
      agentv1::AttestAgentRequest answer;
      answer.set_challenge_response(agent.Answer(resp.challenge()).value());
      stream->Write(answer);
    }
    stream->WritesDone();
    out.status = stream->Finish();
    return out;
  }

  Attested Attest(const std::string& type, const std::string& payload, bool with_csr = true) {
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    auto stub = agentv1::Agent::NewStub(Tcp());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = stub->AttestAgent(&ctx);
    agentv1::AttestAgentRequest req;
    req.mutable_params()->mutable_data()->set_type(type);
    req.mutable_params()->mutable_data()->set_payload(payload);
    if (with_csr) req.mutable_params()->mutable_params()->set_csr(crypto::CreateCsrDer(key, {}, {}).value());
    stream->Write(req);
    stream->WritesDone();
    agentv1::AttestAgentResponse resp;
    Attested out;
    if (stream->Read(&resp) && resp.has_result()) {
      std::vector<crypto::Certificate> chain;
      for (const auto& der : resp.result().svid().cert_chain()) chain.push_back(crypto::Certificate::FromDer(der).value());
      out.identity = Identity{crypto::ToPem(chain), key.ToPkcs8Pem()};
      out.agent_id = absl::StrCat("spiffe://", resp.result().svid().id().trust_domain(), resp.result().svid().id().path());
    }
    out.status = stream->Finish();
    return out;
  }

  grpc::Status ListEntries(std::shared_ptr<grpc::Channel> ch) {
    auto stub = entryv1::Entry::NewStub(ch);
    grpc::ClientContext ctx;
    entryv1::ListEntriesRequest req;
    entryv1::ListEntriesResponse resp;
    return stub->ListEntries(&ctx, req, &resp);
  }

  grpc::Status NewX509(std::shared_ptr<grpc::Channel> ch, const std::string& entry_id,
                       svidv1::BatchNewX509SVIDResponse* resp) {
    auto stub = svidv1::SVID::NewStub(ch);
    grpc::ClientContext ctx;
    svidv1::BatchNewX509SVIDRequest req;
    auto* p = req.add_params();
    p->set_entry_id(entry_id);
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    p->set_csr(crypto::CreateCsrDer(key, {}, {}).value());
    return stub->BatchNewX509SVID(&ctx, req, resp);
  }

  std::string dir_;
  std::string x509pop_ca_path_;
  std::unique_ptr<Server> server_;
  std::string target_;
};

TEST_F(ServerTest, AnonymousTcpCallerMayOnlyFetchTheBundleAndAttest) {
  auto stub = bundlev1::Bundle::NewStub(Tcp());
  grpc::ClientContext ctx;
  spire::api::types::Bundle bundle;
  ASSERT_TRUE(stub->GetBundle(&ctx, bundlev1::GetBundleRequest(), &bundle).ok());
  EXPECT_EQ(bundle.trust_domain(), "example.org");
  EXPECT_GE(bundle.x509_authorities_size(), 1);

  grpc::Status s = ListEntries(Tcp());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("requires a local caller or an admin X509-SVID"));
  svidv1::BatchNewX509SVIDResponse resp;
  EXPECT_EQ(NewX509(Tcp(), "x", &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ServerTest, LocalCallerIsAdmin) {
  EXPECT_TRUE(ListEntries(Admin()).ok());
  // ...but not an agent.
  svidv1::BatchNewX509SVIDResponse resp;
  EXPECT_EQ(NewX509(Admin(), "x", &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ServerTest, AdminSvidIsAdminAndNonAdminSvidIsNot) {
  CreateEntry("/ops/admin", "/spire/agent/x/1", /*admin=*/true);
  CreateEntry("/ops/user", "/spire/agent/x/1", /*admin=*/false);
  // The entry index learns of the new entries through the change feed.
  ASSERT_TRUE(testing::WaitFor([&] { return ListEntries(Tcp(Mint("spiffe://example.org/ops/admin"))).ok(); },
                               absl::Seconds(10)));
  grpc::Status s = ListEntries(Tcp(Mint("spiffe://example.org/ops/user")));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ServerTest, SvidFromAnotherCaIsAnonymous) {
  CreateEntry("/ops/admin", "/spire/agent/x/1", /*admin=*/true);
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  crypto::CertificateTemplate tmpl;
  tmpl.serial = crypto::RandomSerial();
  tmpl.not_before = absl::Now() - absl::Minutes(1);
  tmpl.not_after = absl::Now() + absl::Hours(1);
  tmpl.key_usage = crypto::kKeyUsageDigitalSignature;
  tmpl.uri_sans = {"spiffe://example.org/ops/admin"};
  auto forged = crypto::SelfSign(tmpl, key).value();
  grpc::Status s = ListEntries(Tcp(Identity{forged.ToPem(), key.ToPkcs8Pem()}));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ServerTest, JoinTokenAttestationAndItsRefusals) {
  std::string token = CreateToken();
  Attested a = Attest("join_token", token);
  ASSERT_TRUE(a.status.ok()) << a.status.error_message();
  EXPECT_EQ(a.agent_id, "spiffe://example.org/spire/agent/join_token/" + token);

  Attested reused = Attest("join_token", token);
  EXPECT_EQ(reused.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(reused.status.error_message(), HasSubstr("does not exist or has already been used"));

  Attested expired = Attest("join_token", CreateToken(-absl::Seconds(1)));
  EXPECT_EQ(expired.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(expired.status.error_message(), HasSubstr("expired"));

  Attested unknown = Attest("tpm", "x");
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(unknown.status.error_message(), HasSubstr("\"tpm\" is not configured"));

  Attested no_csr = Attest("join_token", CreateToken(), /*with_csr=*/false);
  EXPECT_EQ(no_csr.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(no_csr.status.error_message(), HasSubstr("missing CSR"));
}

// A node PKI the test owns: a CA, and node certificates from it or from an
// unrelated CA.
crypto::Certificate NodeCa(const crypto::PrivateKey& ca_key) {
  crypto::CertificateTemplate t;
  t.serial = crypto::RandomSerial();
  t.subject = {{crypto::NameAttribute::kCommonName, "node ca"}};
  t.not_before = absl::Now() - absl::Minutes(1);
  t.not_after = absl::Now() + absl::Hours(1);
  t.is_ca = true;
  t.key_usage = crypto::kKeyUsageKeyCertSign | crypto::kKeyUsageCrlSign;
  return crypto::SelfSign(t, ca_key).value();
}

struct NodePki {
  crypto::PrivateKey ca_key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  crypto::Certificate ca = NodeCa(ca_key);
  // Writes a node key + certificate into `dir` and returns the agent config.
  attestors::node::x509pop::AgentConfig Node(const std::string& dir, const std::string& cn) {
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    crypto::CertificateTemplate t;
    t.serial = crypto::RandomSerial();
    t.subject = {{crypto::NameAttribute::kCommonName, cn}};
    t.not_before = absl::Now() - absl::Minutes(1);
    t.not_after = absl::Now() + absl::Hours(1);
    t.key_usage = crypto::kKeyUsageDigitalSignature;
    auto cert = crypto::CertificateIssuer::Create(ca, ca_key).value()->Issue(t, key.public_key().spki_der()).value();
    attestors::node::x509pop::AgentConfig c;
    c.private_key_path = dir + "/" + cn + ".key";
    c.certificate_path = dir + "/" + cn + ".pem";
    EXPECT_TRUE(WriteFileAtomic(c.private_key_path, key.ToPkcs8Pem(), 0600).ok());
    EXPECT_TRUE(WriteFileAtomic(c.certificate_path, cert.ToPem(), 0644).ok());
    return c;
  }
};

TEST_F(ServerTest, X509PopAttestationThroughTheStreamAndItsRefusals) {
  NodePki trusted, untrusted;
  x509pop_ca_path_ = dir_ + "/node-ca.pem";
  ASSERT_TRUE(WriteFileAtomic(x509pop_ca_path_, trusted.ca.ToPem(), 0644).ok());
  server_.reset();
  Start();

  auto agent = attestors::node::x509pop::X509PopAgentAttestor::Create(trusted.Node(dir_, "node-1")).value();
  Attested a = AttestWith(*agent);
  ASSERT_TRUE(a.status.ok()) << a.status.error_message();
  EXPECT_THAT(a.agent_id, ::testing::StartsWith("spiffe://example.org/spire/agent/x509pop/"));
  auto stored = server_->store()->GetAgent(a.agent_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->record.agent().can_reattest());
  bool has_cn = false;
  for (const auto& s : stored->record.agent().selectors()) has_cn |= s.value() == "subject:cn:node-1";
  EXPECT_TRUE(has_cn);
  // The evidence is reusable: the same node attests again.
  EXPECT_TRUE(AttestWith(*agent).status.ok());

  auto stranger = attestors::node::x509pop::X509PopAgentAttestor::Create(untrusted.Node(dir_, "node-2")).value();
  Attested refused = AttestWith(*stranger);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("nodeattestor(x509pop)"));
}

TEST_F(ServerTest, AgentGetsSvidsOnlyForItsOwnEntries) {
  Attested a = Attest("join_token", CreateToken());
  Attested b = Attest("join_token", CreateToken());
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  std::string a_path = a.agent_id.substr(std::string("spiffe://example.org").size());
  std::string b_path = b.agent_id.substr(std::string("spiffe://example.org").size());
  Entry mine = CreateEntry("/web", a_path);
  Entry theirs = CreateEntry("/db", b_path);

  svidv1::BatchNewX509SVIDResponse resp;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        resp.Clear();
        return NewX509(Tcp(a.identity), mine.id(), &resp).ok() && resp.results(0).status().code() == 0;
      },
      absl::Seconds(10)));
  auto chain = crypto::Certificate::ParseDerChain(resp.results(0).svid().cert_chain(0)).value();
  EXPECT_EQ(chain[0].uri_sans()[0], "spiffe://example.org/web");

  resp.Clear();
  ASSERT_TRUE(NewX509(Tcp(a.identity), theirs.id(), &resp).ok());
  EXPECT_EQ(resp.results(0).status().code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_THAT(resp.results(0).status().message(), HasSubstr("not authorized for this agent"));

  // An agent is not an admin.
  EXPECT_EQ(ListEntries(Tcp(a.identity)).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ServerTest, BannedAndEvictedAgentsAreRefused) {
  Attested a = Attest("join_token", CreateToken());
  Attested b = Attest("join_token", CreateToken());
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  svidv1::BatchNewX509SVIDResponse resp;
  ASSERT_TRUE(NewX509(Tcp(a.identity), "none", &resp).ok());

  ASSERT_TRUE(server_->store()->BanAgent(a.agent_id).ok());
  grpc::Status s = NewX509(Tcp(a.identity), "none", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("is banned"));

  ASSERT_TRUE(server_->store()->DeleteAgent(b.agent_id).ok());
  s = NewX509(Tcp(b.identity), "none", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("not attested"));
}

TEST_F(ServerTest, RenewedSvidReplacesTheOldOneOnFirstUse) {
  Attested a = Attest("join_token", CreateToken());
  ASSERT_TRUE(a.status.ok());
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  agentv1::RenewAgentRequest req;
  req.mutable_params()->set_csr(crypto::CreateCsrDer(key, {}, {}).value());
  agentv1::RenewAgentResponse resp;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(agentv1::Agent::NewStub(Tcp(a.identity))->RenewAgent(&ctx, req, &resp).ok());
  }
  std::vector<crypto::Certificate> chain;
  for (const auto& der : resp.svid().cert_chain()) chain.push_back(crypto::Certificate::FromDer(der).value());
  Identity renewed{crypto::ToPem(chain), key.ToPkcs8Pem()};

  svidv1::BatchNewX509SVIDResponse out;
  // Until the new SVID is used, the old one still works.
  EXPECT_TRUE(NewX509(Tcp(a.identity), "none", &out).ok());
  EXPECT_TRUE(NewX509(Tcp(renewed), "none", &out).ok());
  grpc::Status s = NewX509(Tcp(a.identity), "none", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("not its active one"));
}

TEST_F(ServerTest, WatchAuthorizedPushesChangesAsTheyHappen) {
  Attested a = Attest("join_token", CreateToken());
  ASSERT_TRUE(a.status.ok());
  std::string a_path = a.agent_id.substr(std::string("spiffe://example.org").size());
  Entry first = CreateEntry("/one", a_path);

  auto stub = sigil::agent::v1::AgentSync::NewStub(Tcp(a.identity));
  grpc::ClientContext ctx;
  auto reader = stub->WatchAuthorized(&ctx, sigil::agent::v1::WatchAuthorizedRequest());
  sigil::agent::v1::WatchAuthorizedUpdate update;
  // The first message is the whole state (the index may see `first` a
  // moment after it was written, so allow one extra delta).
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_TRUE(update.full());
  EXPECT_EQ(update.bundle().trust_domain(), "example.org");
  if (update.upserted_size() == 0) ASSERT_TRUE(reader->Read(&update));
  ASSERT_EQ(update.upserted_size(), 1);
  EXPECT_EQ(update.upserted(0).id(), first.id());

  absl::Time created = absl::Now();
  Entry second = CreateEntry("/two", a_path);
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_LT(absl::Now() - created, absl::Seconds(1));
  EXPECT_FALSE(update.full());
  ASSERT_EQ(update.upserted_size(), 1);
  EXPECT_EQ(update.upserted(0).id(), second.id());

  ASSERT_TRUE(server_->store()->DeleteEntry(first.id()).ok());
  ASSERT_TRUE(reader->Read(&update));
  ASSERT_EQ(update.removed_entry_ids_size(), 1);
  EXPECT_EQ(update.removed_entry_ids(0), first.id());

  // Banning the agent ends its stream.
  ASSERT_TRUE(server_->store()->BanAgent(a.agent_id).ok());
  while (reader->Read(&update)) {
  }
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ServerTest, WatchAuthorizedAnnouncesTheActiveCaAndItsRotation) {
  Attested a = Attest("join_token", CreateToken());
  ASSERT_TRUE(a.status.ok());
  auto stub = sigil::agent::v1::AgentSync::NewStub(Tcp(a.identity));
  grpc::ClientContext ctx;
  auto reader = stub->WatchAuthorized(&ctx, sigil::agent::v1::WatchAuthorizedRequest());
  sigil::agent::v1::WatchAuthorizedUpdate update;
  ASSERT_TRUE(reader->Read(&update));
  const std::string first = server_->ca()->GetX509AuthorityStates().active->authority_id;
  EXPECT_EQ(update.active_x509_authority_id(), first);

  auto prepared = server_->ca()->PrepareX509Authority();
  ASSERT_TRUE(prepared.ok());
  // Preparing publishes the new CA in the bundle; the active one is unchanged.
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_GT(update.bundle().x509_authorities_size(), 1);
  EXPECT_EQ(update.active_x509_authority_id(), "");
  ASSERT_TRUE(server_->ca()->ActivateX509Authority(prepared->authority_id).ok());
  do {
    ASSERT_TRUE(reader->Read(&update));
  } while (update.active_x509_authority_id().empty());
  EXPECT_EQ(update.active_x509_authority_id(), prepared->authority_id);
  EXPECT_NE(update.active_x509_authority_id(), first);
  ctx.TryCancel();
}

TEST_F(ServerTest, StateAndCaSurviveRestart) {
  Entry e = CreateEntry("/keep", "/spire/agent/x/1");
  std::string bundle_before = server_->ca()->LocalBundle().ToSpiffeJson();
  server_->Shutdown();
  server_.reset();
  Start();
  EXPECT_TRUE(server_->store()->GetEntry(e.id()).ok());
  EXPECT_EQ(server_->ca()->LocalBundle().ToSpiffeJson(), bundle_before);
}

TEST_F(ServerTest, SecondServerOnTheSameDataDirIsRefused) {
  ServerSettings settings(spiffe::TrustDomain::FromString("example.org").value());
  settings.bind_port = 0;
  settings.data_dir = dir_ + "/data";
  settings.datastore_path = dir_ + "/data/datastore";
  settings.keys_path = dir_ + "/data/keys.json";
  settings.socket_path = dir_ + "/other.sock";
  auto second = Server::Start(settings, RealClock::Get());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("in use by another sigil-server"));
}

}  // namespace
}  // namespace sigil::server
