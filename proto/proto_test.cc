// Wire-compatibility facts of the .proto contracts in proto/. Every number
// and name asserted here is a published fact (SPIFFE Workload API standard,
// SPIRE's server API, gRPC health): a failure means a contract was broken,
// not that the test needs updating.

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/byte_buffer.h>
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "spire/api/server/agent/v1/agent.pb.h"
#include "spire/api/server/bundle/v1/bundle.pb.h"
#include "spire/api/server/debug/v1/debug.pb.h"
#include "spire/api/server/entry/v1/entry.pb.h"
#include "spire/api/server/localauthority/v1/localauthority.pb.h"
#include "spire/api/server/svid/v1/svid.pb.h"
#include "spire/api/server/trustdomain/v1/trustdomain.pb.h"
#include "spire/api/types/entry.pb.h"
#include "workload.grpc.pb.h"

namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

// The generated pool only knows files whose code was linked in, and static
// libraries link only what a binary names: touch one message of every
// contract file so that lookups by full name see them all.
bool RegisterAllContracts() {
  const std::vector<const Descriptor*> anchors = {
      X509SVIDResponse::descriptor(),
      grpc::health::v1::HealthCheckRequest::descriptor(),
      spire::api::server::agent::v1::AttestAgentRequest::descriptor(),
      spire::api::server::bundle::v1::AppendBundleRequest::descriptor(),
      spire::api::server::debug::v1::GetInfoResponse::descriptor(),
      spire::api::server::entry::v1::SyncAuthorizedEntriesResponse::descriptor(),
      spire::api::server::localauthority::v1::AuthorityState::descriptor(),
      spire::api::server::svid::v1::MintWITSVIDRequest::descriptor(),
      spire::api::server::trustdomain::v1::RefreshBundleRequest::descriptor(),
  };
  for (const Descriptor* anchor : anchors) {
    if (anchor == nullptr) return false;
  }
  return true;
}

const DescriptorPool& Pool() {
  static const bool registered = RegisterAllContracts();
  EXPECT_TRUE(registered);
  return *DescriptorPool::generated_pool();
}

// Serializes with deterministic map ordering so byte comparisons are stable.
std::string Deterministic(const google::protobuf::MessageLite& message) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

// One length-delimited field: tag byte, one-byte length, payload.
std::string Len(uint8_t tag, const std::string& payload) {
  EXPECT_LT(payload.size(), 128u) << "helper only encodes one-byte lengths";
  return std::string(1, static_cast<char>(tag)) +
         std::string(1, static_cast<char>(payload.size())) + payload;
}

// ---------------------------------------------------------------------------
// SPIFFE Workload API

TEST(WorkloadApi, X509SvidResponseSerializesToTheStandardWireBytes) {
  X509SVIDResponse response;
  X509SVID* svid = response.add_svids();
  svid->set_spiffe_id("spiffe://example.org/w");
  svid->set_x509_svid(std::string("\x30\x01", 2));
  svid->set_x509_svid_key(std::string("\x30\x02", 2));
  svid->set_bundle(std::string("\x30\x03", 2));
  svid->set_hint("h");
  response.add_crl(std::string("\x30\x04", 2));
  (*response.mutable_federated_bundles())["spiffe://other.org"] =
      std::string("\x30\x05", 2);

  // Field tags per the standard: X509SVIDResponse{svids=1, crl=2,
  // federated_bundles=3}, X509SVID{spiffe_id=1, x509_svid=2, x509_svid_key=3,
  // bundle=4, hint=5}; map entries are {key=1, value=2}.
  const std::string expected_svid =
      Len(0x0A, "spiffe://example.org/w") +
      Len(0x12, std::string("\x30\x01", 2)) +
      Len(0x1A, std::string("\x30\x02", 2)) +
      Len(0x22, std::string("\x30\x03", 2)) + Len(0x2A, "h");
  const std::string expected =
      Len(0x0A, expected_svid) + Len(0x12, std::string("\x30\x04", 2)) +
      Len(0x1A, Len(0x0A, "spiffe://other.org") +
                    Len(0x12, std::string("\x30\x05", 2)));

  EXPECT_EQ(Deterministic(response), expected);
}

