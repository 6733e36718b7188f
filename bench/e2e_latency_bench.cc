// Entry created on the server → the workload's FetchX509SVID stream
// delivering the new SVID, with the real binaries: sigil-server and
// sigil-agent are started from build/bin (or $SIGIL_BIN_DIR), this process
// is the workload. Each iteration creates one entry for this process's uid
// through the admin API (BatchCreateEntry over the admin socket) and waits
// for the stream to carry its SPIFFE ID. The path covered: fsync'd write,
// change feed, entry index, push to the agent, BatchNewX509SVID round trip
// (CSR, minting, verification), the agent's cache, the workload stream.
// Goal: p99 under 1 s.
// Run: build/bench/e2e_latency_bench

#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "spire/api/server/entry/v1/entry.grpc.pb.h"
#include "tests/util/process.h"
#include "workload.grpc.pb.h"

namespace {

namespace entryv1 = spire::api::server::entry::v1;
using sigil::testing::BinDir;
using sigil::testing::Process;
using sigil::testing::RunCommand;
using sigil::testing::WaitFor;

struct Deployment {
  std::string dir = sigil::testing::MakeTempDir("sigil-e2e-bench");
  std::string server_sock = dir + "/server.sock";
  std::string agent_sock = dir + "/agent/api.sock";
  std::unique_ptr<Process> server, agent;
  std::unique_ptr<entryv1::Entry::Stub> entries;

  Deployment() {
    int port = sigil::testing::FreePort();
    server = std::make_unique<Process>(
        std::vector<std::string>{BinDir() + "/sigil-server", "run", "-trustDomain", "example.org", "-dataDir",
                                 dir + "/server", "-socketPath", server_sock, "-bindAddress", "127.0.0.1",
                                 "-serverPort", std::to_string(port), "-logLevel", "WARN"},
        dir + "/server.log");
    auto cli = [&](std::vector<std::string> args) {
      args.insert(args.begin(), BinDir() + "/sigil-server");
      args.insert(args.end(), {"-socketPath", server_sock});
      return RunCommand(args);
    };
    WaitFor([&] { return cli({"healthcheck"}).exit_code == 0; }, absl::Seconds(30),
            sigil::testing::kCommandPollInterval);
    std::string out = cli({"token", "generate", "-spiffeID", "spiffe://example.org/node"}).out;
    std::string token = out.substr(out.find("Token: ") + 7);
    token.erase(token.find_last_not_of("\n") + 1);
    sigil::testing::WriteTestFile(dir + "/bundle.pem", cli({"bundle", "show"}).out);
    agent = std::make_unique<Process>(
        std::vector<std::string>{BinDir() + "/sigil-agent", "run", "-trustDomain", "example.org", "-serverAddress",
                                 "127.0.0.1", "-serverPort", std::to_string(port), "-dataDir", dir + "/agent/data",
                                 "-socketPath", agent_sock, "-joinToken", token, "-trustBundle",
                                 dir + "/bundle.pem", "-logLevel", "WARN"},
        dir + "/agent.log");
    WaitFor(
        [&] {
          return RunCommand({BinDir() + "/sigil-agent", "healthcheck", "-socketPath", agent_sock}).exit_code == 0;
        },
        absl::Seconds(30), sigil::testing::kCommandPollInterval);
    entries = entryv1::Entry::NewStub(grpc::CreateChannel("unix:" + server_sock, grpc::InsecureChannelCredentials()));
  }

  ~Deployment() {
    agent->Stop(SIGTERM);
    server->Stop(SIGTERM);
  }

  void CreateEntry(const std::string& path) {
    entryv1::BatchCreateEntryRequest req;
    auto* e = req.add_entries();
    e->mutable_spiffe_id()->set_trust_domain("example.org");
    e->mutable_spiffe_id()->set_path(path);
    e->mutable_parent_id()->set_trust_domain("example.org");
    e->mutable_parent_id()->set_path("/node");
    auto* s = e->add_selectors();
    s->set_type("unix");
    s->set_value(absl::StrCat("uid:", ::getuid()));
    grpc::ClientContext ctx;
    entryv1::BatchCreateEntryResponse resp;
    entries->BatchCreateEntry(&ctx, req, &resp);
  }
};

void BM_EntryCreateToWorkloadSvid(benchmark::State& state) {
  Deployment d;
  d.CreateEntry("/first");  // the stream needs one identity to open
  auto stub = SpiffeWorkloadAPI::NewStub(grpc::CreateChannel("unix:" + d.agent_sock, grpc::InsecureChannelCredentials()));
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReader<X509SVIDResponse>> reader;
  X509SVIDResponse resp;
  bool open = WaitFor(
      [&] {
        ctx = std::make_unique<grpc::ClientContext>();
        ctx->AddMetadata("workload.spiffe.io", "true");
        reader = stub->FetchX509SVID(ctx.get(), X509SVIDRequest());
        return reader->Read(&resp);
      },
      absl::Seconds(30), sigil::testing::kCommandPollInterval);
  if (!open) {
    state.SkipWithError("the workload stream did not open");
    return;
  }
  std::vector<double> ms;
  int n = 0;
  for (auto _ : state) {
    std::string id = absl::StrCat("spiffe://example.org/e2e/", n);
    absl::Time start = absl::Now();
    d.CreateEntry(absl::StrCat("/e2e/", n++));
    bool seen = false;
    while (!seen && reader->Read(&resp)) {
      for (const auto& s : resp.svids()) seen |= s.spiffe_id() == id;
    }
    if (!seen) {
      state.SkipWithError("the stream ended");
      break;
    }
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  ctx->TryCancel();
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  state.counters["p50_ms"] = ms[ms.size() / 2];
  state.counters["p99_ms"] = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  state.counters["max_ms"] = ms.back();
}
BENCHMARK(BM_EntryCreateToWorkloadSvid)->Iterations(300)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
