// The mk8s command tree (CLI11). Parsing only: each subcommand fills an options struct from
// commands.h and names the function that runs it. CLI11 is included here and nowhere else.
#include "cli/app.h"

#include <CLI/CLI.hpp>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <string>

#include "cli/commands.h"
#include "cli/completion.h"
#include "cli/format.h"
#include "common/paths.h"

namespace mk8s::cli {
namespace {

const CLI::Range kSeconds(1, 24 * 3600);
const CLI::Range kNonNegative(int64_t{0}, std::numeric_limits<int64_t>::max());

// Everything the parser fills in; the chosen subcommand's callback sets `action`.
struct ParsedCommandLine {
  GlobalOptions global;
  StartOptions start;
  StopOptions stop;
  StatusOptions status;
  ResetOptions reset;
  InspectOptions inspect;
  std::string file;  // dbctl backup/restore
  std::string key;   // dbctl get/del
  DbPutOptions put;
  DbListOptions list;
  DbWatchOptions watch;
  std::vector<std::string> addons;         // enable/disable
  std::vector<std::string> files;          // images import
  std::string shell;                       // completion
  std::vector<std::string> complete_args;  // __complete
  // What each option's value completes to in the shell scripts; options not listed complete to
  // their IsMember choices, or to nothing.
  std::map<const CLI::Option*, CompletionKind> completes;
  const CLI::App* passthrough = nullptr;  // `kubectl`: completed by kubectl itself
  std::function<int()> action;
};

// Registers what `option`'s values complete to; returns `option` for chaining.
CLI::Option* Completes(ParsedCommandLine& cl, CLI::Option* option, CompletionKind kind) {
  cl.completes[option] = kind;
  return option;
}

void AddLifecycleCommands(CLI::App& app, ParsedCommandLine& cl) {
  CLI::App* start = app.add_subcommand("start", "Start mk8sd in the background");
  start->add_flag("--wait-ready", cl.start.wait_ready, "Also wait until every component is ready");
  start->add_option("--timeout", cl.start.timeout_seconds, "How long to wait, in seconds")
      ->capture_default_str()
      ->check(kSeconds);
  start->callback([&] { cl.action = [&] { return RunStart(cl.global, cl.start); }; });

  CLI::App* stop = app.add_subcommand("stop", "Stop mk8sd and wait until it has exited");
  stop->add_option("--timeout", cl.stop.timeout_seconds, "How long to wait, in seconds")
      ->capture_default_str()
      ->check(kSeconds);
  stop->callback([&] { cl.action = [&] { return RunStop(cl.global, cl.stop); }; });

  CLI::App* status =
      app.add_subcommand("status", "Show whether mk8s runs, its datastore and addons");
  status->add_flag("--wait-ready", cl.status.wait_ready, "Wait until every component is ready");
  status
      ->add_option("--timeout", cl.status.timeout_seconds,
                   "How long --wait-ready waits, in seconds")
      ->capture_default_str()
      ->check(kSeconds);
  status->add_option("--format", cl.status.format, "Output format")
      ->capture_default_str()
      ->check(CLI::IsMember({"pretty", "short", "yaml"}));
  Completes(
      cl,
      status->add_option("-a,--addon", cl.status.addon, "Print only whether this addon is enabled"),
      CompletionKind::kAddon)
      ->type_name("ADDON");
  status->callback([&] { cl.action = [&] { return RunStatus(cl.global, cl.status); }; });

  CLI::App* reset = app.add_subcommand("reset", "Stop mk8s and remove all of its state");
  reset->add_flag("-y,--yes", cl.reset.yes, "Do not ask for confirmation");
  reset->callback([&] { cl.action = [&] { return RunReset(cl.global, cl.reset); }; });
}

void AddToolCommands(CLI::App& app, ParsedCommandLine& cl) {
  app.add_subcommand("version", "Print the versions of mk8s and of the running mk8sd")
      ->callback([&] { cl.action = [&] { return RunVersion(cl.global); }; });
  app.add_subcommand("config", "Print the admin kubeconfig of the running cluster")->callback([&] {
    cl.action = [&] { return RunConfig(cl.global); };
  });

  // Everything after `kubectl` belongs to kubectl, including --help and -o.
  CLI::App* kubectl = app.add_subcommand("kubectl", "Run kubectl against this cluster");
  kubectl->prefix_command();
  kubectl->allow_extras();
  kubectl->fallthrough(false);
  kubectl->set_help_flag();
  cl.passthrough = kubectl;
  kubectl->callback([&cl, kubectl] {
    cl.action = [&cl, args = kubectl->remaining()] { return RunKubectl(cl.global, args); };
  });

  CLI::App* inspect = app.add_subcommand("inspect", "Write a diagnostics tarball");
  Completes(cl,
            inspect->add_option("-o,--output", cl.inspect.output,
                                "Tarball to write (default ./mk8s-inspect-<timestamp>.tar.gz)"),
            CompletionKind::kFile)
      ->type_name("FILE");
  inspect->callback([&] { cl.action = [&] { return RunInspect(cl.global, cl.inspect); }; });
}

void AddAddonCommands(CLI::App& app, ParsedCommandLine& cl) {
  CLI::App* enable = app.add_subcommand("enable", "Enable addons (their dependencies first)");
  Completes(cl,
            enable->add_option("addons", cl.addons,
                               "NAME or NAME:ARGS ('mk8s addons list' shows the ARGS)"),
            CompletionKind::kAddonWithArgs)
      ->required()
      ->type_name("NAME[:ARGS]");
  enable->callback([&] { cl.action = [&] { return RunEnable(cl.global, cl.addons); }; });

  CLI::App* disable = app.add_subcommand("disable", "Disable addons");
  Completes(cl, disable->add_option("addons", cl.addons, "Addon names"),
            CompletionKind::kEnabledAddon)
      ->required()
      ->type_name("NAME");
  disable->callback([&] { cl.action = [&] { return RunDisable(cl.global, cl.addons); }; });

  CLI::App* addons = app.add_subcommand("addons", "Manage addons");
  addons->require_subcommand(1);
  addons->add_subcommand("list", "List the addons with their state, arguments and health")
      ->callback([&] { cl.action = [&] { return RunAddonsList(cl.global); }; });
}

void AddImageCommands(CLI::App& app, ParsedCommandLine& cl) {
  CLI::App* images = app.add_subcommand("images", "Import and list the node's container images");
  images->require_subcommand(1);
  CLI::App* import = images->add_subcommand(
      "import", "Load image tarballs (OCI layout or 'docker save') into containerd");
  Completes(cl, import->add_option("files", cl.files, "Image tarballs"), CompletionKind::kFile)
      ->required()
      ->type_name("FILE");
  import->callback([&] { cl.action = [&] { return RunImagesImport(cl.global, cl.files); }; });
  CLI::App* ls = images->add_subcommand("ls", "List the images containerd has");
  ls->alias("list");
  ls->callback([&] { cl.action = [&] { return RunImagesList(cl.global); }; });
}

void AddDbctlCommands(CLI::App& app, ParsedCommandLine& cl) {
  CLI::App* dbctl = app.add_subcommand("dbctl", "Back up, restore and inspect the datastore");
  dbctl->require_subcommand(1);

  CLI::App* backup = dbctl->add_subcommand("backup", "Write a snapshot of the datastore to FILE");
  Completes(cl, backup->add_option("file", cl.file, "Snapshot file to create"),
            CompletionKind::kFile)
      ->required()
      ->type_name("FILE");
  backup->callback([&] { cl.action = [&] { return RunDbBackup(cl.global, cl.file); }; });

  CLI::App* restore = dbctl->add_subcommand("restore", "Replace the datastore with a snapshot");
  Completes(cl, restore->add_option("file", cl.file, "Snapshot written by backup"),
            CompletionKind::kFile)
      ->required()
      ->type_name("FILE");
  restore->callback([&] { cl.action = [&] { return RunDbRestore(cl.global, cl.file); }; });

  CLI::App* get = dbctl->add_subcommand("get", "Print the value of KEY");
  get->add_option("key", cl.key, "Key")->required()->type_name("KEY");
  get->callback([&] { cl.action = [&] { return RunDbGet(cl.global, cl.key); }; });

  CLI::App* put = dbctl->add_subcommand("put", "Set KEY to VALUE");
  put->add_option("key", cl.put.key, "Key")->required()->type_name("KEY");
  put->add_option("value", cl.put.value, "Value")->required()->type_name("VALUE");
  put->add_option("--expect-revision", cl.put.expect_revision,
                  "Only if the key's mod revision is N")
      ->type_name("N")
      ->check(kNonNegative);
  put->add_flag("--create-only", cl.put.create_only, "Fail if the key exists");
  put->callback([&] { cl.action = [&] { return RunDbPut(cl.global, cl.put); }; });

  CLI::App* del = dbctl->add_subcommand("del", "Delete KEY");
  del->alias("delete");
  del->add_option("key", cl.key, "Key")->required()->type_name("KEY");
  del->callback([&] { cl.action = [&] { return RunDbDelete(cl.global, cl.key); }; });

  CLI::App* ls = dbctl->add_subcommand("ls", "List keys under PREFIX");
  ls->add_option("prefix", cl.list.prefix, "Key prefix (default: every key)")->type_name("PREFIX");
  ls->add_option("--limit", cl.list.limit, "At most N keys")->type_name("N")->check(kNonNegative);
  ls->add_flag("-l,--long", cl.list.long_format,
               "Also print mod revision, create revision and value size");
  ls->callback([&] { cl.action = [&] { return RunDbList(cl.global, cl.list); }; });

  CLI::App* watch = dbctl->add_subcommand("watch", "Print changes under PREFIX as they happen");
  watch->add_option("prefix", cl.watch.prefix, "Key prefix (default: every key)")
      ->type_name("PREFIX");
  watch
      ->add_option("--after-revision", cl.watch.after_revision,
                   "Replay events after revision N first")
      ->type_name("N")
      ->check(kNonNegative);
  watch->callback([&] { cl.action = [&] { return RunDbWatch(cl.global, cl.watch); }; });
}

// "{a,b,c}" inside an option's type name (how CLI11 describes an IsMember check) -> a, b, c.
std::vector<std::string> Choices(const std::string& type_name) {
  std::vector<std::string> choices;
  const size_t open = type_name.find('{');
  const size_t close = type_name.find('}', open);
  if (open == std::string::npos || close == std::string::npos) return choices;
  std::string item;
  for (const char c : type_name.substr(open + 1, close - open - 1)) {
    if (c == ',') {
      choices.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  choices.push_back(item);
  return choices;
}

// The visible command tree under `app`, for the completion scripts. Hidden subcommands (empty
// group) are left out; an alias is one more subcommand with the same contents; a subcommand
// that falls through also offers its parent's flags (`inherited`), as the parser accepts them.
CommandSpec DescribeCommand(const CLI::App& app, const ParsedCommandLine& cl,
                            const std::vector<FlagSpec>& inherited) {
  CommandSpec spec;
  spec.name = app.get_parent() == nullptr ? "mk8s" : app.get_name();
  spec.description = app.get_description();
  if (&app == cl.passthrough) {
    spec.positional = CompletionKind::kPassthrough;
    return spec;
  }
  std::vector<FlagSpec> passed_down = inherited;
  for (const CLI::Option* option : app.get_options()) {
    const auto registered = cl.completes.find(option);
    const CompletionKind kind =
        registered == cl.completes.end() ? CompletionKind::kNone : registered->second;
    if (option->get_positional()) {
      if (spec.positional == CompletionKind::kNone && spec.positional_choices.empty()) {
        spec.positional = kind;
        spec.positional_choices = Choices(option->get_type_name());
      }
      continue;
    }
    FlagSpec flag;
    for (const std::string& name : option->get_snames()) flag.names.push_back("-" + name);
    for (const std::string& name : option->get_lnames()) flag.names.push_back("--" + name);
    flag.description = option->get_description();
    flag.takes_value = option->get_items_expected_max() != 0;  // flags expect 0 items
    flag.kind = kind;
    if (flag.takes_value) flag.choices = Choices(option->get_type_name());
    spec.flags.push_back(flag);
    if (option != app.get_help_ptr()) passed_down.push_back(flag);
  }
  spec.flags.insert(spec.flags.end(), inherited.begin(), inherited.end());
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_group().empty()) continue;  // hidden
    const CommandSpec child =
        DescribeCommand(*sub, cl, sub->get_fallthrough() ? passed_down : std::vector<FlagSpec>{});
    spec.subcommands.push_back(child);
    for (const std::string& alias : sub->get_aliases()) {
      spec.subcommands.push_back(child);
      spec.subcommands.back().name = alias;
    }
  }
  return spec;
}

void AddCompletionCommands(CLI::App& app, ParsedCommandLine& cl) {
  CLI::App* completion =
      app.add_subcommand("completion", "Print the shell completion script (bash, zsh or fish)");
  completion->add_option("shell", cl.shell, "Shell")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  completion->callback([&app, &cl] {
    cl.action = [&app, &cl] {
      std::cout << CompletionScript(DescribeCommand(app, cl, {}), cl.shell);
      return kExitOk;
    };
  });

  // Hidden: the live values the scripts ask for (completion.h, RunComplete).
  CLI::App* complete = app.add_subcommand("__complete", "Live values for shell completion");
  complete->group("");
  complete->prefix_command();
  complete->allow_extras();
  complete->fallthrough(false);
  complete->set_help_flag();
  complete->callback([&cl, complete] {
    cl.action = [&cl, args = complete->remaining()] { return RunComplete(cl.global, args); };
  });
}

// "mk8s dbctl put" for the deepest subcommand the parser reached.
std::string CommandPath(const CLI::App& app) {
  std::string path = "mk8s";
  const CLI::App* current = &app;
  while (current != nullptr) {
    const std::vector<CLI::App*> chosen = current->get_subcommands();
    current = chosen.empty() ? nullptr : chosen.front();
    if (current != nullptr) path += " " + current->get_name();
  }
  return path;
}

// CLI11's message as one line, with the command to get help. Unknown commands get their own
// wording.
int ReportUsageError(const CLI::App& app, const CLI::ParseError& error, int argc, char** argv) {
  std::string message = error.what();
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  const std::string command = CommandPath(app);
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr && command == "mk8s") {
    // The first word that is neither an option nor --state-dir's value is the unknown command.
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--state-dir") {
        ++i;
        continue;
      }
      if (!arg.empty() && arg[0] != '-') {
        PrintError("unknown command '" + arg + "'. Run 'mk8s --help' for the list of commands.");
        return kExitUsage;
      }
    }
  }
  PrintError(command + ": " + message + ". Run '" + command + " --help'.");
  return kExitUsage;
}

