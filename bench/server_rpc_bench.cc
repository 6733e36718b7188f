// The server's hot paths end to end, in-process over its real listeners:
//  - BatchNewX509SVID from an attested agent over mutual TLS (1 and 50 SVIDs
//    per call): what every agent does to obtain and rotate workload SVIDs;
//  - MintX509SVID over the admin socket;
//  - entry create → the agent's WatchAuthorized stream delivering it.
// Run: build/bench/server_rpc_bench

#include <benchmark/benchmark.h>
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/server.h"
#include "sigil/agent/v1/sync.grpc.pb.h"
#include "spiffe/crypto/csr.h"
#include "spiffe/crypto/encoding.h"
#include "spire/api/server/agent/v1/agent.grpc.pb.h"
#include "spire/api/server/svid/v1/svid.grpc.pb.h"
#include "tests/util/process.h"
#include "spdlog/spdlog.h"
#include "tests/util/tls_channel.h"

namespace sigil::server {
namespace {

namespace agentv1 = spire::api::server::agent::v1;
namespace svidv1 = spire::api::server::svid::v1;

struct Fixture {
  std::unique_ptr<Server> server;
  std::string dir;
  std::shared_ptr<grpc::Channel> agent_channel;
  std::string agent_path;
  std::vector<std::string> entry_ids;
  std::string csr;

  Fixture() {
    dir = testing::MakeTempDir("sigil-bench");
    ServerSettings settings(spiffe::TrustDomain::FromString("example.org").value());
    settings.bind_address = "127.0.0.1";
    settings.bind_port = 0;
    settings.data_dir = dir + "/data";
    settings.datastore_path = dir + "/data/datastore";
    settings.keys_path = dir + "/data/keys.json";
    settings.socket_path = dir + "/api.sock";
    server = std::move(Server::Start(settings, RealClock::Get()).value());
    std::string roots = server->ca()->LocalBundle().X509AuthoritiesPem();
    std::string target = absl::StrCat("127.0.0.1:", server->tcp_port());

    // Attest one agent with a join token.
    JoinTokenRecord token;
    token.set_token("bench-token");
    token.set_expires_at(absl::ToUnixSeconds(absl::Now() + absl::Hours(1)));
    (void)server->store()->CreateJoinToken(token);
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    auto stub = agentv1::Agent::NewStub(testing::TlsChannel(target, roots));
    grpc::ClientContext ctx;
    auto stream = stub->AttestAgent(&ctx);
    agentv1::AttestAgentRequest req;
    req.mutable_params()->mutable_data()->set_type("join_token");
    req.mutable_params()->mutable_data()->set_payload("bench-token");
    req.mutable_params()->mutable_params()->set_csr(crypto::CreateCsrDer(key, {}, {}).value());
    stream->Write(req);
    stream->WritesDone();
    agentv1::AttestAgentResponse resp;
    stream->Read(&resp);
    (void)stream->Finish();
    std::vector<crypto::Certificate> chain;
    for (const auto& der : resp.result().svid().cert_chain()) chain.push_back(crypto::Certificate::FromDer(der).value());
    agent_channel = testing::TlsChannel(target, roots, crypto::ToPem(chain), key.ToPkcs8Pem());
    agent_path = resp.result().svid().id().path();

    for (int i = 0; i < 50; ++i) entry_ids.push_back(CreateEntry(absl::StrCat("/w/", i)));
    auto wkey = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    csr = crypto::CreateCsrDer(wkey, {}, {}).value();
    // Let the index catch up.
    absl::SleepFor(absl::Milliseconds(200));
  }

