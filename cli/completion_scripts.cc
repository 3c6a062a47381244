// The bash, zsh and fish completion scripts, generated from a CommandSpec tree (completion.h).
//
// Every script has the same shape: tables that describe the tree, keyed by the command path
// ("mk8s dbctl put"), and a small walker that reads the words before the cursor, follows
// subcommands, skips flag values, and then offers subcommands, flags, flag values or the
// command's positional values. Live values come from `mk8s __complete` (see completion.h).
#include <map>
#include <sstream>

#include "cli/completion.h"

namespace mk8s::cli {
namespace {

// One command of the tree, flattened: its path and what it offers.
struct Node {
  std::string path;  // "mk8s", "mk8s dbctl", ...
  const CommandSpec* spec;
};

void Flatten(const CommandSpec& spec, const std::string& path, std::vector<Node>* out) {
  out->push_back({path, &spec});
  for (const CommandSpec& sub : spec.subcommands) Flatten(sub, path + " " + sub.name, out);
}

std::vector<Node> Nodes(const CommandSpec& root) {
  std::vector<Node> nodes;
  Flatten(root, "mk8s", &nodes);
  return nodes;
}

std::string KindName(CompletionKind kind) {
  switch (kind) {
    case CompletionKind::kNone:
      return "";
    case CompletionKind::kFile:
      return "file";
    case CompletionKind::kDir:
      return "dir";
    case CompletionKind::kAddon:
      return "addon";
    case CompletionKind::kEnabledAddon:
      return "enabled-addon";
    case CompletionKind::kAddonWithArgs:
      return "addon-args";
    case CompletionKind::kPassthrough:
      return "passthrough";
  }
  return "";
}

// What a flag's value completes to: "choices:a b c" or a kind name.
std::string FlagKind(const FlagSpec& flag) {
  if (flag.choices.empty()) return KindName(flag.kind);
  std::string out = "choices:";
  for (size_t i = 0; i < flag.choices.size(); ++i) out += (i ? " " : "") + flag.choices[i];
  return out;
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& word : words) out += (out.empty() ? "" : " ") + word;
  return out;
}

// What a command's positional arguments complete to: "choices:a b c" or a kind name.
std::string PositionalKind(const CommandSpec& spec) {
  if (spec.positional_choices.empty()) return KindName(spec.positional);
  return "choices:" + Join(spec.positional_choices);
}

std::vector<std::string> SubcommandNames(const CommandSpec& spec) {
  std::vector<std::string> names;
  for (const CommandSpec& sub : spec.subcommands) names.push_back(sub.name);
  return names;
}

std::vector<std::string> FlagNames(const CommandSpec& spec, bool valued_only) {
  std::vector<std::string> names;
  for (const FlagSpec& flag : spec.flags) {
    if (valued_only && !flag.takes_value) continue;
    names.insert(names.end(), flag.names.begin(), flag.names.end());
  }
  return names;
}

// 'text' for bash and zsh.
std::string ShQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// 'text' for fish (backslash escapes inside single quotes).
std::string FishQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// The tables shared by bash and zsh (both have associative arrays):
//   _mk8s_subs[path]        subcommand names
//   _mk8s_flags[path]       every flag name offered there
//   _mk8s_valued[path]      the flags that take a value
//   _mk8s_kinds[path]       what the positional arguments complete to
//   _mk8s_kinds[path flag]  what the flag's value completes to
//   _mk8s_descs[path word]  descriptions (zsh only shows them)
std::string ShellTables(const CommandSpec& root, bool with_descriptions) {
  std::ostringstream subs, flags, valued, kinds, descs;
  for (const Node& node : Nodes(root)) {
    const CommandSpec& spec = *node.spec;
    const std::string key = "  [" + ShQuote(node.path) + "]=";
    if (!spec.subcommands.empty()) subs << key << ShQuote(Join(SubcommandNames(spec))) << "\n";
    flags << key << ShQuote(Join(FlagNames(spec, false))) << "\n";
    valued << key << ShQuote(Join(FlagNames(spec, true))) << "\n";
    if (!PositionalKind(spec).empty()) kinds << key << ShQuote(PositionalKind(spec)) << "\n";
    for (const FlagSpec& flag : spec.flags) {
      for (const std::string& name : flag.names) {
        const std::string flag_key = "  [" + ShQuote(node.path + " " + name) + "]=";
        if (flag.takes_value && !FlagKind(flag).empty()) {
          kinds << flag_key << ShQuote(FlagKind(flag)) << "\n";
        }
        descs << flag_key << ShQuote(flag.description) << "\n";
      }
    }
    for (const CommandSpec& sub : spec.subcommands) {
      descs << "  [" << ShQuote(node.path + " " + sub.name) << "]=" << ShQuote(sub.description)
            << "\n";
    }
  }
  std::ostringstream out;
  out << "typeset -gA _mk8s_subs=(\n" << subs.str() << ")\n";
  out << "typeset -gA _mk8s_flags=(\n" << flags.str() << ")\n";
  out << "typeset -gA _mk8s_valued=(\n" << valued.str() << ")\n";
  out << "typeset -gA _mk8s_kinds=(\n" << kinds.str() << ")\n";
  if (with_descriptions) out << "typeset -gA _mk8s_descs=(\n" << descs.str() << ")\n";
  return out.str();
}

// The bash walker. Uses bash-completion's _init_completion/_filedir when loaded, plain
// COMP_WORDS otherwise. `words`/`cword`/`cur`/`prev` follow bash-completion's conventions.
constexpr const char* kBashFunctions = R"BASH(
# Prints `mk8s __complete "$@"` names, for the cluster named by --state-dir on the line.
_mk8s_live() {
  "$_mk8s_cmd" ${_mk8s_state:+--state-dir "$_mk8s_state"} __complete "$@" 2>/dev/null | cut -f1
}

_mk8s_files() {
  if declare -F _filedir >/dev/null; then
    _filedir "$@"
  elif [[ $1 == -d ]]; then
    COMPREPLY=($(compgen -d -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}

# NAME, then NAME:ARG= from the addon's declared arguments (';' separates more of them).
_mk8s_addon_args() {
  if [[ $cur != *:* ]]; then
    COMPREPLY=($(compgen -W "$(_mk8s_live addons)" -- "$cur"))
    return
  fi
  local head=${cur%"${cur##*[:;]}"} arg
  local -a candidates=()
  for arg in $(_mk8s_live addon-args "${cur%%:*}"); do candidates+=("$head$arg"); done
  COMPREPLY=($(compgen -W "${candidates[*]}" -- "$cur"))
  compopt -o nospace 2>/dev/null
  declare -F __ltrim_colon_completions >/dev/null && __ltrim_colon_completions "$cur"
}

_mk8s_values() {
  case $1 in
    file) _mk8s_files ;;
    dir) _mk8s_files -d ;;
    addon) COMPREPLY=($(compgen -W "$(_mk8s_live addons)" -- "$cur")) ;;
    enabled-addon) COMPREPLY=($(compgen -W "$(_mk8s_live enabled-addons)" -- "$cur")) ;;
    addon-args) _mk8s_addon_args ;;
    choices:*) COMPREPLY=($(compgen -W "${1#choices:}" -- "$cur")) ;;
  esac
}

