/* faas.c — `peerless faas serve`: run the local Lambda-compatible function
 * platform until SIGINT/SIGTERM.
 *
 * Options are positional: --memory/--timeout/--concurrency/--idle-timeout/
 * --handler that follow a --function NAME=COMMAND apply to that function. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "peerless/faas.h"
#include "store/sigv4.h"

#define MAX_FUNCTIONS 64
#define MAX_MACHINES 16

static void serve_usage(void)
{
    printf("usage: peerless faas serve --port P --function NAME=COMMAND [--memory MB] [--timeout S]\n"
           "       [--concurrency C] [--idle-timeout S] [--handler H] [--function ...] [--log FILE]\n"
           "       [--host ADDR] [--region R] [--memory-mode auto|cgroup|rlimit]\n"
           "       [--state-machine NAME=FILE.json ...] [--require-sigv4]\n\n"
           "Serve the Lambda Invoke API (POST /2015-03-31/functions/NAME/invocations) and the\n"
           "Step Functions API (POST / with X-Amz-Target: AWSStepFunctions.ACTION) on ADDR:P;\n"
           "each function is a command speaking the Lambda Runtime API. Options after a --function\n"
           "apply to it (defaults: memory 128 MB, timeout 3 s, concurrency 10, idle timeout 300 s).\n"
           "--port 0 picks a free port. --log appends one JSON REPORT line per invocation.\n"
           "--state-machine creates a state machine from an Amazon States Language file at start\n"
           "and prints its ARN. --require-sigv4 rejects requests without a SigV4 Authorization\n"
           "header for this region (service lambda / states); when AWS credentials are configured\n"
           "(AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials) signatures are verified.\n");
}

typedef struct serve_opts {
    pl_faas_config cfg;
    pl_faas_function fns[MAX_FUNCTIONS];
    char *names[MAX_FUNCTIONS];
    int nfns;
    const char *machines[MAX_MACHINES]; /* NAME=FILE */
    int nmachines;
    int require_sigv4;
} serve_opts;

/* "--flag=value" or "--flag value"; dashes and underscores alike. */
static int flag_value(int argc, char **argv, int *i, char *flag, size_t cap, const char **val)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2))
        return -1;
    const char *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) - 2 : strlen(a) - 2;
    snprintf(flag, cap, "%.*s", (int)n, a + 2);
    for (char *c = flag; *c; c++)
        if (*c == '_')
            *c = '-';
    if (eq)
        *val = eq + 1;
    else if (*i + 1 < argc)
        *val = argv[++*i];
    else
        *val = NULL;
    return 0;
}

static int num(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || errno || d < lo || d > hi) {
        fprintf(stderr, "peerless faas serve: --%s '%s': expected a number in [%g, %g]\n", flag, v ? v : "", lo, hi);
        return -1;
    }
    *out = d;
    return 0;
}

static int fn_option(serve_opts *o, const char *flag, const char *v)
{
    pl_faas_function *f = &o->fns[o->nfns - 1];
    double d;
    if (!strcmp(flag, "handler"))
        return (f->handler = v) ? 0 : -1;
    if (!strcmp(flag, "memory") && !num(flag, v, 16, 10240, &d))
        return f->memory_mb = (int)d, 0;
    if (!strcmp(flag, "timeout") && !num(flag, v, 0.001, 900, &d))
        return f->timeout_s = d, 0;
    if (!strcmp(flag, "concurrency") && !num(flag, v, 1, 10000, &d))
        return f->concurrency = (int)d, 0;
    if (!strcmp(flag, "idle-timeout") && !num(flag, v, 0.001, 1e6, &d))
        return f->idle_timeout_s = d, 0;
    return -1;
}