TEST(WorkloadApi, X509BundlesResponseKeepsCrlBeforeBundles) {
  // Early drafts numbered bundles=1; the standard has crl=1, bundles=2.
  X509BundlesResponse response;
  response.add_crl("c");
  (*response.mutable_bundles())["spiffe://td"] = "b";
  EXPECT_EQ(Deterministic(response),
            Len(0x0A, "c") +
                Len(0x12, Len(0x0A, "spiffe://td") + Len(0x12, "b")));
}

TEST(WorkloadApi, JwtSvidRequestFromAForeignClientParses) {
  // Bytes as a go-spiffe client encodes {audience: ["a", "b"],
  // spiffe_id: "spiffe://td/x"}.
  const std::string wire =
      Len(0x0A, "a") + Len(0x0A, "b") + Len(0x12, "spiffe://td/x");
  JWTSVIDRequest request;
  ASSERT_TRUE(request.ParseFromString(wire));
  ASSERT_EQ(request.audience_size(), 2);
  EXPECT_EQ(request.audience(0), "a");
  EXPECT_EQ(request.audience(1), "b");
  EXPECT_EQ(request.spiffe_id(), "spiffe://td/x");
}

TEST(WorkloadApi, JwtSvidAndValidateMessagesUseStandardNumbers) {
  const Descriptor* jwt = Pool().FindMessageTypeByName("JWTSVID");
  ASSERT_NE(jwt, nullptr);
  EXPECT_EQ(jwt->FindFieldByName("spiffe_id")->number(), 1);
  EXPECT_EQ(jwt->FindFieldByName("svid")->number(), 2);
  EXPECT_EQ(jwt->FindFieldByName("hint")->number(), 3);

  const Descriptor* validate =
      Pool().FindMessageTypeByName("ValidateJWTSVIDResponse");
  ASSERT_NE(validate, nullptr);
  const FieldDescriptor* claims = validate->FindFieldByName("claims");
  ASSERT_NE(claims, nullptr);
  EXPECT_EQ(claims->number(), 2);
  EXPECT_EQ(claims->message_type()->full_name(), "google.protobuf.Struct");
}

TEST(WorkloadApi, ServiceHasNoPackageAndStandardStreamingShapes) {
  const ServiceDescriptor* service =
      Pool().FindServiceByName("SpiffeWorkloadAPI");
  ASSERT_NE(service, nullptr);
  EXPECT_EQ(service->full_name(), "SpiffeWorkloadAPI");
  EXPECT_EQ(service->file()->package(), "");
  EXPECT_EQ(service->file()->name(), "workload.proto");

  struct Shape {
    const char* method;
    const char* input;
    const char* output;
    bool server_streaming;
  };
  const std::vector<Shape> shapes = {
      {"FetchX509SVID", "X509SVIDRequest", "X509SVIDResponse", true},
      {"FetchX509Bundles", "X509BundlesRequest", "X509BundlesResponse", true},
      {"FetchJWTSVID", "JWTSVIDRequest", "JWTSVIDResponse", false},
      {"FetchJWTBundles", "JWTBundlesRequest", "JWTBundlesResponse", true},
      {"ValidateJWTSVID", "ValidateJWTSVIDRequest", "ValidateJWTSVIDResponse",
       false},
  };
  EXPECT_EQ(service->method_count(), static_cast<int>(shapes.size()));
  for (const Shape& shape : shapes) {
    const MethodDescriptor* method = service->FindMethodByName(shape.method);
    ASSERT_NE(method, nullptr) << shape.method;
    EXPECT_EQ(method->input_type()->full_name(), shape.input) << shape.method;
    EXPECT_EQ(method->output_type()->full_name(), shape.output)
        << shape.method;
    EXPECT_FALSE(method->client_streaming()) << shape.method;
    EXPECT_EQ(method->server_streaming(), shape.server_streaming)
        << shape.method;
  }
}

