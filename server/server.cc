#include "server/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "attestors/node/join_token/server.h"
#include "attestors/node/x509pop/server.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "server/api/agent/service.h"
#include "server/api/authenticator.h"
#include "server/api/bundle/service.h"
#include "server/api/debug/service.h"
#include "server/api/entry/service.h"
#include "server/api/localauthority/service.h"
#include "server/api/svid/service.h"
#include "server/api/sync/service.h"
#include "server/datastore/rocksdb_store.h"
#include "spdlog/spdlog.h"

namespace sigil::server {
namespace {

constexpr absl::Duration kRotationInterval = absl::Seconds(1);
constexpr absl::Duration kTokenPruneInterval = absl::Minutes(1);
// How often the TLS stack re-reads the server SVID files.
constexpr int kSvidReloadSeconds = 1;

// Agent service with node attestation: the admin RPCs come from
// api::AgentService, AttestAgent and RenewAgent are served here.
class AgentServiceWithAttestation final : public api::AgentService {
 public:
  AgentServiceWithAttestation(Store* store, api::Authenticator* authn, const Clock* clock,
                              const spiffe::TrustDomain& td, NodeAttestation* attestation)
      : api::AgentService(store, authn, clock, td), authn_(authn), attestation_(attestation) {}

  // spire::api::server::agent::v1::Agent::Service
  grpc::Status AttestAgent(grpc::ServerContext* ctx,
                           grpc::ServerReaderWriter<spire::api::server::agent::v1::AttestAgentResponse,
                                                    spire::api::server::agent::v1::AttestAgentRequest>* stream)
      override {
    return api::ToGrpc(attestation_->Attest(stream));
  }

  grpc::Status RenewAgent(grpc::ServerContext* ctx, const spire::api::server::agent::v1::RenewAgentRequest* req,
                          spire::api::server::agent::v1::RenewAgentResponse* resp) override {
    auto caller = api::Authenticate(authn_, *ctx, api::kAllowAgent, "RenewAgent");
    if (!caller.ok()) return api::ToGrpc(caller.status());
    auto svid = attestation_->Renew(*caller, *req);
    if (!svid.ok()) return api::ToGrpc(svid.status());
    *resp->mutable_svid() = std::move(*svid);
    return grpc::Status::OK;
  }

 private:
  api::Authenticator* const authn_;
  NodeAttestation* const attestation_;
};

// Blocks until the rotation loop should stop or `d` has passed.
bool WaitForStop(absl::Mutex* mu, bool* stopping, absl::Duration d) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  absl::MutexLock lock(mu);
  mu->AwaitWithTimeout(absl::Condition(stopping), d);
  return *stopping;
}

}  // namespace

Server::Server(const ServerSettings& settings, const Clock* clock)
    : settings_(settings), clock_(clock), started_(clock->Now()) {}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerSettings& settings, const Clock* clock) {
  std::unique_ptr<Server> server(new Server(settings, clock));
  absl::Status s = server->Init();
  if (!s.ok()) {
    server->Shutdown(absl::ZeroDuration());
    return s;
  }
  return server;
}

absl::Status Server::PrepareSocketPath() {
  const std::string& path = settings_.socket_path;
  std::string dir = DirName(path);
  SIGIL_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("socket directory ", dir, ": ", std::strerror(errno)));
  }
  // Anyone who can write to the directory could swap the socket for their
  // own and impersonate the server to local admins.
  if (st.st_uid != ::geteuid() || (st.st_mode & 0022) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket directory ", dir, " must be owned by this user and not writable by group or others"));
  }
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat("socket_path ", path, " exists and is not a socket"));
    }
    // A socket someone still answers on belongs to a running server.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    bool live = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (fd >= 0) ::close(fd);
    if (live) {
      return absl::FailedPreconditionError(
          absl::StrCat("socket_path ", path, " is in use by another running server"));
    }
    ::unlink(path.c_str());
  }
  return absl::OkStatus();
}

