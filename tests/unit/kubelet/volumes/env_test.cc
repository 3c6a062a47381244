// ResolveEnv: Service links, envFrom, env with $(VAR) expansion and valueFrom.
#include "pki/encoding.h"
#include "volumes_fixture.h"

namespace mk8s::kubelet::test {
namespace {

using EnvList = std::vector<std::pair<std::string, std::string>>;

client::ObjectPtr Service(const std::string& ns, const std::string& name, const std::string& ip,
                          const json& ports) {
  return std::make_shared<const json>(json{{"apiVersion", "v1"},
                                           {"kind", "Service"},
                                           {"metadata", {{"name", name}, {"namespace", ns}}},
                                           {"spec", {{"clusterIP", ip}, {"ports", ports}}}});
}

std::map<std::string, std::string> AsMap(const EnvList& env) {
  return std::map<std::string, std::string>(env.begin(), env.end());
}

std::vector<std::string> Names(const EnvList& env) {
  std::vector<std::string> names;
  for (const auto& [name, value] : env) names.push_back(name);
  return names;
}

class EnvTest : public VolumesTest {
 protected:
  json Pod(const json& container) {
    json pod = MakeVolumePod("web-0", json::array());
    pod["spec"]["containers"] = json::array({container});
    return pod;
  }
  Result<EnvList> Resolve(const json& pod, const std::vector<client::ObjectPtr>& services = {},
                          const EnvOptions& options = {}) {
    return ResolveEnv(pod, pod["spec"]["containers"][0], api(), services, "10.1.0.7", "192.0.2.10",
                      options);
  }
  std::vector<client::ObjectPtr> KubernetesService() {
    return {Service("default", "kubernetes", "10.152.183.1",
                    json::array({{{"name", "https"}, {"port", 443}, {"protocol", "TCP"}}}))};
  }
};

TEST_F(EnvTest, ExpansionAndOrder) {
  Create(client::kConfigMaps,
         controllers::test::MakeConfigMap("base", {{"FROM_CM", "cm"}, {"A", "from-cm"}}));
  json container = {
      {"name", "app"},
      {"image", "busybox"},
      {"envFrom", json::array({{{"configMapRef", {{"name", "base"}}}}})},
      {"env", json::array({{{"name", "A"}, {"value", "a"}},
                           {{"name", "B"}, {"value", "$(A)-b-$(FROM_CM)"}},
                           {{"name", "ESCAPED"}, {"value", "$$(A) costs $$5"}},
                           {{"name", "UNKNOWN"}, {"value", "$(NOPE) and $(LATER)"}},
                           {{"name", "OPEN"}, {"value", "$(A"}},
                           {{"name", "DOLLAR"}, {"value", "a$b$"}},
                           {{"name", "HOST"},
                            {"value", "$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"}},
                           {{"name", "LATER"}, {"value", "late"}},
                           {{"name", "EMPTY"}, {"value", ""}}})}};
  auto env = Resolve(Pod(container), KubernetesService());
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  const std::vector<std::string> expected_order = {
      "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBERNETES_SERVICE_PORT_HTTPS",
      "KUBERNETES_PORT", "KUBERNETES_PORT_443_TCP", "KUBERNETES_PORT_443_TCP_PROTO",
      "KUBERNETES_PORT_443_TCP_PORT", "KUBERNETES_PORT_443_TCP_ADDR",
      // envFrom keys (sorted), then env in order; A keeps its envFrom position with env's value.
      "A", "FROM_CM", "B", "ESCAPED", "UNKNOWN", "OPEN", "DOLLAR", "HOST", "LATER", "EMPTY"};
  EXPECT_EQ(Names(*env), expected_order);
  auto values = AsMap(*env);
  EXPECT_EQ(values["A"], "a");
  EXPECT_EQ(values["B"], "a-b-cm");
  EXPECT_EQ(values["ESCAPED"], "$(A) costs $5");
  EXPECT_EQ(values["UNKNOWN"], "$(NOPE) and $(LATER)") << "only earlier variables expand";
  EXPECT_EQ(values["OPEN"], "$(A");
  EXPECT_EQ(values["DOLLAR"], "a$b$");
  EXPECT_EQ(values["HOST"], "10.152.183.1:443");
  EXPECT_EQ(values["EMPTY"], "");
}

TEST_F(EnvTest, ServiceVariablesForTwoPorts) {
  std::vector<client::ObjectPtr> services = KubernetesService();
  services.push_back(
      Service(ns(), "my-svc", "10.152.183.20",
              json::array({{{"name", "http"}, {"port", 80}},
                           {{"name", "dns-udp"}, {"port", 53}, {"protocol", "UDP"}}})));
  services.push_back(Service(ns(), "headless", "None", json::array({{{"port", 80}}})));
  services.push_back(Service("elsewhere", "other", "10.152.183.30", json::array({{{"port", 80}}})));
  auto env = Resolve(Pod({{"name", "app"}, {"image", "busybox"}}), services);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  const EnvList mine(env->begin() + 8, env->end());  // after the 8 KUBERNETES_* ones
  const EnvList expected = {{"MY_SVC_SERVICE_HOST", "10.152.183.20"},
                            {"MY_SVC_SERVICE_PORT", "80"},
                            {"MY_SVC_SERVICE_PORT_HTTP", "80"},
                            {"MY_SVC_SERVICE_PORT_DNS_UDP", "53"},
                            {"MY_SVC_PORT", "tcp://10.152.183.20:80"},
                            {"MY_SVC_PORT_80_TCP", "tcp://10.152.183.20:80"},
                            {"MY_SVC_PORT_80_TCP_PROTO", "tcp"},
                            {"MY_SVC_PORT_80_TCP_PORT", "80"},
                            {"MY_SVC_PORT_80_TCP_ADDR", "10.152.183.20"},
                            {"MY_SVC_PORT_53_UDP", "udp://10.152.183.20:53"},
                            {"MY_SVC_PORT_53_UDP_PROTO", "udp"},
                            {"MY_SVC_PORT_53_UDP_PORT", "53"},
                            {"MY_SVC_PORT_53_UDP_ADDR", "10.152.183.20"}};
  EXPECT_EQ(mine, expected);
  EXPECT_EQ(AsMap(*env)["KUBERNETES_PORT"], "tcp://10.152.183.1:443");
  for (const auto& [name, value] : *env) {
    EXPECT_EQ(name.find("HEADLESS"), std::string::npos) << name;
    EXPECT_EQ(name.find("OTHER"), std::string::npos) << name;
  }

  // enableServiceLinks=false: only the kubernetes Service's variables.
  json pod = Pod({{"name", "app"}, {"image", "busybox"}});
  pod["spec"]["enableServiceLinks"] = false;
  auto unlinked = Resolve(pod, services);
  ASSERT_TRUE(unlinked.ok());
  EXPECT_EQ(unlinked->size(), 8u);
  for (const auto& [name, value] : *unlinked) EXPECT_EQ(name.rfind("KUBERNETES_", 0), 0u) << name;
}

TEST_F(EnvTest, EnvFromPrefixInvalidKeysAndOptional) {
  Create(client::kConfigMaps, controllers::test::MakeConfigMap(
                                  "cm", {{"good", "1"}, {"1bad", "2"}, {"with space", "3"}}));
  Create(client::kSecrets,
         {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", "sec"}}},
          {"data", {{"TOKEN", pki::Base64Encode("t0k")}, {"a=b", pki::Base64Encode("x")}}}});
  json container = {
      {"name", "app"},
      {"image", "busybox"},
      {"envFrom", json::array({{{"configMapRef", {{"name", "cm"}}}, {"prefix", "CFG_"}},
                               {{"configMapRef", {{"name", "cm"}}}},
                               {{"secretRef", {{"name", "sec"}}}},
                               {{"secretRef", {{"name", "absent"}, {"optional", true}}}}})}};
  std::vector<std::string> warnings;
  EnvOptions options;
  options.warnings = &warnings;
  auto env = Resolve(Pod(container), {}, options);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(Names(*env), (std::vector<std::string>{"CFG_1bad", "CFG_good", "good", "TOKEN"}));
  EXPECT_EQ(AsMap(*env)["TOKEN"], "t0k");
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_NE(warnings[0].find("Keys [CFG_with space]"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("Keys [1bad, with space] from the EnvFrom configMap " + ns() + "/cm"),
            std::string::npos)
      << warnings[1];
  EXPECT_NE(warnings[2].find("Keys [a=b] from the EnvFrom secret " + ns() + "/sec"),
            std::string::npos)
      << warnings[2];

  container["envFrom"] = json::array({{{"configMapRef", {{"name", "absent"}}}}});
  auto missing = Resolve(Pod(container));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(), "envFrom: configmap \"absent\" not found");
}

TEST_F(EnvTest, FieldAndResourceReferences) {
  auto field = [](const std::string& name, const std::string& path) {
    return json{{"name", name}, {"valueFrom", {{"fieldRef", {{"fieldPath", path}}}}}};
  };
  auto resource = [](const std::string& name, const std::string& what, const std::string& divisor) {
    json ref = {{"resource", what}};
    if (!divisor.empty()) ref["divisor"] = divisor;
    return json{{"name", name}, {"valueFrom", {{"resourceFieldRef", ref}}}};
  };
  json container = {
      {"name", "app"},
      {"image", "busybox"},
      {"resources",
       {{"limits", {{"memory", "256Mi"}}}, {"requests", {{"cpu", "250m"}, {"memory", "100Mi"}}}}},
      {"env",
       json::array(
           {field("NAME", "metadata.name"), field("NS", "metadata.namespace"),
            field("UID", "metadata.uid"), field("APP", "metadata.labels['app']"),
            field("NOTE", "metadata.annotations['note']"),
            field("MISSING_LABEL", "metadata.labels['nope']"), field("LABELS", "metadata.labels"),
            field("NODE", "spec.nodeName"), field("SA", "spec.serviceAccountName"),
            field("POD_IP", "status.podIP"), field("POD_IPS", "status.podIPs"),
            field("HOST_IP", "status.hostIP"), field("HOST_IPS", "status.hostIPs"),
            resource("MEM_MI", "limits.memory", "1Mi"), resource("MEM", "limits.memory", ""),
            resource("CPU_REQ_M", "requests.cpu", "1m"), resource("CPU_REQ", "requests.cpu", ""),
            resource("CPU_LIMIT", "limits.cpu", ""),
            resource("MEM_REQ_KI", "requests.memory", "1Ki")})}};
  json pod = Pod(container);
  pod["metadata"]["labels"] = {{"app", "web"}, {"tier", "front"}};
  pod["metadata"]["annotations"] = {{"note", "hello"}};
  pod["spec"]["nodeName"] = "node-1";
  pod["spec"]["serviceAccountName"] = "builder";
  pod["status"] = {{"podIPs", json::array({{{"ip", "10.1.0.7"}}, {{"ip", "fd00::7"}}})},
                   {"hostIPs", json::array({{{"ip", "192.0.2.10"}}})}};
  const json allocatable = {{"cpu", "4"}, {"memory", "8Gi"}};
  EnvOptions options;
  options.node_allocatable = &allocatable;
  auto env = Resolve(pod, {}, options);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto values = AsMap(*env);
  EXPECT_EQ(values["NAME"], "web-0");
  EXPECT_EQ(values["NS"], ns());
  EXPECT_EQ(values["UID"], Uid(pod));
  EXPECT_EQ(values["APP"], "web");
  EXPECT_EQ(values["NOTE"], "hello");
  EXPECT_EQ(values["MISSING_LABEL"], "");
  EXPECT_EQ(values["LABELS"], "app=\"web\"\ntier=\"front\"");
  EXPECT_EQ(values["NODE"], "node-1");
  EXPECT_EQ(values["SA"], "builder");
  EXPECT_EQ(values["POD_IP"], "10.1.0.7");
  EXPECT_EQ(values["POD_IPS"], "10.1.0.7,fd00::7");
  EXPECT_EQ(values["HOST_IP"], "192.0.2.10");
  EXPECT_EQ(values["HOST_IPS"], "192.0.2.10");
  EXPECT_EQ(values["MEM_MI"], "256");
  EXPECT_EQ(values["MEM"], "268435456");
  EXPECT_EQ(values["CPU_REQ_M"], "250");
  EXPECT_EQ(values["CPU_REQ"], "1") << "ceil(0.25 cores)";
  EXPECT_EQ(values["CPU_LIMIT"], "4") << "no limit: the node's allocatable";
  EXPECT_EQ(values["MEM_REQ_KI"], "102400");

  json bad = container;
  bad["env"] = json::array({field("X", "spec.containers")});
  auto unsupported = Resolve(Pod(bad));
  ASSERT_FALSE(unsupported.ok());
  EXPECT_EQ(unsupported.status().message(), "env \"X\": unsupported fieldPath: spec.containers");
  bad["env"] = json::array({resource("Y", "limits.gpu", "")});
  EXPECT_FALSE(Resolve(Pod(bad)).ok());
}

TEST_F(EnvTest, KeyReferences) {
  Create(client::kConfigMaps, controllers::test::MakeConfigMap("db", {{"host", "db.local"}}));
  Create(client::kSecrets, {{"apiVersion", "v1"},
                            {"kind", "Secret"},
                            {"metadata", {{"name", "db"}}},
                            {"data", {{"password", pki::Base64Encode("p@ss")}}}});
  auto key_ref = [](const std::string& var, const char* kind, const std::string& name,
                    const std::string& key, bool optional) {
    json ref = {{"name", name}, {"key", key}};
    if (optional) ref["optional"] = true;
    return json{{"name", var}, {"valueFrom", {{kind, ref}}}};
  };
  json container = {{"name", "app"},
                    {"image", "busybox"},
                    {"env", json::array({key_ref("HOST", "configMapKeyRef", "db", "host", false),
                                         key_ref("PASS", "secretKeyRef", "db", "password", false),
                                         key_ref("OPT_KEY", "configMapKeyRef", "db", "port", true),
                                         key_ref("OPT_OBJ", "secretKeyRef", "absent", "x", true),
                                         {{"name", "URL"}, {"value", "postgres://$(HOST)"}}})}};
  auto env = Resolve(Pod(container));
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(*env,
            (EnvList{{"HOST", "db.local"}, {"PASS", "p@ss"}, {"URL", "postgres://db.local"}}));

  container["env"] = json::array({key_ref("PORT", "configMapKeyRef", "db", "port", false)});
  auto missing_key = Resolve(Pod(container));
  ASSERT_FALSE(missing_key.ok());
  EXPECT_EQ(missing_key.status().code(), Code::kNotFound);
  EXPECT_EQ(missing_key.status().message(),
            "env \"PORT\": couldn't find key port in ConfigMap " + ns() + "/db");
  container["env"] = json::array({key_ref("S", "secretKeyRef", "absent", "x", false)});
  auto missing_secret = Resolve(Pod(container));
  ASSERT_FALSE(missing_secret.ok());
  EXPECT_EQ(missing_secret.status().message(), "env \"S\": secret \"absent\" not found");
}

TEST(ExpandVariablesTest, UpstreamRules) {
  auto lookup = [](const std::string& name, std::string* value) {
    if (name != "V") return false;
    *value = "v";
    return true;
  };
  EXPECT_EQ(ExpandVariables("$(V)", lookup), "v");
  EXPECT_EQ(ExpandVariables("$$(V)", lookup), "$(V)");
  EXPECT_EQ(ExpandVariables("$$$(V)", lookup), "$v");
  EXPECT_EQ(ExpandVariables("$(V)$(V)x", lookup), "vvx");
  EXPECT_EQ(ExpandVariables("$(X)", lookup), "$(X)");
  EXPECT_EQ(ExpandVariables("$()", lookup), "$()");
  EXPECT_EQ(ExpandVariables("$", lookup), "$");
  EXPECT_EQ(ExpandVariables("x$", lookup), "x$");
  EXPECT_EQ(ExpandVariables("$(V", lookup), "$(V");
  EXPECT_EQ(ExpandVariables("$V", lookup), "$V");
  EXPECT_EQ(ExpandVariables("", lookup), "");
}

}  // namespace
}  // namespace mk8s::kubelet::test