// Answers FetchJWTSVID with one SVID whose token is the joined audiences,
// and FetchX509SVID with two stream messages.
class EchoWorkloadApi final : public SpiffeWorkloadAPI::Service {
 public:
  grpc::Status FetchJWTSVID(grpc::ServerContext*, const JWTSVIDRequest* request,
                            JWTSVIDResponse* response) override {
    JWTSVID* svid = response->add_svids();
    svid->set_spiffe_id(request->spiffe_id());
    std::string joined;
    for (const std::string& audience : request->audience()) {
      joined += audience + ";";
    }
    svid->set_svid(joined);
    return grpc::Status::OK;
  }

  grpc::Status FetchX509SVID(
      grpc::ServerContext*, const X509SVIDRequest*,
      grpc::ServerWriter<X509SVIDResponse>* writer) override {
    for (const char* id : {"spiffe://td/first", "spiffe://td/second"}) {
      X509SVIDResponse response;
      response.add_svids()->set_spiffe_id(id);
      if (!writer->Write(response)) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "client went away");
      }
    }
    return grpc::Status::OK;
  }
};

// An in-process server on a loopback port picked by the kernel.
class LoopbackServer {
 public:
  explicit LoopbackServer(grpc::Service* service, bool default_health = false) {
    grpc::EnableDefaultHealthCheckService(default_health);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    if (service != nullptr) builder.RegisterService(service);
    server_ = builder.BuildAndStart();
  }
  ~LoopbackServer() {
    if (server_ != nullptr) server_->Shutdown();
  }

  bool ok() const { return server_ != nullptr && port_ > 0; }
  grpc::Server* server() { return server_.get(); }
  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                               grpc::InsecureChannelCredentials());
  }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

std::unique_ptr<grpc::ClientContext> ContextWithDeadline() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
  return context;
}

TEST(WorkloadApi, ForeignClientReachesServiceByStandardMethodPath) {
  EchoWorkloadApi service;
  LoopbackServer server(&service);
  ASSERT_TRUE(server.ok());

  // A client that knows nothing but the method path and the wire bytes.
  grpc::GenericStub stub(server.Channel());
  const std::string request_bytes =
      Len(0x0A, "aud1") + Len(0x0A, "aud2") + Len(0x12, "spiffe://td/x");
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  auto context = ContextWithDeadline();
  std::promise<grpc::Status> done;
  stub.UnaryCall(context.get(), "/SpiffeWorkloadAPI/FetchJWTSVID",
                 grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(status); });
  const grpc::Status status = done.get_future().get();
  ASSERT_TRUE(status.ok()) << status.error_message();

  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string response_bytes;
  for (const grpc::Slice& s : slices) {
    response_bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  // JWTSVIDResponse{svids=1: JWTSVID{spiffe_id=1, svid=2}}.
  EXPECT_EQ(response_bytes,
            Len(0x0A, Len(0x0A, "spiffe://td/x") + Len(0x12, "aud1;aud2;")));
}

TEST(WorkloadApi, FetchX509SvidStreamsEveryUpdate) {
  EchoWorkloadApi service;
  LoopbackServer server(&service);
  ASSERT_TRUE(server.ok());
  auto stub = SpiffeWorkloadAPI::NewStub(server.Channel());
  auto context = ContextWithDeadline();
  auto reader = stub->FetchX509SVID(context.get(), X509SVIDRequest());
  std::vector<std::string> seen;
  X509SVIDResponse response;
  while (reader->Read(&response)) {
    ASSERT_EQ(response.svids_size(), 1);
    seen.push_back(response.svids(0).spiffe_id());
  }
  const grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(seen, (std::vector<std::string>{"spiffe://td/first",
                                            "spiffe://td/second"}));
}

// ---------------------------------------------------------------------------
// gRPC health

