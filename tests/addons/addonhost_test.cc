// The addon host against the fixture libraries (tests/addons/fixtures), without an API server:
// lifecycle, persistence, argument validation, dependencies, every broken-library case, contained
// throws, timeouts and the crash-loop guard's bookkeeping.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "addonhost/addon_host.h"
#include "addonhost/persisted_state.h"

namespace mk8s::addonhost {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class AddonHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("mk8s-addonhost-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "addons");
    fs::create_directories(root_ / "state");
  }
  void TearDown() override {
    host_.reset();
    fs::remove_all(root_);
  }

  // Copies fixture `target` (e.g. "fixture_good") into the addons folder.
  void Install(const std::string& target) {
    fs::copy_file(fs::path(MK8S_FIXTURES_DIR) / (target + ".so"),
                  root_ / "addons" / (target + ".so"), fs::copy_options::overwrite_existing);
  }

  AddonHost& Start(milliseconds timeout = milliseconds(10000)) {
    host_.reset();
    AddonHostOptions options;
    options.addon_dirs = {(root_ / "addons").string()};
    options.state_dir = (root_ / "state").string();
    options.call_timeout = timeout;
    options.status_timeout = timeout;
    Result<std::unique_ptr<AddonHost>> host = AddonHost::Start(std::move(options));
    EXPECT_TRUE(host.ok()) << host.status().message();
    host_ = std::move(*host);
    return *host_;
  }

  AddonInfo Info(const std::string& name, bool with_health = true) {
    for (AddonInfo& info : host_->List(with_health)) {
      if (info.name == name) return info;
    }
    ADD_FAILURE() << "no addon " << name;
    return {};
  }

  std::string StateFile(const std::string& addon, const std::string& file) {
    std::ifstream in(root_ / "state" / "addon-state" / addon / file);
    std::string text;
    std::getline(in, text);
    return text;
  }
  bool HasStateFile(const std::string& addon, const std::string& file) {
    return fs::exists(root_ / "state" / "addon-state" / addon / file);
  }

  fs::path root_;
  std::unique_ptr<AddonHost> host_;
};

TEST_F(AddonHostTest, EnableStatusDisableAreIdempotent) {
  Install("fixture_good");
  AddonHost& host = Start();
  AddonInfo info = Info("fixture-good");
  EXPECT_EQ(info.state, "disabled");
  EXPECT_EQ(info.description, "Test fixture fixture-good");
  EXPECT_EQ(info.arg_specs.size(), 3u);

  Result<AddonOutcome> enabled = host.Enable("fixture-good", "greeting=hi;count=3", false);
  ASSERT_TRUE(enabled.ok()) << enabled.status().message();
  EXPECT_TRUE(enabled->changed);
  EXPECT_EQ(StateFile("fixture-good", "enabled"), "greeting=hi;count=3");
  EXPECT_EQ(StateFile("fixture-good", "started"), "yes");
  info = Info("fixture-good");
  EXPECT_EQ(info.state, "enabled");
  EXPECT_TRUE(info.healthy);
  EXPECT_EQ(info.message, "greeting hi x3");

  Result<AddonOutcome> again = host.Enable("fixture-good", "greeting=hi;count=3", false);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_EQ(again->message, "Addon fixture-good is already enabled");
  EXPECT_EQ(StateFile("fixture-good", "enable-count"), "1");

  Result<AddonOutcome> disabled = host.Disable("fixture-good");
  ASSERT_TRUE(disabled.ok()) << disabled.status().message();
  EXPECT_TRUE(disabled->changed);
  EXPECT_FALSE(HasStateFile("fixture-good", "started"));
  EXPECT_TRUE(HasStateFile("fixture-good", "disabled"));
  Result<AddonOutcome> twice = host.Disable("fixture-good");
  ASSERT_TRUE(twice.ok());
  EXPECT_FALSE(twice->changed);
}

TEST_F(AddonHostTest, NewArgumentsReEnable) {
  Install("fixture_good");
  AddonHost& host = Start();
  ASSERT_TRUE(host.Enable("fixture-good", "", false).ok());
  EXPECT_EQ(StateFile("fixture-good", "enabled"), "greeting=hello;count=1");
  // The bare form sets the first argument.
  ASSERT_TRUE(host.Enable("fixture-good", "howdy", false).ok());
  EXPECT_EQ(StateFile("fixture-good", "enabled"), "greeting=howdy;count=1");
  EXPECT_EQ(Info("fixture-good").args, "howdy");
}