int ParseAndRun(int argc, char** argv) {
  CLI::App app{"mk8s: lightweight Kubernetes, driven by the mk8sd daemon.", "mk8s"};
  ParsedCommandLine cl;
  cl.global.state_dir = DefaultStateDir();
  Completes(cl,
            app.add_option("--state-dir", cl.global.state_dir,
                           "State folder of the daemon ($MK8S_STATE_DIR, $SNAP_COMMON, "
                           "/var/lib/mk8s)"),
            CompletionKind::kDir)
      ->type_name("DIR")
      ->capture_default_str();
  app.fallthrough();  // --state-dir is accepted after the subcommand too
  app.require_subcommand(0, 1);
  AddLifecycleCommands(app, cl);
  AddToolCommands(app, cl);
  AddDbctlCommands(app, cl);
  AddAddonCommands(app, cl);
  AddImageCommands(app, cl);
  AddCompletionCommands(app, cl);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help
    return ReportUsageError(app, error, argc, argv);
  }
  if (!cl.action) {
    std::cout << app.help();
    return kExitOk;
  }
  if (cl.global.state_dir.empty()) {
    PrintError("--state-dir must not be empty. Run 'mk8s --help'.");
    return kExitUsage;
  }
  std::error_code error;
  const std::filesystem::path absolute = std::filesystem::absolute(cl.global.state_dir, error);
  if (!error) cl.global.state_dir = absolute.lexically_normal().string();
  while (cl.global.state_dir.size() > 1 && cl.global.state_dir.back() == '/') {
    cl.global.state_dir.pop_back();
  }
  return cl.action();
}

}  // namespace

int Run(int argc, char** argv) {
  try {
    return ParseAndRun(argc, argv);
  } catch (const std::exception& error) {
    return PrintError(std::string("mk8s: unexpected error: ") + error.what() +
                      " (please report it with 'mk8s inspect')");
  } catch (...) {
    return PrintError("mk8s: unexpected error (please report it with 'mk8s inspect')");
  }
}

}  // namespace mk8s::cli
