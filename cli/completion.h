// Shell completion for mk8s: a plain description of the command tree (filled from the live CLI11
// App by app.cc, so the scripts never drift from the parser) and the generators that turn it into
// bash, zsh and fish scripts. The scripts hold the static tree (commands, flags, choices) and call
// the hidden `mk8s __complete ...` only for what is live: addon names and arguments from the
// daemon, and `mk8s kubectl ...`, which is delegated to `kubectl __complete`.
// No CLI11 or gRPC types here.
#pragma once

#include <string>
#include <vector>

#include "cli/commands.h"

namespace mk8s::cli {

// What a flag's value or a command's positional arguments complete to.
enum class CompletionKind {
  kNone,           // free text: nothing offered
  kFile,           // file names
  kDir,            // folder names
  kAddon,          // every addon name (the daemon's list, or the libraries on disk)
  kEnabledAddon,   // enabled addons (all addons when the daemon is down)
  kAddonWithArgs,  // NAME, then NAME:ARG=... from the addon's declared arguments
  kPassthrough,    // everything after the command belongs to kubectl
};

struct FlagSpec {
  std::vector<std::string> names;  // "-a", "--addon"
  std::string description;
  bool takes_value = false;
  CompletionKind kind = CompletionKind::kNone;  // for takes_value
  std::vector<std::string> choices;             // fixed values (kind is kNone then)
};

struct CommandSpec {
  std::string name;  // "mk8s" for the root
  std::string description;
  std::vector<FlagSpec> flags;  // its own and the inherited ones (e.g. --state-dir)
  CompletionKind positional = CompletionKind::kNone;
  std::vector<std::string> positional_choices;  // fixed values for the positional arguments
  std::vector<CommandSpec> subcommands;  // visible ones only; an alias appears as its own entry
};

// The whole script for `shell` ("bash", "zsh" or "fish"), or "" for another shell.
std::string CompletionScript(const CommandSpec& root, const std::string& shell);

// `mk8s __complete WHAT ...`, called by the scripts; prints one candidate a line, optionally
// followed by a tab and a description. Never fails loudly: on any error it prints nothing and
// returns 0, so a shell never shows an error in the middle of a command line.
//   addons            every addon: the daemon's list (1 s deadline), else the libraries on disk
//   enabled-addons    the enabled ones (every addon when the daemon is down)
//   addon-args NAME   NAME's declared arguments, as "ARG=" (only from the daemon)
//   kubectl ARGS...   execs `kubectl __complete ARGS...` with this cluster's kubeconfig when
//                     readable; its output is cobra's (candidates, then ":<directive>")
int RunComplete(const GlobalOptions& global, const std::vector<std::string>& args);

}  // namespace mk8s::cli