  std::string CreateEntry(const std::string& path) {
    spire::api::types::Entry e;
    e.mutable_spiffe_id()->set_trust_domain("example.org");
    e.mutable_spiffe_id()->set_path(path);
    e.mutable_parent_id()->set_trust_domain("example.org");
    e.mutable_parent_id()->set_path(agent_path);
    auto* s = e.add_selectors();
    s->set_type("unix");
    s->set_value(absl::StrCat("uid:", path.size()));
    return server->store()->CreateEntry(e).value().entry.id();
  }
};

Fixture& F() {
  static Fixture* f = new Fixture();
  return *f;
}

void BM_BatchNewX509Svid(benchmark::State& state) {
  Fixture& f = F();
  auto stub = svidv1::SVID::NewStub(f.agent_channel);
  svidv1::BatchNewX509SVIDRequest req;
  for (int i = 0; i < state.range(0); ++i) {
    auto* p = req.add_params();
    p->set_entry_id(f.entry_ids[i]);
    p->set_csr(f.csr);
  }
  for (auto _ : state) {
    grpc::ClientContext ctx;
    svidv1::BatchNewX509SVIDResponse resp;
    grpc::Status s = stub->BatchNewX509SVID(&ctx, req, &resp);
    if (!s.ok() || resp.results(0).status().code() != 0) {
      state.SkipWithError("BatchNewX509SVID failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetLabel("SVIDs");
}
BENCHMARK(BM_BatchNewX509Svid)->Arg(1)->Arg(50)->UseRealTime();

void BM_AdminMintX509Svid(benchmark::State& state) {
  Fixture& f = F();
  auto stub = svidv1::SVID::NewStub(
      grpc::CreateChannel("unix:" + f.dir + "/api.sock", grpc::InsecureChannelCredentials()));
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  svidv1::MintX509SVIDRequest req;
  req.set_csr(crypto::CreateCsrDer(key, {}, {"spiffe://example.org/minted"}).value());
  for (auto _ : state) {
    grpc::ClientContext ctx;
    svidv1::MintX509SVIDResponse resp;
    if (!stub->MintX509SVID(&ctx, req, &resp).ok()) {
      state.SkipWithError("MintX509SVID failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AdminMintX509Svid)->UseRealTime();

// Entry written to the datastore (fsync'd) → delta read from the agent's
// WatchAuthorized stream. Reports p50/p99 in microseconds.
void BM_EntryCreateToAgentPush(benchmark::State& state) {
  Fixture& f = F();
  auto stub = sigil::agent::v1::AgentSync::NewStub(f.agent_channel);
  grpc::ClientContext ctx;
  auto reader = stub->WatchAuthorized(&ctx, sigil::agent::v1::WatchAuthorizedRequest());
  sigil::agent::v1::WatchAuthorizedUpdate update;
  reader->Read(&update);  // the full state
  std::vector<double> us;
  int n = 0;
  for (auto _ : state) {
    absl::Time start = absl::Now();
    std::string id = f.CreateEntry(absl::StrCat("/push/", n++));
    bool seen = false;
    while (!seen && reader->Read(&update)) {
      for (const auto& e : update.upserted()) seen |= e.id() == id;
    }
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
  }
  ctx.TryCancel();
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
}
BENCHMARK(BM_EntryCreateToAgentPush)->Iterations(200)->UseRealTime();

int Threads() {
  std::string status = testing::ReadFileOrEmpty("/proc/self/status");
  size_t at = status.find("Threads:");
  return at == std::string::npos ? -1 : std::atoi(status.c_str() + at + 8);
}

long RssKb() {
  std::string status = testing::ReadFileOrEmpty("/proc/self/status");
  size_t at = status.find("VmRSS:");
  return at == std::string::npos ? -1 : std::atol(status.c_str() + at + 6);
}

// 1,000 agents' sync streams held by one server (opened here with one
// agent identity): threads and memory they cost, and how long one entry
// change takes to reach all of them.
void BM_ThousandSyncStreams(benchmark::State& state) {
  Fixture& f = F();
  constexpr int kStreams = 1000;
  for (auto _ : state) {
    const int threads_before = Threads();
    const long rss_before = RssKb();
    auto stub = sigil::agent::v1::AgentSync::NewStub(f.agent_channel);
    std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
    std::vector<std::unique_ptr<grpc::ClientReader<sigil::agent::v1::WatchAuthorizedUpdate>>> readers;
    sigil::agent::v1::WatchAuthorizedUpdate update;
    for (int i = 0; i < kStreams; ++i) {
      ctxs.push_back(std::make_unique<grpc::ClientContext>());
      readers.push_back(stub->WatchAuthorized(ctxs.back().get(), sigil::agent::v1::WatchAuthorizedRequest()));
      readers.back()->Read(&update);
    }
    state.counters["threads_added"] = Threads() - threads_before;
    state.counters["kB_per_stream"] = static_cast<double>(RssKb() - rss_before) / kStreams;
    absl::Time start = absl::Now();
    std::string id = f.CreateEntry(absl::StrCat("/fanout/", state.iterations()));
    for (auto& r : readers) {
      bool seen = false;
      while (!seen && r->Read(&update)) {
        for (const auto& e : update.upserted()) seen |= e.id() == id;
      }
    }
    state.counters["fanout_ms"] = absl::ToDoubleMilliseconds(absl::Now() - start);
    for (auto& c : ctxs) c->TryCancel();
    for (auto& r : readers) (void)r->Finish();
  }
}
BENCHMARK(BM_ThousandSyncStreams)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sigil::server

int main(int argc, char** argv) {
  // Per-call info logs would measure the terminal, not the server.
  spdlog::set_level(spdlog::level::warn);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
