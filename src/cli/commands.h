/* commands.h — the peerless subcommands; each returns the process exit code. */
#ifndef PEERLESS_CLI_COMMANDS_H
#define PEERLESS_CLI_COMMANDS_H

int pl_cmd_train(int argc, char **argv);
int pl_cmd_models(int argc, char **argv);
int pl_cmd_inspect(int argc, char **argv);

#endif