# `mk8s kubectl ARGS`: words[$1..cword] go to kubectl's own completion (cobra's __complete:
# candidates with optional tab-separated descriptions, then ":<directive>" where bit 1 is an
# error, 2 no space after the word, 4 no file fallback).
_mk8s_passthrough() {
  local out line directive=0
  local -a candidates=()
  out=$(_mk8s_cmd_line __complete kubectl "${words[@]:$1:cword-$1+1}")
  while IFS= read -r line; do
    if [[ $line == :* ]]; then
      directive=${line#:}
    elif [[ -n $line ]]; then
      candidates+=("${line%%$'\t'*}")
    fi
  done <<<"$out"
  [[ $directive =~ ^[0-9]+$ ]] || directive=0
  ((directive & 1)) && return
  COMPREPLY=($(compgen -W "${candidates[*]}" -- "$cur"))
  ((directive & 2)) && compopt -o nospace 2>/dev/null
  if ((${#COMPREPLY[@]} == 0 && !(directive & 4))); then _mk8s_files; fi
}

_mk8s_cmd_line() {
  "$_mk8s_cmd" ${_mk8s_state:+--state-dir "$_mk8s_state"} "$@" 2>/dev/null
}

_mk8s() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null; then
    _init_completion -n =: || return
  else
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
  fi
  COMPREPLY=()
  local path=mk8s i word _mk8s_state="" _mk8s_cmd=${words[0]}
  for ((i = 1; i < cword; i++)); do
    word=${words[i]}
    if [[ ${_mk8s_kinds[$path]} == passthrough ]]; then
      _mk8s_passthrough "$i"
      return
    fi
    case $word in
      --state-dir=*) _mk8s_state=${word#*=} ;;
      -*=*) ;;
      -*)
        if [[ " ${_mk8s_valued[$path]} " == *" $word "* ]]; then
          [[ $word == --state-dir ]] && _mk8s_state=${words[i + 1]}
          ((i++))
        fi
        ;;
      *) [[ " ${_mk8s_subs[$path]} " == *" $word "* ]] && path+=" $word" ;;
    esac
  done
  if [[ ${_mk8s_kinds[$path]} == passthrough ]]; then
    _mk8s_passthrough "$cword"
    return
  fi
  if ((cword > 1)) && [[ $prev == -* && " ${_mk8s_valued[$path]} " == *" $prev "* ]]; then
    _mk8s_values "${_mk8s_kinds[$path $prev]}"
    return
  fi
  if [[ $cur == -*=* ]]; then
    local flag=${cur%%=*}
    cur=${cur#*=}
    _mk8s_values "${_mk8s_kinds[$path $flag]}"
    return
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "${_mk8s_flags[$path]}" -- "$cur"))
    return
  fi
  if [[ -n ${_mk8s_subs[$path]} ]]; then
    COMPREPLY=($(compgen -W "${_mk8s_subs[$path]}" -- "$cur"))
  elif [[ -n ${_mk8s_kinds[$path]} ]]; then
    _mk8s_values "${_mk8s_kinds[$path]}"
  else
    COMPREPLY=($(compgen -W "${_mk8s_flags[$path]}" -- "$cur"))
  fi
}
complete -F _mk8s mk8s
)BASH";

