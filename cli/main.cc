// mk8s: the command-line tool that drives mk8sd. All logic lives in app.cc and commands_*.cc.
#include "cli/app.h"

int main(int argc, char** argv) { return mk8s::cli::Run(argc, argv); }
