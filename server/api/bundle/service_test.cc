#include "server/api/bundle/service.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/api/api_test_util.h"

namespace sigil::server::api {
namespace {

namespace types = ::spire::api::types;
namespace v1 = ::spire::api::server::bundle::v1;
using ::sigil::server::api::testing::ApiTest;
using ::sigil::server::api::testing::CheckAuthorization;
using ::sigil::server::api::testing::Rpc;
using ::sigil::server::testing::MakeCaCert;
using ::sigil::server::testing::MakeEntry;
using ::sigil::server::testing::MakeJwtKey;
using ::sigil::testing::ExpectGrpcStatus;
using ::testing::ElementsAre;
using ::testing::SizeIs;

class BundleServiceTest : public ApiTest {
 protected:
  std::string CaDer() {
    return MakeCaCert(clock_.Now() - absl::Hours(1), clock_.Now() + absl::Hours(24)).der();
  }
  void PublishOwnBundle() {
    types::Bundle own;
    own.set_trust_domain("example.org");
    own.add_x509_authorities()->set_asn1(CaDer());
    own.set_sequence_number(1);
    ASSERT_TRUE(store_->SetBundle(own).ok());
  }
  types::Bundle Federated(const std::string& td) {
    types::Bundle b;
    b.set_trust_domain(td);
    b.add_x509_authorities()->set_asn1(CaDer());
    *b.add_jwt_authorities() = MakeJwtKey("fk");
    b.set_refresh_hint(300);
    b.set_sequence_number(7);
    return b;
  }
  v1::BatchCreateFederatedBundleResponse CreateFederated(const std::vector<types::Bundle>& bundles) {
    v1::BatchCreateFederatedBundleRequest req;
    for (const auto& b : bundles) *req.add_bundle() = b;
    v1::BatchCreateFederatedBundleResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = bundle_->BatchCreateFederatedBundle(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
};

TEST_F(BundleServiceTest, GetBundleIsOpenToAnyoneAndHonoursMask) {
  types::Bundle resp;
  {
    grpc::ClientContext ctx;
    ExpectGrpcStatus(bundle_->GetBundle(&ctx, {}, &resp), grpc::StatusCode::NOT_FOUND,
                     "bundle not found");
  }
  PublishOwnBundle();
  authn_.SetCaller(::sigil::server::api::testing::AnonymousCaller());
  v1::GetBundleRequest req;
  req.mutable_output_mask()->set_sequence_number(true);
  grpc::ClientContext ctx;
  ASSERT_TRUE(bundle_->GetBundle(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.trust_domain(), "example.org");
  EXPECT_EQ(resp.sequence_number(), 1u);
  EXPECT_THAT(resp.x509_authorities(), SizeIs(0));
}

TEST_F(BundleServiceTest, AppendBundleAddsValidatedAuthorities) {
  v1::AppendBundleRequest req;
  req.add_x509_authorities()->set_asn1(CaDer());
  *req.add_jwt_authorities() = MakeJwtKey("k1");
  types::Bundle resp;
  {
    grpc::ClientContext ctx;
    ExpectGrpcStatus(bundle_->AppendBundle(&ctx, req, &resp), grpc::StatusCode::NOT_FOUND,
                     "bundle not found");
  }
  PublishOwnBundle();
  grpc::ClientContext ctx;
  ASSERT_TRUE(bundle_->AppendBundle(&ctx, req, &resp).ok());
  EXPECT_THAT(resp.x509_authorities(), SizeIs(2));
  EXPECT_THAT(resp.jwt_authorities(), SizeIs(1));
  EXPECT_EQ(resp.sequence_number(), 2u);
}

TEST_F(BundleServiceTest, AppendBundleRefusesMalformedAuthorities) {
  PublishOwnBundle();
  struct Case {
    std::function<void(v1::AppendBundleRequest*)> set;
    std::string message;
  };
  std::vector<Case> cases = {
      {[](v1::AppendBundleRequest*) {}, "no authorities to append"},
      {[](v1::AppendBundleRequest* r) { r->add_x509_authorities()->set_asn1("not der"); },
       "invalid x509_authorities[0]: "},
      {[](v1::AppendBundleRequest* r) {
         *r->add_jwt_authorities() = MakeJwtKey("ok");
         *r->add_jwt_authorities() = MakeJwtKey("");
       },
       "invalid jwt_authorities[1]: missing key ID"},
      {[](v1::AppendBundleRequest* r) {
         types::JWTKey* k = r->add_jwt_authorities();
         k->set_key_id("k");
         k->set_public_key("garbage");
       },
       "invalid jwt_authorities[0]: public key: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    v1::AppendBundleRequest req;
    c.set(&req);
    types::Bundle resp;
    grpc::ClientContext ctx;
    ExpectGrpcStatus(bundle_->AppendBundle(&ctx, req, &resp), grpc::StatusCode::INVALID_ARGUMENT,
                     c.message);
  }
  EXPECT_EQ(store_->GetBundle("example.org")->sequence_number(), 1u);
}

TEST_F(BundleServiceTest, BatchCreateFederatedBundleReportsEachItem) {
  types::Bundle bad_cert = Federated("bad.org");
  bad_cert.mutable_x509_authorities(0)->set_asn1("junk");
  types::Bundle negative_hint = Federated("hint.org");
  negative_hint.set_refresh_hint(-1);
  v1::BatchCreateFederatedBundleResponse resp =
      CreateFederated({Federated("spiffe://fed.org"), Federated("fed.org"), Federated("example.org"),
                       Federated("Not A TD"), bad_cert, negative_hint});
  ASSERT_THAT(resp.results(), SizeIs(6));
  EXPECT_EQ(resp.results(0).status().code(), grpc::StatusCode::OK);
  EXPECT_EQ(resp.results(0).bundle().trust_domain(), "fed.org");
  EXPECT_EQ(resp.results(0).bundle().sequence_number(), 7u);
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(resp.results(1).status().message(), "bundle already exists");
  EXPECT_EQ(resp.results(2).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(2).status().message(),
              ::testing::HasSubstr("for the server's own trust domain (\"example.org\") is not "
                                   "allowed"));
  EXPECT_EQ(resp.results(3).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(3).status().message(), ::testing::HasSubstr("invalid trust_domain: "));
  EXPECT_EQ(resp.results(4).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(4).status().message(),
              ::testing::HasSubstr("invalid x509_authorities[0]: "));
  EXPECT_EQ(resp.results(5).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(5).status().message(), ::testing::HasSubstr("invalid refresh_hint: "));
}

TEST_F(BundleServiceTest, GetFederatedBundle) {
  CreateFederated({Federated("fed.org")});
  v1::GetFederatedBundleRequest req;
  types::Bundle resp;
  req.set_trust_domain("example.org");
  {
    grpc::ClientContext ctx;
    ExpectGrpcStatus(bundle_->GetFederatedBundle(&ctx, req, &resp),
                     grpc::StatusCode::INVALID_ARGUMENT,
                     "is this server's own trust domain; use GetBundle");
  }
  req.set_trust_domain("nope.org");
  {
    grpc::ClientContext ctx;
    ExpectGrpcStatus(bundle_->GetFederatedBundle(&ctx, req, &resp), grpc::StatusCode::NOT_FOUND,
                     "bundle for \"nope.org\" not found");
  }
  req.set_trust_domain("");
  {
    grpc::ClientContext ctx;
    ExpectGrpcStatus(bundle_->GetFederatedBundle(&ctx, req, &resp),
                     grpc::StatusCode::INVALID_ARGUMENT, "invalid trust_domain: ");
  }
  req.set_trust_domain("fed.org");
  req.mutable_output_mask()->set_refresh_hint(true);
  grpc::ClientContext ctx;
  ASSERT_TRUE(bundle_->GetFederatedBundle(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.refresh_hint(), 300);
  EXPECT_THAT(resp.jwt_authorities(), SizeIs(0));
}

TEST_F(BundleServiceTest, ListFederatedBundlesSkipsTheOwnBundleAndPaginates) {
  PublishOwnBundle();
  CreateFederated({Federated("a.org"), Federated("f.org"), Federated("z.org")});
  v1::ListFederatedBundlesRequest req;
  req.set_page_size(2);
  std::vector<std::string> tds;
  int pages = 0;
  do {
    v1::ListFederatedBundlesResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(bundle_->ListFederatedBundles(&ctx, req, &resp).ok());
    EXPECT_LE(resp.bundles_size(), 2);
    for (const auto& b : resp.bundles()) tds.push_back(b.trust_domain());
    req.set_page_token(resp.next_page_token());
    ++pages;
  } while (!req.page_token().empty() && pages < 10);
  EXPECT_THAT(tds, ElementsAre("a.org", "f.org", "z.org"));
  EXPECT_EQ(pages, 2);

  v1::CountBundlesResponse count;
  grpc::ClientContext ctx;
  ASSERT_TRUE(bundle_->CountBundles(&ctx, {}, &count).ok());
  EXPECT_EQ(count.count(), 4);
}

TEST_F(BundleServiceTest, BatchUpdateFederatedBundleWithInputMask) {
  CreateFederated({Federated("fed.org")});
  v1::BatchUpdateFederatedBundleRequest req;
  types::Bundle* change = req.add_bundle();
  change->set_trust_domain("fed.org");
  change->set_refresh_hint(60);
  change->add_x509_authorities()->set_asn1("ignored: not in the mask");
  req.mutable_input_mask()->set_refresh_hint(true);
  types::Bundle* missing = req.add_bundle();
  missing->set_trust_domain("missing.org");
  v1::BatchUpdateFederatedBundleResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(bundle_->BatchUpdateFederatedBundle(&ctx, req, &resp).ok());
  ASSERT_THAT(resp.results(), SizeIs(2));
  EXPECT_EQ(resp.results(0).status().code(), grpc::StatusCode::OK);
  EXPECT_EQ(resp.results(0).bundle().refresh_hint(), 60);
  EXPECT_THAT(resp.results(0).bundle().x509_authorities(), SizeIs(1));
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(resp.results(1).status().message(), "bundle not found");
}

TEST_F(BundleServiceTest, BatchSetFederatedBundleCreatesOrReplaces) {
  CreateFederated({Federated("fed.org")});
  v1::BatchSetFederatedBundleRequest req;
  types::Bundle replacement;
  replacement.set_trust_domain("fed.org");
  *replacement.add_jwt_authorities() = MakeJwtKey("new");
  *req.add_bundle() = replacement;
  *req.add_bundle() = Federated("new.org");
  v1::BatchSetFederatedBundleResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(bundle_->BatchSetFederatedBundle(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.results(0).status().code(), grpc::StatusCode::OK);
  EXPECT_EQ(resp.results(1).status().code(), grpc::StatusCode::OK);
  types::Bundle stored = store_->GetBundle("fed.org").value();
  EXPECT_THAT(stored.x509_authorities(), SizeIs(0));
  ASSERT_THAT(stored.jwt_authorities(), SizeIs(1));
  EXPECT_EQ(stored.jwt_authorities(0).key_id(), "new");
  EXPECT_TRUE(store_->GetBundle("new.org").ok());
}

TEST_F(BundleServiceTest, BatchDeleteFederatedBundleModes) {
  CreateFederated({Federated("r.org"), Federated("d.org"), Federated("x.org")});
  for (const char* td : {"r.org", "d.org", "x.org"}) {
    types::Entry e = MakeEntry(std::string("/") + td, "/spire/agent/a", {"unix:uid:1"});
    e.add_federates_with(td);
    ASSERT_TRUE(store_->CreateEntry(e).ok());
  }
  auto del = [&](std::vector<std::string> tds,
                 v1::BatchDeleteFederatedBundleRequest::Mode mode) {
    v1::BatchDeleteFederatedBundleRequest req;
    for (const auto& td : tds) req.add_trust_domains(td);
    req.set_mode(mode);
    v1::BatchDeleteFederatedBundleResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(bundle_->BatchDeleteFederatedBundle(&ctx, req, &resp).ok());
    return resp;
  };
  v1::BatchDeleteFederatedBundleResponse restrict =
      del({"r.org", "example.org", "none.org"}, v1::BatchDeleteFederatedBundleRequest::RESTRICT);
  ASSERT_THAT(restrict.results(), SizeIs(3));
  EXPECT_EQ(restrict.results(0).trust_domain(), "r.org");
  EXPECT_EQ(restrict.results(0).status().code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(restrict.results(0).status().message(),
              ::testing::HasSubstr("federated with 1 registration entries"));
  EXPECT_EQ(restrict.results(1).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(restrict.results(1).status().message(),
              ::testing::HasSubstr("removing the bundle for the server's own trust domain"));
  EXPECT_EQ(restrict.results(2).status().code(), grpc::StatusCode::NOT_FOUND);

  v1::BatchDeleteFederatedBundleResponse deleted =
      del({"d.org"}, v1::BatchDeleteFederatedBundleRequest::DELETE);
  EXPECT_EQ(deleted.results(0).status().code(), grpc::StatusCode::OK);
  EXPECT_THAT(store_->ListEntriesBySpiffeId("spiffe://example.org/d.org").value(), SizeIs(0));

  v1::BatchDeleteFederatedBundleResponse dissociated =
      del({"x.org"}, v1::BatchDeleteFederatedBundleRequest::DISSOCIATE);
  EXPECT_EQ(dissociated.results(0).status().code(), grpc::StatusCode::OK);
  std::vector<types::Entry> kept =
      store_->ListEntriesBySpiffeId("spiffe://example.org/x.org").value();
  ASSERT_THAT(kept, SizeIs(1));
  EXPECT_THAT(kept[0].federates_with(), SizeIs(0));
  EXPECT_EQ(store_->CountBundles().value(), 1);
}

TEST_F(BundleServiceTest, AuthorizationPerRpc) {
  const uint32_t admin = kAllowLocal | kAllowAdmin;
  std::vector<Rpc> rpcs = {
      {"Bundle.GetBundle",
       [&](grpc::ClientContext* ctx) {
         types::Bundle r;
         return bundle_->GetBundle(ctx, {}, &r);
       },
       kAllowAny},
      {"Bundle.CountBundles",
       [&](grpc::ClientContext* ctx) {
         v1::CountBundlesResponse r;
         return bundle_->CountBundles(ctx, {}, &r);
       },
       admin},
      {"Bundle.AppendBundle",
       [&](grpc::ClientContext* ctx) {
         types::Bundle r;
         return bundle_->AppendBundle(ctx, {}, &r);
       },
       admin},
      {"Bundle.ListFederatedBundles",
       [&](grpc::ClientContext* ctx) {
         v1::ListFederatedBundlesResponse r;
         return bundle_->ListFederatedBundles(ctx, {}, &r);
       },
       admin},
      {"Bundle.GetFederatedBundle",
       [&](grpc::ClientContext* ctx) {
         v1::GetFederatedBundleRequest req;
         req.set_trust_domain("fed.org");
         types::Bundle r;
         return bundle_->GetFederatedBundle(ctx, req, &r);
       },
       admin | kAllowAgent},
      {"Bundle.BatchCreateFederatedBundle",
       [&](grpc::ClientContext* ctx) {
         v1::BatchCreateFederatedBundleResponse r;
         return bundle_->BatchCreateFederatedBundle(ctx, {}, &r);
       },
       admin},
      {"Bundle.BatchUpdateFederatedBundle",
       [&](grpc::ClientContext* ctx) {
         v1::BatchUpdateFederatedBundleResponse r;
         return bundle_->BatchUpdateFederatedBundle(ctx, {}, &r);
       },
       admin},
      {"Bundle.BatchSetFederatedBundle",
       [&](grpc::ClientContext* ctx) {
         v1::BatchSetFederatedBundleResponse r;
         return bundle_->BatchSetFederatedBundle(ctx, {}, &r);
       },
       admin},
      {"Bundle.BatchDeleteFederatedBundle",
       [&](grpc::ClientContext* ctx) {
         v1::BatchDeleteFederatedBundleResponse r;
         return bundle_->BatchDeleteFederatedBundle(ctx, {}, &r);
       },
       admin},
  };
  CheckAuthorization(&authn_, rpcs);
}

}  // namespace
}  // namespace sigil::server::api