// The zsh walker: the same logic with zsh's completion system (words, CURRENT, _describe,
// _files, compadd). Autoloadable from $fpath as _mk8s, or sourced after compinit.
constexpr const char* kZshFunctions = R"ZSH(
_mk8s_live() {
  ${_mk8s_cmd} ${_mk8s_state:+--state-dir} ${_mk8s_state:+$_mk8s_state} __complete "$@" 2>/dev/null
}

# Offers "name<TAB>description" lines as described candidates.
_mk8s_describe() {
  local tag=$1 title=$2 line
  local -a items=()
  for line in "${(@f)3}"; do
    [[ -z $line ]] && continue
    items+=("${${line%%$'\t'*}//:/\\:}:${line#*$'\t'}")
  done
  (( ${#items} )) && _describe -t $tag $title items
}

_mk8s_addon_args() {
  if [[ $cur != *:* ]]; then
    _mk8s_describe addons 'addon' "$(_mk8s_live addons)"
    return
  fi
  local head=${cur%${cur##*[:;]}} arg
  local -a candidates=()
  for arg in ${(f)"$(_mk8s_live addon-args ${cur%%:*})"}; do candidates+=("$head${arg%%$'\t'*}"); done
  compadd -Q -S '' -- $candidates
}

_mk8s_values() {
  case $1 in
    file) _files ;;
    dir) _files -/ ;;
    addon) _mk8s_describe addons 'addon' "$(_mk8s_live addons)" ;;
    enabled-addon) _mk8s_describe addons 'enabled addon' "$(_mk8s_live enabled-addons)" ;;
    addon-args) _mk8s_addon_args ;;
    choices:*) compadd -- ${(s: :)${1#choices:}} ;;
  esac
}

# `mk8s kubectl ARGS`: words[$1..CURRENT] go to kubectl's own completion (see the bash script).
_mk8s_passthrough() {
  local out line directive=0
  local -a candidates=()
  out=$(_mk8s_live kubectl "${(@)words[$1,CURRENT]}")
  for line in "${(@f)out}"; do
    if [[ $line == :* ]]; then
      directive=${line#:}
    elif [[ -n $line ]]; then
      candidates+=("${line%%$'\t'*}")
    fi
  done
  [[ $directive == <-> ]] || directive=0
  (( directive & 1 )) && return 1
  if (( ${#candidates} )); then
    if (( directive & 2 )); then compadd -S '' -- $candidates; else compadd -- $candidates; fi
  elif (( !(directive & 4) )); then
    _files
  fi
}

_mk8s() {
  local cur=${words[CURRENT]} prev=${words[CURRENT-1]}
  local node=mk8s i word _mk8s_state= _mk8s_cmd=${words[1]} name
  local -a items
  for ((i = 2; i < CURRENT; i++)); do
    word=${words[i]}
    if [[ ${_mk8s_kinds[$node]} == passthrough ]]; then
      _mk8s_passthrough $i
      return
    fi
    case $word in
      --state-dir=*) _mk8s_state=${word#*=} ;;
      -*=*) ;;
      -*)
        if [[ " ${_mk8s_valued[$node]} " == *" $word "* ]]; then
          [[ $word == --state-dir ]] && _mk8s_state=${words[i+1]}
          (( i++ ))
        fi
        ;;
      *) [[ " ${_mk8s_subs[$node]} " == *" $word "* ]] && node+=" $word" ;;
    esac
  done
  if [[ ${_mk8s_kinds[$node]} == passthrough ]]; then
    _mk8s_passthrough $CURRENT
    return
  fi
  if (( CURRENT > 2 )) && [[ $prev == -* && " ${_mk8s_valued[$node]} " == *" $prev "* ]]; then
    _mk8s_values "${_mk8s_kinds[$node $prev]}"
    return
  fi
  if [[ $cur == -*=* ]]; then
    compset -P '*='
    _mk8s_values "${_mk8s_kinds[$node ${cur%%=*}]}"
    return
  fi
  if [[ $cur != -* && -n ${_mk8s_subs[$node]} ]]; then
    items=()
    for name in ${(s: :)_mk8s_subs[$node]}; do items+=("$name:${_mk8s_descs[$node $name]}"); done
    _describe -t commands 'mk8s command' items
  elif [[ $cur != -* && -n ${_mk8s_kinds[$node]} ]]; then
    _mk8s_values "${_mk8s_kinds[$node]}"
  else
    items=()
    for name in ${(s: :)_mk8s_flags[$node]}; do items+=("$name:${_mk8s_descs[$node $name]}"); done
    _describe -t options 'option' items
  fi
}

if [[ $funcstack[1] == _mk8s ]]; then
  _mk8s "$@"  # autoloaded from $fpath: complete now
elif (( $+functions[compdef] )); then
  compdef _mk8s mk8s  # sourced after compinit
fi
)ZSH";

std::string BashScript(const CommandSpec& root) {
  std::ostringstream out;
  out << "# bash completion for mk8s. Generated by `mk8s completion bash` from the mk8s command\n"
         "# tree; do not edit, regenerate. Needs bash 4; uses bash-completion when loaded.\n";
  out << ShellTables(root, /*with_descriptions=*/false) << kBashFunctions;
  return out.str();
}

std::string ZshScript(const CommandSpec& root) {
  std::ostringstream out;
  out << "#compdef mk8s\n"
         "# zsh completion for mk8s. Generated by `mk8s completion zsh` from the mk8s command\n"
         "# tree; do not edit, regenerate. Install as _mk8s in $fpath, or source it after "
         "compinit.\n";
  out << ShellTables(root, /*with_descriptions=*/true) << kZshFunctions;
  return out.str();
}

// fish: native `complete` rules, each guarded by the command path __mk8s_path computes.
constexpr const char* kFishFunctions = R"FISH(
# The command path ("mk8s dbctl put") of the words before the cursor.
function __mk8s_path
    set -l tokens (commandline -opc)
    set -l path mk8s
    set -l skip 0
    for token in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if contains -- "$path" $__mk8s_passthrough
            break
        end
        switch $token
            case '-*=*'
            case '-*'
                contains -- "$path $token" $__mk8s_valued; and set skip 1
            case '*'
                contains -- "$path $token" $__mk8s_commands; and set path "$path $token"
        end
    end
    echo $path
end

function __mk8s_at
    test (__mk8s_path) = "$argv[1]"
end

# `mk8s __complete ...` for the cluster named by --state-dir on the line.
function __mk8s_live
    set -l tokens (commandline -opc)
    set -l state
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case '--state-dir=*'
                set state (string replace -- '--state-dir=' '' $tokens[$i])
            case --state-dir
                set -l next (math $i + 1)
                test $next -le (count $tokens); and set state $tokens[$next]
        end
    end
    if test -n "$state"
        $tokens[1] --state-dir $state __complete $argv 2>/dev/null
    else
        $tokens[1] __complete $argv 2>/dev/null
    end
end

function __mk8s_addon_args
    set -l cur (commandline -ct)
    if not string match -q -- '*:*' $cur
        __mk8s_live addons
        return
    end
    set -l head (string replace -r -- '[^:;]*$' '' $cur)
    set -l name (string split -m 1 -- : $cur)[1]
    for arg in (__mk8s_live addon-args $name)
        echo $head(string split -m 1 -- \t $arg)[1]
    end
end

# kubectl's own completion for the words after `kubectl`.
function __mk8s_kubectl
    set -l tokens (commandline -opc) (commandline -ct)
    set -l at (contains -i -- kubectl $tokens)
    for line in (__mk8s_live kubectl $tokens[(math $at + 1)..-1])
        string match -q -- ':*' $line; or echo $line
    end
end
)FISH";