TEST_F(AddonHostTest, EnabledAddonsComeBackAfterRestart) {
  Install("fixture_good");
  ASSERT_TRUE(Start().Enable("fixture-good", "greeting=again", false).ok());
  AddonHost& host = Start();  // a new daemon on the same state folder
  AddonInfo info = Info("fixture-good");
  EXPECT_EQ(info.state, "enabled");
  EXPECT_TRUE(info.enabled);
  EXPECT_EQ(info.args, "greeting=again");
  EXPECT_EQ(StateFile("fixture-good", "enable-count"), "2");
  EXPECT_EQ(StateFile("fixture-good", "started"), "yes");
  ASSERT_TRUE(host.Disable("fixture-good").ok());
  Start();
  EXPECT_EQ(Info("fixture-good").state, "disabled");
}

TEST_F(AddonHostTest, WrongArgumentsChangeNothing) {
  Install("fixture_good");
  AddonHost& host = Start();
  for (const char* args :
       {"count=99", "count=two", "nope=1", "greeting=HI", "mode=bogus", "count=1;count=2"}) {
    Result<AddonOutcome> outcome = host.Enable("fixture-good", args, false);
    ASSERT_FALSE(outcome.ok()) << args;
    EXPECT_EQ(outcome.status().code(), Code::kInvalidArgument) << args;
    EXPECT_EQ(outcome.status().message().find('\n'), std::string::npos);
  }
  EXPECT_NE(host.Enable("fixture-good", "count=99", false)
                .status()
                .message()
                .find("must be an integer from 1 to 10, got '99'"),
            std::string::npos);
  EXPECT_FALSE(HasStateFile("fixture-good", "enabled"));
  EXPECT_FALSE(HasStateFile("fixture-good", "enable-count"));
  EXPECT_TRUE(host.Enable("fixture-good", "count=5", true).ok());  // dry run: valid, no change
  EXPECT_FALSE(HasStateFile("fixture-good", "enabled"));
  EXPECT_EQ(host.Enable("nosuch", "", false).status().code(), Code::kNotFound);
}

TEST_F(AddonHostTest, DependenciesAreEnforced) {
  Install("fixture_good");
  Install("fixture_dependent");
  AddonHost& host = Start();
  Result<AddonOutcome> early = host.Enable("fixture-dependent", "", false);
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.status().code(), Code::kConflict);
  EXPECT_NE(early.status().message().find("needs fixture-good"), std::string::npos);
  ASSERT_TRUE(host.Enable("fixture-good", "", false).ok());
  ASSERT_TRUE(host.Enable("fixture-dependent", "", false).ok());
  Result<AddonOutcome> pulled = host.Disable("fixture-good");
  ASSERT_FALSE(pulled.ok());
  EXPECT_NE(pulled.status().message().find("disable fixture-dependent first"), std::string::npos);
  Start();  // restored in dependency order
  EXPECT_EQ(Info("fixture-good").state, "enabled");
  EXPECT_EQ(Info("fixture-dependent").state, "enabled");
}

struct BrokenCase {
  std::string target;
  std::string name;
  std::string why;
};
void PrintTo(const BrokenCase& broken, std::ostream* out) { *out << broken.target; }

class BrokenLibraryTest : public AddonHostTest, public ::testing::WithParamInterface<BrokenCase> {};

TEST_P(BrokenLibraryTest, IsRefusedAndTheHostKeepsWorking) {
  Install(GetParam().target);
  Install("fixture_good");
  AddonHost& host = Start();
  AddonInfo info = Info(GetParam().name);
  EXPECT_EQ(info.state, "refused");
  EXPECT_NE(info.message.find(GetParam().why), std::string::npos) << info.message;
  Result<AddonOutcome> outcome = host.Enable(GetParam().name, "", false);
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(outcome.status().message().find(GetParam().why), std::string::npos);
  EXPECT_TRUE(host.Enable("fixture-good", "", false).ok());
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, BrokenLibraryTest,
    ::testing::Values(
        BrokenCase{"fixture_bad_version", "fixture-bad-version", "built for ABI version 99.0"},
        BrokenCase{"fixture_no_version", "fixture-no-version", "mk8s_addon_abi_version"},
        BrokenCase{"fixture_no_init", "fixture-no-init",
                   "does not export the symbol mk8s_addon_init"},
        BrokenCase{"fixture_init_fails", "fixture-init-fails", "mk8s_addon_init failed"},
        BrokenCase{"fixture_short_struct", "fixture-short-struct", "too short (struct_size 16"}),
    [](const auto& info) { return info.param.target; });

TEST_F(AddonHostTest, NotALibraryIsRefused) {
  std::ofstream(root_ / "addons" / "junk.so") << "not an ELF file";
  Start();
  AddonInfo info = Info("junk");
  EXPECT_EQ(info.state, "refused");
  EXPECT_NE(info.message.find("cannot load it"), std::string::npos) << info.message;
}

