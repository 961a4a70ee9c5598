/* compare.c — `peerless compare`: the study. Runs the same training (seed,
 * data, batches) in both architectures with the embedded defaults — P2P
 * (peers compute their batches) and serverless (functions compute them) —
 * checks that they end with the same model, and prints where the time went
 * and what it would cost on AWS. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"

/* AWS list prices (us-east-1, on-demand), overridable by flags. */
typedef struct prices {
    double peer_hour;      /* EC2 instance per hour (t2.medium 0.0464, t2.large 0.0928) */
    double lambda_gb_s;    /* 0.0000166667 per GB-second (x86) */
    double lambda_request; /* 0.20 per million */
    double sfn_transition; /* 0.025 per thousand state transitions (standard) */
    double s3_put, s3_get; /* 0.005 / 0.0004 per thousand */
} prices;

/* Run `peerless run ARGS...` as a child; its JSON summary into *out. */
static int run_child(char **args, const char *log_path, cJSON **out)
{
    int fd[2];
    if (pipe(fd))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        FILE *log = fopen(log_path, "w");
        if (log)
            dup2(fileno(log), STDERR_FILENO);
        close(fd[0]);
        close(fd[1]);
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(fd[1]);
    char buf[8192];
    size_t len = 0;
    ssize_t r;
    while ((r = read(fd[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    char *last = strrchr(buf, '{');
    *out = last ? cJSON_Parse(last) : NULL;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && *out ? 0 : -1;
}

static void mkdir_p_one(const char *path)
{
    if (mkdir(path, 0755) && errno != EEXIST)
        fprintf(stderr, "peerless compare: cannot create %s: %s\n", path, strerror(errno));
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

/* Cost of a run on AWS from its measured durations and counts. Store
 * requests are counted per step from the protocol (docs/serverless.md). */
static double cost(const cJSON *r, int serverless, int peers, int batches, const prices *p, cJSON *detail)
{
    double seconds = num(r, "seconds"), steps = num(r, "steps");
    double peer_cost = seconds / 3600.0 * p->peer_hour * peers;
    double lambda = 0, sfn = 0, s3 = 0;
    if (serverless) {
        double inv = num(r, "invocations");
        lambda = num(r, "lambda_gb_s") * p->lambda_gb_s + inv * p->lambda_request;
        /* ProcessInput, Map, K iterations, Aggregate (+ K task states) */
        sfn = steps * peers * (3.0 + 2.0 * batches) * p->sfn_transition;
        s3 = steps * peers * ((1.0 + batches) * p->s3_put + 2.0 * batches * p->s3_get);
    }
    cJSON_AddNumberToObject(detail, "peers_usd", peer_cost);
    cJSON_AddNumberToObject(detail, "lambda_usd", lambda);
    cJSON_AddNumberToObject(detail, "step_functions_usd", sfn);
    cJSON_AddNumberToObject(detail, "s3_usd", s3);
    return peer_cost + lambda + sfn + s3;
}

static void row(const char *name, double a, double b, const char *fmt)
{
    char x[32], y[32];
    snprintf(x, sizeof x, fmt, a);
    snprintf(y, sizeof y, fmt, b);
    fprintf(stderr, "%-34s %14s %14s\n", name, x, y);
}

/* The side-by-side table (stderr) and the JSON summary (stdout). */
static int report(cJSON *res[2], int peers, int batches, const prices *p, const char *instance)
{
    const cJSON *c0 = cJSON_GetObjectItem(res[0], "model_checksum"), *c1 = cJSON_GetObjectItem(res[1], "model_checksum");
    int match = cJSON_IsString(c0) && cJSON_IsString(c1) && !strcmp(c0->valuestring, c1->valuestring);
    cJSON *sum = cJSON_CreateObject(), *cost_d[2];
    double usd[2];
    for (int m = 0; m < 2; m++) {
        cost_d[m] = cJSON_CreateObject();
        usd[m] = cost(res[m], m, peers, batches, p, cost_d[m]);
    }
    fprintf(stderr, "\n%-34s %14s %14s\n", "", "p2p", "serverless");
    row("gradient computation s (mean/peer)", num(res[0], "compute_s_mean"), num(res[1], "compute_s_mean"), "%.3f");
    row("communication s (mean/peer)", num(res[0], "sync_s_mean"), num(res[1], "sync_s_mean"), "%.3f");
    row("total s", num(res[0], "seconds"), num(res[1], "seconds"), "%.3f");
    row("steps", num(res[0], "steps"), num(res[1], "steps"), "%.0f");
    row("test accuracy", num(res[0], "test_accuracy"), num(res[1], "test_accuracy"), "%.4f");
    row("MB sent between peers", num(res[0], "bytes_sent") / 1e6, num(res[1], "bytes_sent") / 1e6, "%.2f");
    row("function invocations", 0, num(res[1], "invocations"), "%.0f");
    row("cold starts", 0, num(res[1], "cold_starts"), "%.0f");
    row("function billed s", 0, num(res[1], "function_billed_s"), "%.3f");
    row("AWS cost USD (estimate)", usd[0], usd[1], "%.6f");
    fprintf(stderr, "models match: %s (peer instances priced as %s)\n", match ? "yes" : "NO", instance);
    cJSON_AddNumberToObject(sum, "peers", peers);
    cJSON_AddNumberToObject(sum, "batches", batches);
    cJSON_AddBoolToObject(sum, "models_match", match);
    const char *modes[2] = {"p2p", "serverless"};
    for (int m = 0; m < 2; m++) {
        cJSON_AddNumberToObject(cost_d[m], "total_usd", usd[m]);
        cJSON_AddItemToObject(res[m], "cost", cost_d[m]);
        cJSON_AddItemToObject(sum, modes[m], res[m]);
    }
    char *s = cJSON_PrintUnformatted(sum);
    if (s)
        printf("%s\n", s);
    free(s);
    cJSON_Delete(sum);
    return match ? 0 : 1;
}

int pl_cmd_compare(int argc, char **argv)
{
    int peers = 4, batches = 8;
    const char *instance = "t2.medium", *run_dir = "runs/compare";
    prices p = {0, 0.0000166667, 0.20 / 1e6, 0.025 / 1000, 0.005 / 1000, 0.0004 / 1000};
    double peer_hour = 0;
    /* Flags of our own; everything else is forwarded to both runs. */
    pl_flag flags[] = {
        {"peers", PL_FLAG_INT, &peers, 1, 64, "N", "peers (default 4)", 0},
        {"batches", PL_FLAG_INT, &batches, 1, 4096, "K", "batches per peer and step (default 8)", 0},
        {"run-dir", PL_FLAG_STR, &run_dir, 0, -1, "DIR", "where both runs go (default runs/compare)", 0},
        {"instance", PL_FLAG_STR, &instance, 0, -1, "TYPE", "peer instance for the cost: t2.medium (default) or t2.large", 0},
        {"instance-price", PL_FLAG_DOUBLE, &peer_hour, 0, 1000, "USD", "peer instance price per hour (overrides --instance)", 0},
        {"lambda-gb-s-price", PL_FLAG_DOUBLE, &p.lambda_gb_s, 0, 1, "USD", "Lambda price per GB-second", 0},
    };
    int nf = (int)(sizeof flags / sizeof flags[0]);
    char *fwd[200];
    int nfwd = 0;
    for (int i = 0; i < argc && nfwd < 180; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            pl_args_usage("compare",
                          "Run P2P and serverless training on the same seed and data, check the models match, and\n"
                          "compare time, bytes, invocations and AWS cost. Other flags go to both runs (see run --help).",
                          flags, nf);
            return 0;
        }
        int ours = 0;
        for (int j = 0; j < nf && !ours; j++)
            ours = strncmp(argv[i], "--", 2) == 0 && !strcmp(argv[i] + 2, flags[j].name);
        if (ours && i + 1 < argc) {
            int help;
            pl_err err = {0, ""};
            if (pl_args_parse("compare", flags, nf, 2, argv + i, &help, &err)) {
                fprintf(stderr, "peerless compare: %s\n", err.msg);
                return 2;
            }
            i++;
            continue;
        }
        fwd[nfwd++] = argv[i];
    }
    if (peer_hour <= 0)
        peer_hour = !strcmp(instance, "t2.large") ? 0.0928 : !strcmp(instance, "t2.medium") ? 0.0464 : -1;
    if (peer_hour < 0) {
        fprintf(stderr, "peerless compare: unknown --instance '%s' (t2.medium or t2.large, or give --instance-price)\n",
                instance);
        return 2;
    }
    p.peer_hour = peer_hour;
    const char *modes[2] = {"p2p", "serverless"};
    cJSON *res[2] = {NULL, NULL};
    char np[16], nb[16], dirs[2][1024], logs[2][1100];
    snprintf(np, sizeof np, "%d", peers);
    snprintf(nb, sizeof nb, "%d", batches);
    for (int m = 0; m < 2; m++) {
        char *args[220];
        int n = 0;
        snprintf(dirs[m], sizeof dirs[m], "%s/%s", run_dir, modes[m]);
        snprintf(logs[m], sizeof logs[m], "%s/%s.log", run_dir, modes[m]);
        const char *fixed[] = {"peerless", "run", "--mode", modes[m], "--peers", np, "--batches", nb,
                               "--accumulate", nb, "--threads", "1", "--run-dir", dirs[m]};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
            args[n++] = (char *)fixed[i];
        for (int i = 0; i < nfwd; i++)
            args[n++] = fwd[i];
        args[n] = NULL;
        char mk[1100];
        snprintf(mk, sizeof mk, "%s", dirs[m]);
        for (char *s = mk + 1; *s; s++)
            if (*s == '/') {
                *s = '\0';
                mkdir_p_one(mk);
                *s = '/';
            }
        mkdir_p_one(mk);
        fprintf(stderr, "peerless compare: %s run (%d peers, %d batches each; log %s)\n", modes[m], peers, batches,
                logs[m]);
        if (run_child(args, logs[m], &res[m])) {
            fprintf(stderr, "peerless compare: the %s run failed; see %s\n", modes[m], logs[m]);
            cJSON_Delete(res[0]);
            cJSON_Delete(res[1]);
            return 1;
        }
    }
    return report(res, peers, batches, &p, instance);
}
