/* commands.h — the peerless subcommands; each returns the process exit code. */
#ifndef PEERLESS_CLI_COMMANDS_H
#define PEERLESS_CLI_COMMANDS_H

int pl_cmd_train(int argc, char **argv);
int pl_cmd_models(int argc, char **argv);
int pl_cmd_inspect(int argc, char **argv);
int pl_cmd_init(int argc, char **argv);
int pl_cmd_grad(int argc, char **argv);
int pl_cmd_faas(int argc, char **argv);

int pl_cmd_split(int argc, char **argv);
int pl_cmd_peer(int argc, char **argv);
int pl_cmd_run(int argc, char **argv);
int pl_cmd_bench(int argc, char **argv);
int pl_cmd_compare(int argc, char **argv);
int pl_cmd_statemachine(int argc, char **argv);
int pl_cmd_function(int argc, char **argv);
int pl_cmd_package_function(int argc, char **argv);

/* Shared by peer and run (peer_cmds.c). */
#include <stddef.h>
#include "cli/args.h"
#include "peerless/peer.h"
int pl_peer_flags(pl_peer_config *c, pl_flag *out, int cap, const char **evaluation, const char **accumulate,
                  const char **mode, const char **functions);
int pl_peer_parse_functions(const char *v, pl_peer_config *c, pl_err *err);
int pl_peer_parse_mode(const char *v, pl_peer_config *c, pl_err *err);
int pl_peer_parse_accumulate(const char *v, pl_peer_config *c, pl_err *err);
/* Check the names in a peer config (model, optimizer, loss, lr schedule)
 * before any peer starts, so a typo is one clear error, not N failed peers. */
int pl_peer_check_names(const pl_peer_config *c, pl_err *err);
const char *pl_json_num(char *buf, size_t len, double v);

#endif