TEST_F(AddonHostTest, AnExceptionThroughTheRawAbiIsContained) {
  Install("fixture_throws");
  Install("fixture_good");
  AddonHost& host = Start();
  Result<AddonOutcome> outcome = host.Enable("fixture-throws", "", false);
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(outcome.status().message().find("raw addon threw"), std::string::npos)
      << outcome.status().message();
  EXPECT_NE(outcome.status().message().find("escape through the C ABI"), std::string::npos);
  EXPECT_EQ(host.Enable("fixture-throws", "", false).status().code(), Code::kUnavailable);
  EXPECT_TRUE(host.Enable("fixture-good", "", false).ok());
}

TEST_F(AddonHostTest, TheWrapperTurnsExceptionsIntoErrors) {
  Install("fixture_good");
  AddonHost& host = Start();
  Result<AddonOutcome> thrown = host.Enable("fixture-good", "mode=throw-enable", false);
  ASSERT_FALSE(thrown.ok());
  EXPECT_NE(thrown.status().message().find("unexpected exception: boom"), std::string::npos);
  Result<AddonOutcome> failed = host.Enable("fixture-good", "mode=fail-enable", false);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("told to fail"), std::string::npos);
  EXPECT_FALSE(Info("fixture-good").enabled);
  EXPECT_TRUE(host.Enable("fixture-good", "", false).ok());  // not faulted: still usable
}

TEST_F(AddonHostTest, AFailedStartUndoesTheEnable) {
  Install("fixture_good");
  AddonHost& host = Start();
  Result<AddonOutcome> outcome = host.Enable("fixture-good", "mode=fail-start", false);
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(outcome.status().message().find("cannot start: told to"), std::string::npos);
  EXPECT_TRUE(HasStateFile("fixture-good", "disabled"));
  EXPECT_FALSE(HasStateFile("fixture-good", "enabled"));
  EXPECT_FALSE(Info("fixture-good").enabled);
}

TEST_F(AddonHostTest, AHungCallTimesOutAndOnlyThatAddonFails) {
  Install("fixture_good");
  Install("fixture_other");
  AddonHost& host = Start(milliseconds(300));
  const auto started = std::chrono::steady_clock::now();
  Result<AddonOutcome> outcome = host.Enable("fixture-good", "mode=hang-enable", false);
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), Code::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  EXPECT_NE(outcome.status().message().find("did not return within 300 ms"), std::string::npos);
  AddonInfo info = Info("fixture-good");
  EXPECT_FALSE(info.enabled);
  EXPECT_EQ(host.Enable("fixture-good", "", false).status().code(), Code::kUnavailable);
  EXPECT_TRUE(host.Enable("fixture-other", "", false).ok());
  EXPECT_EQ(Info("fixture-other").state, "enabled");
  host_.reset();  // shuts down without waiting for the hung thread
}

TEST_F(AddonHostTest, UnhealthyIsReported) {
  Install("fixture_good");
  AddonHost& host = Start();
  ASSERT_TRUE(host.Enable("fixture-good", "mode=unhealthy", false).ok());
  AddonInfo info = Info("fixture-good");
  EXPECT_EQ(info.state, "enabled");
  EXPECT_FALSE(info.healthy);
}

TEST_F(AddonHostTest, CrashLoopGuardLeavesTheAddonDisabledAfterTwoDeaths) {
  Install("fixture_good");
  ASSERT_TRUE(Start().Enable("fixture-good", "", false).ok());
  host_.reset();
  const std::string data = (root_ / "state" / "addon-state").string();
  // As if mk8sd had died while starting it: one death is forgiven...
  ASSERT_TRUE(WriteStartMarker(data + "/starting", "fixture-good").ok());
  Start();
  EXPECT_EQ(Info("fixture-good").state, "enabled");
  Result<PersistedState> state = LoadPersistedState(data + "/addons.json");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->crashes.count("fixture-good"), 0u);  // it survived this start
  host_.reset();
  // ...two in a row are not.
  ASSERT_TRUE(WriteStartMarker(data + "/starting", "fixture-good").ok());
  PersistedState crashed = *state;
  crashed.crashes["fixture-good"] = 1;
  ASSERT_TRUE(SavePersistedState(data + "/addons.json", crashed).ok());
  AddonHost& host = Start();
  AddonInfo info = Info("fixture-good");
  EXPECT_EQ(info.state, "disabled");
  EXPECT_FALSE(info.enabled);
  EXPECT_NE(info.message.find("died twice in a row"), std::string::npos) << info.message;
  EXPECT_FALSE(fs::exists(data + "/starting"));
  ASSERT_TRUE(host.Enable("fixture-good", "", false).ok());  // the user's enable clears the note
  EXPECT_EQ(Info("fixture-good").message, "greeting hello x1");
}

}  // namespace
}  // namespace mk8s::addonhost