std::string FishScript(const CommandSpec& root) {
  std::ostringstream out;
  out << "# fish completion for mk8s. Generated by `mk8s completion fish` from the mk8s command\n"
         "# tree; do not edit, regenerate.\n";
  std::ostringstream commands, valued, passthrough, rules;
  for (const Node& node : Nodes(root)) {
    const CommandSpec& spec = *node.spec;
    const std::string at = "-n " + FishQuote("__mk8s_at " + FishQuote(node.path));
    if (spec.positional == CompletionKind::kPassthrough) {
      passthrough << " " << FishQuote(node.path);
      rules << "complete -c mk8s " << at << " -a '(__mk8s_kubectl)'\n";
      rules << "complete -c mk8s -n " << FishQuote("contains -- kubectl (commandline -opc)")
            << " -a '(__mk8s_kubectl)'\n";
      continue;
    }
    for (const CommandSpec& sub : spec.subcommands) {
      commands << " " << FishQuote(node.path + " " + sub.name);
      rules << "complete -c mk8s " << at << " -a " << FishQuote(sub.name) << " -d "
            << FishQuote(sub.description) << "\n";
    }
    for (const FlagSpec& flag : spec.flags) {
      rules << "complete -c mk8s " << at;
      for (const std::string& name : flag.names) {
        if (flag.takes_value) valued << " " << FishQuote(node.path + " " + name);
        rules << (name.rfind("--", 0) == 0 ? " -l " + name.substr(2) : " -s " + name.substr(1));
      }
      rules << " -d " << FishQuote(flag.description);
      if (flag.takes_value) {
        rules << " -r";
        if (!flag.choices.empty()) rules << " -f -a " << FishQuote(Join(flag.choices));
        if (flag.kind == CompletionKind::kFile) rules << " -F";
        if (flag.kind == CompletionKind::kDir) rules << " -f -a '(__fish_complete_directories)'";
        if (flag.kind == CompletionKind::kAddon) rules << " -f -a '(__mk8s_live addons)'";
      }
      rules << "\n";
    }
    if (!spec.positional_choices.empty()) {
      rules << "complete -c mk8s " << at << " -a " << FishQuote(Join(spec.positional_choices))
            << "\n";
    }
    switch (spec.positional) {
      case CompletionKind::kFile:
        rules << "complete -c mk8s " << at << " -F\n";
        break;
      case CompletionKind::kDir:
        rules << "complete -c mk8s " << at << " -a '(__fish_complete_directories)'\n";
        break;
      case CompletionKind::kAddon:
        rules << "complete -c mk8s " << at << " -a '(__mk8s_live addons)'\n";
        break;
      case CompletionKind::kEnabledAddon:
        rules << "complete -c mk8s " << at << " -a '(__mk8s_live enabled-addons)'\n";
        break;
      case CompletionKind::kAddonWithArgs:
        rules << "complete -c mk8s " << at << " -a '(__mk8s_addon_args)'\n";
        break;
      default:
        break;
    }
  }
  out << "set -g __mk8s_commands" << commands.str() << "\n";
  out << "set -g __mk8s_valued" << valued.str() << "\n";
  out << "set -g __mk8s_passthrough" << passthrough.str() << "\n";
  out << kFishFunctions << "\ncomplete -c mk8s -f\n" << rules.str();
  return out.str();
}

}  // namespace

std::string CompletionScript(const CommandSpec& root, const std::string& shell) {
  if (shell == "bash") return BashScript(root);
  if (shell == "zsh") return ZshScript(root);
  if (shell == "fish") return FishScript(root);
  return "";
}

}  // namespace mk8s::cli