TEST(Health, GeneratedStubSpeaksToGrpcBuiltInHealthService) {
  // gRPC's built-in health service is implemented without our .proto; a
  // successful Check proves the two agree on the wire.
  EchoWorkloadApi service;
  LoopbackServer server(&service, /*default_health=*/true);
  ASSERT_TRUE(server.ok());
  auto stub = grpc::health::v1::Health::NewStub(server.Channel());

  grpc::health::v1::HealthCheckResponse response;
  auto context = ContextWithDeadline();
  grpc::Status status =
      stub->Check(context.get(), grpc::health::v1::HealthCheckRequest(),
                  &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(),
            grpc::health::v1::HealthCheckResponse::SERVING);

  grpc::health::v1::HealthCheckRequest unknown;
  unknown.set_service("no.such.Service");
  auto context2 = ContextWithDeadline();
  status = stub->Check(context2.get(), unknown, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(Health, ServiceAndStatusValuesMatchTheStandard) {
  const ServiceDescriptor* service =
      Pool().FindServiceByName("grpc.health.v1.Health");
  ASSERT_NE(service, nullptr);
  ASSERT_NE(service->FindMethodByName("Check"), nullptr);
  const MethodDescriptor* watch = service->FindMethodByName("Watch");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->server_streaming());
  EXPECT_EQ(grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN, 3);
  EXPECT_EQ(grpc::health::v1::HealthCheckResponse::NOT_SERVING, 2);
}

// ---------------------------------------------------------------------------
// SPIRE server API

struct FieldFact {
  const char* message;
  const char* field;
  int number;
  FieldDescriptor::Type type;
  bool repeated;
};

void ExpectFields(const std::vector<FieldFact>& facts) {
  for (const FieldFact& fact : facts) {
    const Descriptor* message = Pool().FindMessageTypeByName(fact.message);
    ASSERT_NE(message, nullptr) << fact.message;
    const FieldDescriptor* field = message->FindFieldByName(fact.field);
    ASSERT_NE(field, nullptr) << fact.message << "." << fact.field;
    EXPECT_EQ(field->number(), fact.number)
        << fact.message << "." << fact.field;
    EXPECT_EQ(field->type(), fact.type) << fact.message << "." << fact.field;
    EXPECT_EQ(field->is_repeated(), fact.repeated)
        << fact.message << "." << fact.field;
  }
}

constexpr auto kString = FieldDescriptor::TYPE_STRING;
constexpr auto kBytes = FieldDescriptor::TYPE_BYTES;
constexpr auto kBool = FieldDescriptor::TYPE_BOOL;
constexpr auto kInt32 = FieldDescriptor::TYPE_INT32;
constexpr auto kInt64 = FieldDescriptor::TYPE_INT64;
constexpr auto kUint64 = FieldDescriptor::TYPE_UINT64;
constexpr auto kMessage = FieldDescriptor::TYPE_MESSAGE;

TEST(SpireApi, EntryFieldNumbersMatchPublishedApi) {
  const char* e = "spire.api.types.Entry";
  ExpectFields({
      {e, "id", 1, kString, false},
      {e, "spiffe_id", 2, kMessage, false},
      {e, "parent_id", 3, kMessage, false},
      {e, "selectors", 4, kMessage, true},
      {e, "x509_svid_ttl", 5, kInt32, false},
      {e, "federates_with", 6, kString, true},
      {e, "admin", 7, kBool, false},
      {e, "downstream", 8, kBool, false},
      {e, "expires_at", 9, kInt64, false},
      {e, "dns_names", 10, kString, true},
      {e, "revision_number", 11, kInt64, false},
      {e, "store_svid", 12, kBool, false},
      {e, "jwt_svid_ttl", 13, kInt32, false},
      {e, "hint", 14, kString, false},
      {e, "created_at", 15, kInt64, false},
      // The mask's hint is a bool (an early release had it as a string).
      {"spire.api.types.EntryMask", "hint", 14, kBool, false},
      {"spire.api.types.EntryMask", "created_at", 15, kBool, false},
  });
  EXPECT_EQ(Pool().FindMessageTypeByName(e)->field_count(), 15);
}

TEST(SpireApi, AgentFieldNumbersMatchPublishedApi) {
  const char* a = "spire.api.types.Agent";
  ExpectFields({
      {a, "id", 1, kMessage, false},
      {a, "attestation_type", 2, kString, false},
      {a, "x509svid_serial_number", 3, kString, false},
      {a, "x509svid_expires_at", 4, kInt64, false},
      {a, "selectors", 5, kMessage, true},
      {a, "banned", 6, kBool, false},
      {a, "can_reattest", 7, kBool, false},
      {"spire.api.types.AgentMask", "can_reattest", 7, kBool, false},
  });
  // The JSON name is part of the -output json contract.
  EXPECT_EQ(Pool()
                .FindMessageTypeByName(a)
                ->FindFieldByName("can_reattest")
                ->json_name(),
            "canReattest");
}

TEST(SpireApi, AttestAgentMessagesMatchPublishedApi) {
  ExpectFields({
      {"spire.api.server.agent.v1.AttestAgentRequest", "params", 1, kMessage,
       false},
      {"spire.api.server.agent.v1.AttestAgentRequest", "challenge_response", 2,
       kBytes, false},
      {"spire.api.server.agent.v1.AttestAgentRequest.Params", "data", 1,
       kMessage, false},
      {"spire.api.server.agent.v1.AttestAgentRequest.Params", "params", 2,
       kMessage, false},
      {"spire.api.server.agent.v1.AttestAgentResponse", "result", 1, kMessage,
       false},
      {"spire.api.server.agent.v1.AttestAgentResponse", "challenge", 2, kBytes,
       false},
      {"spire.api.server.agent.v1.AttestAgentResponse.Result", "svid", 1,
       kMessage, false},
      {"spire.api.server.agent.v1.AttestAgentResponse.Result", "reattestable",
       2, kBool, false},
      {"spire.api.server.agent.v1.AgentX509SVIDParams", "csr", 1, kBytes,
       false},
      {"spire.api.server.agent.v1.PostStatusRequest", "current_bundle_serial",
       1, kUint64, false},
      {"spire.api.server.agent.v1.ListAgentsRequest.Filter",
       "by_expires_before", 5, kString, false},
  });
  const Descriptor* request = Pool().FindMessageTypeByName(
      "spire.api.server.agent.v1.AttestAgentRequest");
  ASSERT_EQ(request->oneof_decl_count(), 1);
  EXPECT_EQ(request->oneof_decl(0)->name(), "step");
  EXPECT_EQ(request->FindFieldByName("params")->containing_oneof(),
            request->oneof_decl(0));
  EXPECT_EQ(request->FindFieldByName("challenge_response")->containing_oneof(),
            request->oneof_decl(0));

  const MethodDescriptor* attest =
      Pool().FindMethodByName("spire.api.server.agent.v1.Agent.AttestAgent");
  ASSERT_NE(attest, nullptr);
  EXPECT_TRUE(attest->client_streaming());
  EXPECT_TRUE(attest->server_streaming());
}

TEST(SpireApi, AttestAgentChallengeStepHasPublishedWireBytes) {
  spire::api::server::agent::v1::AttestAgentRequest request;
  request.set_challenge_response("ok");
  EXPECT_EQ(Deterministic(request), Len(0x12, "ok"));

  spire::api::server::agent::v1::AttestAgentRequest first;
  first.mutable_params()->mutable_data()->set_type("join_token");
  first.mutable_params()->mutable_data()->set_payload("t");
  // params=1 { data=1 { type=1, payload=2 } }
  EXPECT_EQ(Deterministic(first),
            Len(0x0A, Len(0x0A, Len(0x0A, "join_token") + Len(0x12, "t"))));
}

TEST(SpireApi, ServiceFullNamesAndSyncStreamShapeMatchPublishedApi) {
  const ServiceDescriptor* entry =
      Pool().FindServiceByName("spire.api.server.entry.v1.Entry");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->full_name(), "spire.api.server.entry.v1.Entry");
  const MethodDescriptor* sync = entry->FindMethodByName("SyncAuthorizedEntries");
  ASSERT_NE(sync, nullptr);
  EXPECT_TRUE(sync->client_streaming());
  EXPECT_TRUE(sync->server_streaming());
  EXPECT_EQ(entry->FindMethodByName("GetEntry")->output_type()->full_name(),
            "spire.api.types.Entry");
  EXPECT_EQ(spire::api::types::Entry::descriptor()->full_name(),
            "spire.api.types.Entry");

  ExpectFields({
      {"spire.api.server.entry.v1.SyncAuthorizedEntriesResponse",
       "entry_revisions", 1, kMessage, true},
      {"spire.api.server.entry.v1.SyncAuthorizedEntriesResponse", "entries", 2,
       kMessage, true},
      {"spire.api.server.entry.v1.SyncAuthorizedEntriesResponse", "more", 3,
       kBool, false},
      {"spire.api.server.entry.v1.SyncAuthorizedEntriesRequest", "ids", 2,
       kString, true},
      {"spire.api.server.entry.v1.ListEntriesRequest.Filter", "by_downstream",
       6, kMessage, false},
  });

  for (const char* name :
       {"spire.api.server.agent.v1.Agent", "spire.api.server.bundle.v1.Bundle",
        "spire.api.server.debug.v1.Debug", "spire.api.server.svid.v1.SVID",
        "spire.api.server.localauthority.v1.LocalAuthority",
        "spire.api.server.trustdomain.v1.TrustDomain"}) {
    EXPECT_NE(Pool().FindServiceByName(name), nullptr) << name;
  }
  EXPECT_EQ(Pool()
                .FindServiceByName("spire.api.server.svid.v1.SVID")
                ->method_count(),
            7);
}