absl::Status Server::Init() {
  const spiffe::TrustDomain& td = settings_.trust_domain;
  SIGIL_RETURN_IF_ERROR(MakeDirs(settings_.data_dir, 0700));
  ::chmod(settings_.data_dir.c_str(), 0700);

  datastore::RocksDbStoreOptions kv_options;
  SIGIL_ASSIGN_OR_RETURN(kv_, datastore::RocksDbStore::Open(settings_.datastore_path, kv_options));
  store_ = std::make_unique<Store>(kv_.get(), clock_);
  publisher_ = std::make_unique<LocalBundlePublisher>(store_.get(), td);
  publisher_->set_refresh_hint(settings_.refresh_hint);

  if (settings_.key_manager == "memory") {
    keys_ = std::make_unique<ca::MemoryKeyManager>();
  } else {
    SIGIL_ASSIGN_OR_RETURN(keys_, ca::DiskKeyManager::Create(settings_.keys_path));
  }
  if (settings_.upstream_disk.has_value()) {
    const auto& u = *settings_.upstream_disk;
    SIGIL_ASSIGN_OR_RETURN(upstream_, ca::DiskUpstreamAuthority::Create(u.cert_file_path, u.key_file_path,
                                                                         u.bundle_file_path, clock_->Now()));
  }
  SIGIL_ASSIGN_OR_RETURN(ca_, ca::CaManager::Create(settings_.ca, keys_.get(), upstream_.get(), store_.get(),
                                                    publisher_.get(), clock_));
  SIGIL_ASSIGN_OR_RETURN(index_, EntryIndex::Create(kv_.get(), td));
  server_svid_ = std::make_unique<ServerSvid>(ca_.get(), settings_.data_dir, settings_.ca.default_x509_svid_ttl,
                                              clock_);
  SIGIL_RETURN_IF_ERROR(server_svid_->Rotate());

  std::vector<std::unique_ptr<attestors::node::ServerAttestor>> attestors;
  token_adapter_ = std::make_unique<StoreTokenAdapter>(store_.get());
  if (settings_.join_token_enabled) {
    attestors.push_back(
        std::make_unique<attestors::node::join_token::JoinTokenServerAttestor>(td, token_adapter_.get()));
  }
  if (settings_.x509pop.has_value()) {
    attestors::node::x509pop::ServerConfig x;
    x.ca_bundle_path = settings_.x509pop->ca_bundle_path();
    x.ca_bundle_paths.assign(settings_.x509pop->ca_bundle_paths().begin(), settings_.x509pop->ca_bundle_paths().end());
    x.agent_path_template = settings_.x509pop->agent_path_template();
    SIGIL_ASSIGN_OR_RETURN(auto x509pop, attestors::node::x509pop::X509PopServerAttestor::Create(td, x, clock_));
    attestors.push_back(std::move(x509pop));
  }
  SIGIL_ASSIGN_OR_RETURN(attestors_, attestors::node::ServerAttestorRegistry::Create(std::move(attestors)));
  attestation_ = std::make_unique<NodeAttestation>(store_.get(), ca_.get(), attestors_.get(),
                                                   settings_.agent_ttl, clock_);
  authn_ = std::make_unique<api::ServerAuthenticator>(store_.get(), index_.get(), ca_.get(), clock_);

  services_.push_back(
      std::make_unique<api::EntryServiceWithAuthorized>(store_.get(), authn_.get(), clock_, td, index_.get()));
  auto sync = std::make_unique<api::AgentSyncService>(index_.get(), store_.get(), authn_.get(), ca_.get(), td);
  sync_service_ = sync.get();
  services_.push_back(std::move(sync));
  services_.push_back(std::make_unique<AgentServiceWithAttestation>(store_.get(), authn_.get(), clock_, td,
                                                                    attestation_.get()));
  services_.push_back(std::make_unique<api::BundleService>(store_.get(), authn_.get(), clock_, td));
  services_.push_back(std::make_unique<api::SvidService>(ca_.get(), index_.get(), authn_.get(), clock_));
  services_.push_back(std::make_unique<api::LocalAuthorityService>(ca_.get(), authn_.get()));
  services_.push_back(std::make_unique<api::DebugService>(store_.get(), server_svid_.get(), authn_.get(), clock_,
                                                          started_));

  SIGIL_RETURN_IF_ERROR(PrepareSocketPath());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", settings_.socket_path), grpc::InsecureServerCredentials());
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      server_svid_->key_path(), server_svid_->cert_path(), kSvidReloadSeconds);
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  // Client certificates are optional (AttestAgent has none yet) and verified
  // per RPC by the Authenticator against the current bundle.
  tls.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  std::string address = settings_.bind_address.find(':') != std::string::npos
                            ? absl::StrCat("[", settings_.bind_address, "]:", settings_.bind_port)
                            : absl::StrCat(settings_.bind_address, ":", settings_.bind_port);
  builder.AddListeningPort(address, grpc::experimental::TlsServerCredentials(tls), &tcp_port_);
  for (auto& svc : services_) builder.RegisterService(svc.get());
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || tcp_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, " and unix:", settings_.socket_path,
                                               " (address in use or not permitted?)"));
  }
  ::chmod(settings_.socket_path.c_str(), 0770);
  spdlog::info("sigil-server serving trust domain {}: admin socket {}, agents on {}:{}", td.name(),
               settings_.socket_path, settings_.bind_address, tcp_port_);
  rotation_thread_ = std::thread([this] { RotationLoop(); });
  return absl::OkStatus();
}

void Server::RotationLoop() {
  absl::Time next_prune = clock_->Now();
  while (!WaitForStop(&mu_, &stopping_, kRotationInterval)) {
    if (absl::Status s = ca_->Rotate(); !s.ok()) spdlog::error("CA rotation: {}", s.ToString());
    if (absl::Status s = server_svid_->RotateIfDue(); !s.ok()) spdlog::error("server SVID rotation: {}", s.ToString());
    if (clock_->Now() >= next_prune) {
      next_prune = clock_->Now() + kTokenPruneInterval;
      auto pruned = store_->PruneJoinTokens();
      if (!pruned.ok()) {
        spdlog::error("join token pruning: {}", pruned.status().ToString());
      } else if (*pruned > 0) {
        spdlog::info("pruned {} expired join tokens", *pruned);
      }
    }
  }
}

void Server::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&stopped_));
}

void Server::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  const bool served = grpc_server_ != nullptr;
  if (sync_service_ != nullptr) sync_service_->EndAll();
  if (served) {
    // Running calls get `grace`, then are cancelled; the server object goes
    // before the services it dispatches to, and they before the index
    // their streams are subscribed to.
    grpc_server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoSeconds(grace));
    grpc_server_->Wait();
    grpc_server_.reset();
  }
  services_.clear();
  if (rotation_thread_.joinable()) rotation_thread_.join();
  index_.reset();
  if (kv_) {
    absl::Status s = kv_->Close();
    if (!s.ok()) spdlog::error("closing the datastore: {}", s.ToString());
  }
  if (!settings_.socket_path.empty() && served) ::unlink(settings_.socket_path.c_str());
  spdlog::info("sigil-server stopped");
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

}  // namespace sigil::server
