// Tests of RS256 ServiceAccount tokens: roundtrip, forgery, alg confusion, time and audience.
#include "pki/jwt.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "pki/certificates.h"
#include "pki/encoding.h"
#include "test_util.h"

namespace mk8s::pki {
namespace {

using json = nlohmann::json;
using std::chrono::seconds;

const TimePoint kNow = TimePoint(seconds(1'700'000'000));

std::vector<std::string> Split(const std::string& token) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = token.find('.', start)) != std::string::npos; start = dot + 1)
    parts.push_back(token.substr(start, dot - start));
  parts.push_back(token.substr(start));
  return parts;
}

json DecodePart(const std::string& part) {
  auto text = Base64UrlDecode(part);
  return text ? json::parse(*text, nullptr, false) : json();
}

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto key = GenerateRsaKeyPem(2048);
    ASSERT_TRUE(key.ok());
    key_ = new std::string(*key);
    auto other = GenerateRsaKeyPem(2048);
    ASSERT_TRUE(other.ok());
    other_key_ = new std::string(*other);
  }
  static void TearDownTestSuite() {
    delete key_;
    delete other_key_;
  }

  void SetUp() override {
    auto signer = JwtSigner::Create(*key_);
    ASSERT_TRUE(signer.ok()) << signer.status().ToString();
    signer_ = std::move(*signer);
    auto pub = PublicKeyPem(*key_);
    ASSERT_TRUE(pub.ok());
    public_pem_ = *pub;
    auto verifier = JwtVerifier::Create({public_pem_});
    ASSERT_TRUE(verifier.ok()) << verifier.status().ToString();
    verifier_ = std::move(*verifier);
  }

  std::string SignDefault() {
    ServiceAccountClaims c = MakeServiceAccountClaims("team-a", "builder", "sa-uid-1", kNow);
    c.pod_name = "web-0";
    c.pod_uid = "pod-uid-1";
    auto token = signer_->Sign(c);
    EXPECT_TRUE(token.ok()) << token.status().ToString();
    return token.ok() ? *token : std::string();
  }

  JwtVerifyOptions At(TimePoint now) {
    JwtVerifyOptions o;
    o.now = now;
    return o;
  }

  static std::string* key_;
  static std::string* other_key_;
  std::unique_ptr<JwtSigner> signer_;
  std::unique_ptr<JwtVerifier> verifier_;
  std::string public_pem_;
};
std::string* JwtTest::key_ = nullptr;
std::string* JwtTest::other_key_ = nullptr;