TEST(SpireApi, BundleAndFederationTypesMatchPublishedApi) {
  ExpectFields({
      {"spire.api.types.Bundle", "trust_domain", 1, kString, false},
      {"spire.api.types.Bundle", "x509_authorities", 2, kMessage, true},
      {"spire.api.types.Bundle", "jwt_authorities", 3, kMessage, true},
      {"spire.api.types.Bundle", "refresh_hint", 4, kInt64, false},
      {"spire.api.types.Bundle", "sequence_number", 5, kUint64, false},
      {"spire.api.types.X509Certificate", "tainted", 2, kBool, false},
      {"spire.api.types.JWTKey", "key_id", 2, kString, false},
      {"spire.api.types.BundleMask", "x509_authorities", 2, kBool, false},
      {"spire.api.types.FederationRelationship", "https_spiffe", 4, kMessage,
       false},
      {"spire.api.types.FederationRelationship", "trust_domain_bundle", 5,
       kMessage, false},
      {"spire.api.types.FederationRelationshipMask", "trust_domain_bundle", 3,
       kBool, false},
      {"spire.api.types.X509SVID", "cert_chain", 1, kBytes, true},
      {"spire.api.types.X509SVID", "hint", 4, kString, false},
      {"spire.api.types.JWTSVID", "issued_at", 4, kInt64, false},
  });
  const auto* reason = Pool().FindEnumTypeByName(
      "spire.api.types.PermissionDeniedDetails.Reason");
  ASSERT_NE(reason, nullptr);
  ASSERT_NE(reason->FindValueByName("AGENT_MUST_REATTEST"), nullptr);
  EXPECT_EQ(reason->FindValueByName("AGENT_MUST_REATTEST")->number(), 5);
}

TEST(SpireApi, AppendBundleFromNewerSpireKeepsUnmodelledWitAuthorities) {
  // Field 4 carries WIT authorities in newer SPIRE; Sigil does not model it
  // yet, so it must survive a parse/serialize round trip untouched.
  const std::string wire = Len(0x0A, Len(0x0A, "der")) + Len(0x22, "wit");
  spire::api::server::bundle::v1::AppendBundleRequest request;
  ASSERT_TRUE(request.ParseFromString(wire));
  ASSERT_EQ(request.x509_authorities_size(), 1);
  EXPECT_EQ(request.x509_authorities(0).asn1(), "der");
  EXPECT_EQ(Deterministic(request), wire);
}

}  // namespace
