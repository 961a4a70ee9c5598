/* main.c — the lean Lambda function binary (the `peerless` of function.zip):
 * only `peerless function` (the Lambda custom runtime, src/cli/function.c),
 * built by cmake/function_only.cmake without oneDNN, RabbitMQ or
 * libmicrohttpd, for a portable x86-64 level (docs/aws.md). */
#include <stdio.h>
#include <string.h>

#include "backend/fast_conv.h"
#include "cli/commands.h"

/* Set by cmake/function_only.cmake: the -march the binary was built for. */
#ifndef PL_FN_MARCH
#define PL_FN_MARCH "unknown"
#endif
#ifndef PL_FN_VERSION
#define PL_FN_VERSION "0.0.0"
#endif

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "function"))
        return pl_cmd_function(argc - 2, argv + 2);
    if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
        printf("peerless %s (function build; march=%s; fast convolutions: %s)\n", PL_FN_VERSION, PL_FN_MARCH,
               pl_fast_conv_impl);
        return 0;
    }
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
        printf("usage: peerless function [flags]   (the Lambda function build: only the 'function' command)\n");
        return 0;
    }
    fprintf(stderr, "peerless (function build): unknown command '%s'; this binary only runs "
                    "'peerless function' (the Lambda custom runtime)\n", argc >= 2 ? argv[1] : "");
    return 2;
}
