/* main.c — `peerless <command> [flags]`: dispatch to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "peerless/models.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"train", pl_cmd_train, "train a model in one process (Fashion-MNIST by default)"},
    {"split", pl_cmd_split, "partition a dataset into per-peer objects in an object store"},
    {"peer", pl_cmd_peer, "run one peer of a P2P training run"},
    {"run", pl_cmd_run, "run N local peers (embedded defaults) and summarise"},
    {"compare", pl_cmd_compare, "the study: P2P vs serverless on the same data, time, bytes, cost"},
    {"bench", pl_cmd_bench, "time training steps of a model (bench step)"},
    {"inspect", pl_cmd_inspect, "validate a safetensors file and list its tensors"},
    {"models", pl_cmd_models, "list the available models"},
    {"init", pl_cmd_init, "initialise a model from a seed and write its state dict"},
    {"faas", pl_cmd_faas, "serve the local Lambda-compatible function platform (faas serve)"},
    {"grad", pl_cmd_grad, "one forward/backward of a checkpoint on a batch: loss, gradients, BN statistics"},
    {"function", pl_cmd_function, "Lambda custom runtime computing gradients (compute_gradient, process_input)"},
    {"package-function", pl_cmd_package_function, "build the AWS Lambda deployment zip (provided.al2023)"},
    {"statemachine", pl_cmd_statemachine, "write the AWS Step Functions definition for offloaded gradients"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

int pl_cmd_models(int argc, char **argv)
{
    (void)argv;
    if (argc > 0) {
        fprintf(stderr, "peerless models: takes no arguments\n");
        return 2;
    }
    printf("%s\n", pl_models_list());
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: peerless <command> [flags]   (peerless <command> --help for its flags)\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("peerless 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "peerless: unknown command '%s' (see peerless --help)\n", argv[1]);
    return 2;
}