TEST_F(JwtTest, RoundTripAsKubernetesIssuesThem) {
  std::string token = SignDefault();
  auto parts = Split(token);
  ASSERT_EQ(parts.size(), 3u);
  json header = DecodePart(parts[0]);
  EXPECT_EQ(header["alg"], "RS256");
  EXPECT_EQ(header["kid"], signer_->key_id());
  json claims = DecodePart(parts[1]);
  EXPECT_EQ(claims["iss"], kDefaultIssuer);
  EXPECT_EQ(claims["sub"], "system:serviceaccount:team-a:builder");
  EXPECT_EQ(claims["aud"], json::array({kDefaultIssuer}));
  EXPECT_EQ(claims["iat"], 1'700'000'000);
  EXPECT_EQ(claims["nbf"], 1'700'000'000);
  EXPECT_EQ(claims["exp"], 1'700'003'600);
  EXPECT_EQ(claims["kubernetes.io"]["namespace"], "team-a");
  EXPECT_EQ(claims["kubernetes.io"]["serviceaccount"]["name"], "builder");
  EXPECT_EQ(claims["kubernetes.io"]["serviceaccount"]["uid"], "sa-uid-1");
  EXPECT_EQ(claims["kubernetes.io"]["pod"]["name"], "web-0");
  EXPECT_TRUE(claims["jti"].is_string());
  EXPECT_EQ(parts[2].find('='), std::string::npos);  // base64url without padding

  auto v = verifier_->Verify(token, At(kNow + seconds(10)));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->user.user, "system:serviceaccount:team-a:builder");
  EXPECT_EQ(v->user.uid, "sa-uid-1");
  EXPECT_EQ(v->user.groups,
            (std::vector<std::string>{"system:serviceaccounts", "system:serviceaccounts:team-a"}));
  EXPECT_EQ(v->user.extra[kExtraPodName], std::vector<std::string>{"web-0"});
  EXPECT_EQ(v->user.extra[kExtraPodUid], std::vector<std::string>{"pod-uid-1"});
  EXPECT_EQ(v->claims.pod_name, "web-0");
  EXPECT_EQ(v->claims.expires_at, kNow + seconds(3600));

  // A verifier built from the private key PEM works too.
  auto from_private = JwtVerifier::Create({*key_});
  ASSERT_TRUE(from_private.ok());
  EXPECT_TRUE((*from_private)->Verify(token, At(kNow)).ok());
}

TEST_F(JwtTest, KeyIdIsSha256OfPublicKeyDer) {
  auto kid = KeyId(public_pem_);
  ASSERT_TRUE(kid.ok());
  EXPECT_EQ(*kid, signer_->key_id());
  EXPECT_EQ(kid->size(), 43u);
  if (!testing::HaveTool("openssl")) GTEST_SKIP() << "openssl CLI not installed";
  testing::TempDir dir;
  testing::WriteFile(dir.File("sa.pub"), public_pem_);
  auto r = testing::RunCommand("openssl pkey -pubin -in " + dir.File("sa.pub") +
                               " -outform DER | openssl dgst -sha256 -binary | openssl base64 -A");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string b64 = r.output;
  while (!b64.empty() && (b64.back() == '\n' || b64.back() == '=')) b64.pop_back();
  for (char& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
  EXPECT_EQ(*kid, b64);
}

TEST_F(JwtTest, TamperedTokensAreRejected) {
  std::string token = SignDefault();
  auto parts = Split(token);
  json claims = DecodePart(parts[1]);
  claims["kubernetes.io"]["namespace"] = "kube-system";
  claims["sub"] = "system:serviceaccount:kube-system:builder";
  std::string forged = parts[0] + "." + Base64UrlEncode(claims.dump()) + "." + parts[2];
  auto r = verifier_->Verify(forged, At(kNow));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);

  std::string sig = *Base64UrlDecode(parts[2]);
  sig[10] ^= 0x01;
  EXPECT_FALSE(
      verifier_->Verify(parts[0] + "." + parts[1] + "." + Base64UrlEncode(sig), At(kNow)).ok());
  EXPECT_FALSE(verifier_->Verify(parts[0] + "." + parts[1] + ".", At(kNow)).ok());
  EXPECT_FALSE(verifier_->Verify(parts[0] + "." + parts[1], At(kNow)).ok());
  EXPECT_FALSE(verifier_->Verify(token + ".x", At(kNow)).ok());
  EXPECT_FALSE(verifier_->Verify("", At(kNow)).ok());
  EXPECT_FALSE(verifier_->Verify("a.b.c", At(kNow)).ok());
  EXPECT_FALSE(verifier_->Verify(token + "=", At(kNow)).ok());

  // Signed by a key the cluster does not know.
  auto other = JwtSigner::Create(*other_key_);
  ASSERT_TRUE(other.ok());
  auto foreign = (*other)->Sign(MakeServiceAccountClaims("team-a", "builder", "u", kNow));
  ASSERT_TRUE(foreign.ok());
  EXPECT_FALSE(verifier_->Verify(*foreign, At(kNow)).ok());
  // ...but accepted once that key is configured as well (key rotation).
  auto both = JwtVerifier::Create({*other_key_, public_pem_});
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE((*both)->Verify(*foreign, At(kNow)).ok());
  EXPECT_TRUE((*both)->Verify(token, At(kNow)).ok());
}

TEST_F(JwtTest, OnlyRs256IsAccepted) {
  auto parts = Split(SignDefault());
  for (const char* alg : {"none", "None", "HS256", "RS512", "ES256", "PS256"}) {
    std::string header = Base64UrlEncode(json{{"alg", alg}, {"typ", "JWT"}}.dump());
    EXPECT_FALSE(verifier_->Verify(header + "." + parts[1] + ".", At(kNow)).ok()) << alg;
    EXPECT_FALSE(verifier_->Verify(header + "." + parts[1] + "." + parts[2], At(kNow)).ok()) << alg;
  }
  std::string no_alg = Base64UrlEncode(R"({"kid":"x"})");
  EXPECT_FALSE(verifier_->Verify(no_alg + "." + parts[1] + "." + parts[2], At(kNow)).ok());
  // EC keys cannot sign or verify ServiceAccount tokens.
  auto ec = GenerateEcKeyPem();
  ASSERT_TRUE(ec.ok());
  EXPECT_FALSE(JwtSigner::Create(*ec).ok());
  EXPECT_FALSE(JwtVerifier::Create({*ec}).ok());
  EXPECT_FALSE(JwtVerifier::Create({}).ok());
}

TEST_F(JwtTest, TimeChecksUseTheGivenClockWithLeeway) {
  std::string token = SignDefault();  // valid [kNow, kNow + 3600]
  EXPECT_TRUE(verifier_->Verify(token, At(kNow + seconds(3600 + 59))).ok());
  auto expired = verifier_->Verify(token, At(kNow + seconds(3600 + 61)));
  ASSERT_FALSE(expired.ok());
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos);
  EXPECT_TRUE(verifier_->Verify(token, At(kNow - seconds(59))).ok());
  EXPECT_FALSE(verifier_->Verify(token, At(kNow - seconds(120))).ok());  // nbf in the future
  JwtVerifyOptions strict = At(kNow + seconds(3601));
  strict.leeway = seconds(0);
  EXPECT_FALSE(verifier_->Verify(token, strict).ok());
  // Default clock: a token issued in 2023 for one hour is long expired.
  EXPECT_FALSE(verifier_->Verify(token).ok());

  // A token without exp is refused.
  auto no_exp = signer_->SignJson(
      R"({"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:a:b",)"
      R"("aud":["https://kubernetes.default.svc.cluster.local"],)"
      R"("kubernetes.io":{"namespace":"a","serviceaccount":{"name":"b","uid":"c"}}})");
  ASSERT_TRUE(no_exp.ok());
  EXPECT_FALSE(verifier_->Verify(*no_exp, At(kNow)).ok());
}

TEST_F(JwtTest, IssuerAndAudienceMustMatch) {
  std::string token = SignDefault();
  JwtVerifyOptions o = At(kNow);
  o.audiences = {"vault"};
  auto r = verifier_->Verify(token, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("audience"), std::string::npos);
  o.audiences = {"vault", kDefaultIssuer};
  EXPECT_TRUE(verifier_->Verify(token, o).ok());
  o.audiences = {};
  EXPECT_TRUE(verifier_->Verify(token, o).ok());  // no audience check
  o = At(kNow);
  o.issuers = {"https://other.example"};
  EXPECT_FALSE(verifier_->Verify(token, o).ok());

  ServiceAccountClaims c = MakeServiceAccountClaims("ns", "sa", "uid", kNow);
  c.audiences = {"api", "vault"};
  c.issuer = "https://issuer.example";
  auto custom = signer_->Sign(c);
  ASSERT_TRUE(custom.ok());
  o = At(kNow);
  o.issuers = {"https://issuer.example"};
  o.audiences = {"vault"};
  auto ok = verifier_->Verify(*custom, o);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->claims.audiences, (std::vector<std::string>{"api", "vault"}));
  EXPECT_TRUE(ok->user.extra.count(kExtraPodName) == 0);
}

TEST_F(JwtTest, SubjectMustMatchTheServiceAccount) {
  auto token = signer_->SignJson(
      R"({"iss":"https://kubernetes.default.svc.cluster.local","sub":"admin",)"
      R"("aud":["https://kubernetes.default.svc.cluster.local"],"exp":1700003600,"iat":1700000000,)"
      R"("kubernetes.io":{"namespace":"a","serviceaccount":{"name":"b","uid":"c"}}})");
  ASSERT_TRUE(token.ok());
  EXPECT_FALSE(verifier_->Verify(*token, At(kNow)).ok());
  EXPECT_FALSE(signer_->SignJson("[1,2]").ok());
  EXPECT_FALSE(signer_->Sign(ServiceAccountClaims{}).ok());
}

}  // namespace
}  // namespace mk8s::pki
