#pragma once

// Test-only harness for server_api_test: the Entry, Agent and Bundle
// services over a MemoryStore, served by a real grpc::Server on a Unix
// socket in a temporary directory, with an Authenticator fake whose caller
// the test chooses.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "server/api/agent/service.h"
#include "server/api/auth.h"
#include "server/api/bundle/service.h"
#include "server/api/entry/service.h"
#include "server/datastore/memory_store.h"
#include "server/store/store.h"
#include "server/store/test_util.h"
#include "tests/util/grpc_status.h"

namespace sigil::server::api::testing {

// Returns whatever caller (or error) the test set last. Thread-safe.
class FakeAuthenticator final : public Authenticator {
 public:
  void SetCaller(Caller caller) {
    absl::MutexLock lock(&mu_);
    result_ = std::move(caller);
  }
  void SetError(absl::Status error) {
    absl::MutexLock lock(&mu_);
    result_ = std::move(error);
  }
  absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase&) override {
    absl::MutexLock lock(&mu_);
    return result_;
  }

 private:
  absl::Mutex mu_;
  absl::StatusOr<Caller> result_ ABSL_GUARDED_BY(mu_) = Caller{};
};

inline Caller LocalCaller() {
  Caller c;
  c.local = true;
  return c;
}
inline Caller SvidCaller(const std::string& path, bool admin, bool agent, bool downstream) {
  Caller c;
  c.id = spiffe::SpiffeId::FromString("spiffe://example.org" + path).value();
  c.admin = admin;
  c.agent = agent;
  c.downstream = downstream;
  return c;
}
inline Caller AdminCaller() { return SvidCaller("/admin", true, false, false); }
inline Caller AgentCaller() { return SvidCaller("/spire/agent/join_token/a", false, true, false); }
inline Caller DownstreamCaller() { return SvidCaller("/downstream", false, false, true); }
inline Caller AnonymousCaller() { return Caller{}; }

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv_ = datastore::MemoryStore::Create().value();
    store_ = std::make_unique<Store>(kv_.get(), &clock_);
    entry_service_ = std::make_unique<EntryService>(store_.get(), &authn_, &clock_, td_);
    agent_service_ = std::make_unique<AgentService>(store_.get(), &authn_, &clock_, td_);
    bundle_service_ = std::make_unique<BundleService>(store_.get(), &authn_, &clock_, td_);
    dir_ = ::sigil::server::testing::MakeTempDir("api-test");
    const std::string address = "unix:" + dir_ + "/api.sock";
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
    builder.RegisterService(entry_service_.get());
    builder.RegisterService(agent_service_.get());
    builder.RegisterService(bundle_service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    entry_ = spire::api::server::entry::v1::Entry::NewStub(channel);
    agent_ = spire::api::server::agent::v1::Agent::NewStub(channel);
    bundle_ = spire::api::server::bundle::v1::Bundle::NewStub(channel);
    authn_.SetCaller(LocalCaller());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  // A bundle for `td` stored directly (so entries may federate with it).
  void StoreBundle(const std::string& td) {
    spire::api::types::Bundle b;
    b.set_trust_domain(td);
    ASSERT_TRUE(store_->SetBundle(b).ok());
  }

  FakeClock clock_;
  spiffe::TrustDomain td_ = spiffe::TrustDomain::FromString("example.org").value();
  std::unique_ptr<datastore::MemoryStore> kv_;
  std::unique_ptr<Store> store_;
  FakeAuthenticator authn_;
  std::unique_ptr<EntryService> entry_service_;
  std::unique_ptr<AgentService> agent_service_;
  std::unique_ptr<BundleService> bundle_service_;
  std::string dir_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<spire::api::server::entry::v1::Entry::Stub> entry_;
  std::unique_ptr<spire::api::server::agent::v1::Agent::Stub> agent_;
  std::unique_ptr<spire::api::server::bundle::v1::Bundle::Stub> bundle_;
};

// One RPC made with a fresh context, for authorization tables.
struct Rpc {
  std::string name;
  std::function<grpc::Status(grpc::ClientContext*)> call;
  uint32_t allowed;
};

// Calls every RPC as each kind of caller: allowed callers must get past
// authorization (any status but PERMISSION_DENIED), others must get
// PERMISSION_DENIED naming the method.
inline void CheckAuthorization(FakeAuthenticator* authn, const std::vector<Rpc>& rpcs) {
  struct Kind {
    const char* name;
    Caller caller;
    uint32_t bit;
  };
  const Kind kinds[] = {{"local", LocalCaller(), kAllowLocal},
                        {"admin", AdminCaller(), kAllowAdmin},
                        {"agent", AgentCaller(), kAllowAgent},
                        {"downstream", DownstreamCaller(), kAllowDownstream},
                        {"anonymous", AnonymousCaller(), 0}};
  for (const Rpc& rpc : rpcs) {
    for (const Kind& kind : kinds) {
      SCOPED_TRACE(rpc.name + " as " + kind.name);
      authn->SetCaller(kind.caller);
      grpc::ClientContext ctx;
      grpc::Status s = rpc.call(&ctx);
      bool allowed = (rpc.allowed & kAllowAny) != 0 || (rpc.allowed & kind.bit) != 0;
      if (allowed) {
        EXPECT_NE(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
      } else {
        ::sigil::testing::ExpectGrpcStatus(s, grpc::StatusCode::PERMISSION_DENIED,
                                           rpc.name + ": caller (");
      }
    }
  }
  authn->SetCaller(LocalCaller());
}

}  // namespace sigil::server::api::testing