static int add_function(serve_opts *o, const char *v)
{
    const char *eq = v ? strchr(v, '=') : NULL;
    if (!eq || eq == v || !eq[1]) {
        fprintf(stderr, "peerless faas serve: --function '%s': expected NAME=COMMAND\n", v ? v : "");
        return -1;
    }
    if (o->nfns == MAX_FUNCTIONS) {
        fprintf(stderr, "peerless faas serve: more than %d --function flags\n", MAX_FUNCTIONS);
        return -1;
    }
    char *name = strndup(v, (size_t)(eq - v));
    if (!name)
        return -1;
    o->names[o->nfns] = name;
    o->fns[o->nfns++] = (pl_faas_function){name, eq + 1, 0, 0, 0, 0, NULL, NULL};
    return 0;
}

static int global_option(serve_opts *o, const char *flag, const char *v)
{
    double d;
    if (!strcmp(flag, "port") && !num(flag, v, 0, 65535, &d))
        return o->cfg.port = (int)d, 0;
    if (!strcmp(flag, "host"))
        return (o->cfg.host = v) ? 0 : -1;
    if (!strcmp(flag, "log"))
        return (o->cfg.log_path = v) ? 0 : -1;
    if (!strcmp(flag, "region"))
        return (o->cfg.region = v) ? 0 : -1;
    if (!strcmp(flag, "memory-mode")) {
        static const char *modes[] = {"auto", "cgroup", "rlimit"};
        for (int m = 0; m < 3; m++)
            if (v && !strcmp(v, modes[m]))
                return o->cfg.memory_mode = (pl_faas_memory_mode)m, 0;
        fprintf(stderr, "peerless faas serve: --memory-mode '%s': expected auto, cgroup or rlimit\n", v ? v : "");
    }
    return -1;
}

static int is_fn_flag(const char *f)
{
    return !strcmp(f, "memory") || !strcmp(f, "timeout") || !strcmp(f, "concurrency") || !strcmp(f, "idle-timeout") ||
           !strcmp(f, "handler");
}

static int parse(serve_opts *o, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        char flag[64];
        const char *v;
        if (flag_value(argc, argv, &i, flag, sizeof flag, &v) != 0) {
            fprintf(stderr, "peerless faas serve: unexpected argument '%s' (see --help)\n", argv[i]);
            return -1;
        }
        int rc;
        if (!strcmp(flag, "require-sigv4")) {
            if (strchr(argv[i], '=')) {
                fprintf(stderr, "peerless faas serve: --require-sigv4 takes no value\n");
                return -1;
            }
            if (v)
                i--; /* flag_value took the next argument as a value */
            o->require_sigv4 = 1;
            continue;
        }
        if (!strcmp(flag, "state-machine")) {
            const char *eq = v ? strchr(v, '=') : NULL;
            if (!eq || eq == v || !eq[1] || o->nmachines == MAX_MACHINES) {
                fprintf(stderr, "peerless faas serve: --state-machine '%s': expected NAME=FILE.json (at most %d)\n",
                        v ? v : "", MAX_MACHINES);
                return -1;
            }
            o->machines[o->nmachines++] = v;
            continue;
        }
        if (!strcmp(flag, "function"))
            rc = add_function(o, v);
        else if (is_fn_flag(flag) && o->nfns == 0) {
            fprintf(stderr, "peerless faas serve: --%s must follow a --function NAME=COMMAND\n", flag);
            return -1;
        } else if (is_fn_flag(flag))
            rc = fn_option(o, flag, v);
        else if (!strcmp(flag, "port") || !strcmp(flag, "host") || !strcmp(flag, "log") || !strcmp(flag, "region") ||
                 !strcmp(flag, "memory-mode"))
            rc = global_option(o, flag, v);
        else {
            fprintf(stderr, "peerless faas serve: unknown flag --%s (see --help)\n", flag);
            return -1;
        }
        if (rc != 0) {
            if (!v)
                fprintf(stderr, "peerless faas serve: --%s needs a value\n", flag);
            return -1;
        }
    }
    if (o->nfns == 0) {
        fprintf(stderr, "peerless faas serve: at least one --function NAME=COMMAND is required\n");
        return -1;
    }
    return 0;
}

