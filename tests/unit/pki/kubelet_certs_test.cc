// Tests of the kubelet serving certificate and the API server's kubelet client certificate.
#include "pki/kubelet_certs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>

#include "pki/cluster_pki.h"
#include "test_util.h"

namespace mk8s::pki {
namespace {

using testing::ReadAll;
using testing::TempDir;

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(KubeletCertsTest, ServingCertNamesTheNodeAndIsReused) {
  TempDir tmp;
  const std::string dir = tmp.File("credentials");
  auto pki = ClusterPki::LoadOrCreate(dir, {});
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  auto files = LoadOrCreateKubeletServingCert(dir, "node-1", {"192.168.1.10"});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(files->cert_file, dir + "/kubelet.crt");
  EXPECT_EQ(files->key_file, dir + "/kubelet.key");
  EXPECT_EQ(files->ca_file, dir + "/ca.crt");
  EXPECT_EQ(ModeOf(files->key_file), 0600u);
  const std::string cert = ReadAll(files->cert_file);
  auto info = ParseCertificate(cert);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(Has(info->dns_names, "node-1"));
  EXPECT_TRUE(Has(info->dns_names, "localhost"));
  EXPECT_TRUE(Has(info->ip_addresses, "192.168.1.10"));
  EXPECT_TRUE(Has(info->ip_addresses, "127.0.0.1"));
  EXPECT_TRUE(
      VerifyCertificate(cert, pki->ca().cert_pem, std::chrono::system_clock::now(), Usage::kServer)
          .ok());

  // Same inputs: the same certificate; a new node IP: re-issued.
  ASSERT_TRUE(LoadOrCreateKubeletServingCert(dir, "node-1", {"192.168.1.10"}).ok());
  EXPECT_EQ(ReadAll(files->cert_file), cert);
  ASSERT_TRUE(LoadOrCreateKubeletServingCert(dir, "node-1", {"10.0.0.7"}).ok());
  auto reissued = ParseCertificate(ReadAll(files->cert_file));
  ASSERT_TRUE(reissued.ok());
  EXPECT_TRUE(Has(reissued->ip_addresses, "10.0.0.7"));
}

TEST(KubeletCertsTest, ClientCertIsTheApiServersKubeletIdentity) {
  TempDir tmp;
  const std::string dir = tmp.File("credentials");
  auto pki = ClusterPki::LoadOrCreate(dir, {});
  ASSERT_TRUE(pki.ok());
  auto files = LoadOrCreateKubeletClientCert(dir);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(ModeOf(files->key_file), 0600u);
  auto user = AuthenticateClientCert(ReadAll(files->cert_file), pki->ca().cert_pem,
                                     std::chrono::system_clock::now());
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(user->user, "kube-apiserver-kubelet-client");
  EXPECT_TRUE(Has(user->groups, "system:masters"));
}

TEST(KubeletCertsTest, NeedsTheClusterCaAndValidIps) {
  TempDir tmp;
  auto missing = LoadOrCreateKubeletServingCert(tmp.File("none"), "n", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("start the API server first"), std::string::npos);
  const std::string dir = tmp.File("credentials");
  ASSERT_TRUE(ClusterPki::LoadOrCreate(dir, {}).ok());
  auto bad = LoadOrCreateKubeletServingCert(dir, "n", {"not-an-ip"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace mk8s::pki