static char *read_file(const char *path, pl_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        pl_err_set(err, PL_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    do {
        if (len + 4096 + 1 > cap) {
            char *b = realloc(buf, cap = 2 * cap + 8192);
            if (!b) {
                free(buf);
                fclose(f);
                pl_err_set(err, PL_ERR_NOMEM, "reading '%s': out of memory", path);
                return NULL;
            }
            buf = b;
        }
        n = fread(buf + len, 1, 4096, f);
        len += n;
    } while (n > 0);
    int bad = ferror(f);
    fclose(f);
    buf[len] = '\0';
    if (bad) {
        free(buf);
        pl_err_set(err, PL_ERR_IO, "reading '%s' failed", path);
        return NULL;
    }
    return buf;
}

/* --state-machine NAME=FILE: create it and print its ARN. */
static int create_machines(pl_faas *p, const serve_opts *o, pl_err *err)
{
    for (int i = 0; i < o->nmachines; i++) {
        const char *eq = strchr(o->machines[i], '=');
        char name[128], arn[512];
        snprintf(name, sizeof name, "%.*s", (int)(eq - o->machines[i]), o->machines[i]);
        char *def = read_file(eq + 1, err);
        int st = def ? pl_faas_create_state_machine(p, name, def, NULL, arn, sizeof arn, err) : err->status;
        free(def);
        if (st)
            return pl_err_wrap(err, st, "--state-machine %s", o->machines[i]);
        printf("state machine %s\n", arn);
    }
    return PL_OK;
}

/* --require-sigv4: verify with the configured credentials, if any. */
static int setup_sigv4(pl_faas *p, pl_err *err)
{
    char *ak = NULL, *sk = NULL, *tok = NULL;
    pl_err none = {0, ""};
    int have = pl_aws_credentials(&ak, &sk, &tok, &none) == PL_OK;
    int st = pl_faas_require_sigv4(p, have ? ak : NULL, have ? sk : NULL, err);
    if (!st)
        fprintf(stderr, "peerless faas: SigV4 required; %s%s\n",
                have ? "signatures verified for access key " : "header form and scope checked only (no AWS credentials configured)",
                have ? ak : "");
    free(ak);
    free(sk);
    free(tok);
    return st;
}

static int serve(serve_opts *o)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts: only sigwait sees them */
    pl_err err = {0};
    pl_faas *p = NULL;
    if (pl_faas_create(&o->cfg, &p, &err) != PL_OK) {
        fprintf(stderr, "peerless faas serve: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < o->nfns; i++)
        if (pl_faas_add_function(p, &o->fns[i], &err) != PL_OK) {
            fprintf(stderr, "peerless faas serve: %s\n", err.msg);
            pl_faas_destroy(p);
            return 1;
        }
    if ((o->require_sigv4 && setup_sigv4(p, &err) != PL_OK) || create_machines(p, o, &err) != PL_OK) {
        fprintf(stderr, "peerless faas serve: %s\n", err.msg);
        pl_faas_destroy(p);
        return 1;
    }
    fprintf(stderr, "peerless faas: memory limits enforced with %s\n", pl_faas_memory_mode_name(p));
    printf("listening on http://%s:%d\n", o->cfg.host ? o->cfg.host : "127.0.0.1", pl_faas_port(p));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "peerless faas: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pl_faas_destroy(p);
    return 0;
}

int pl_cmd_faas(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "serve")) {
        if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
            serve_usage();
            return 0;
        }
        fprintf(stderr, "peerless faas: expected the subcommand 'serve' (see peerless faas --help)\n");
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            serve_usage();
            return 0;
        }
    serve_opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(&o, argc - 1, argv + 1) == 0 ? serve(&o) : 2;
    for (int i = 0; i < o.nfns; i++)
        free(o.names[i]);
    return rc;
}
