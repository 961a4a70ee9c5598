/* bench_faas.c — invocation overhead of the local function platform.
 *
 * The function is this binary started as `bench_faas runtime`: a C runtime
 * (tests/faas_runtime.c) answering the "noop" event with {}, so every
 * microsecond measured is the platform's (Invoke API + Runtime API hops,
 * dispatch, process start). Prints median and p95 of the client-observed
 * latency for warm calls and cold starts, and of the platform's own init
 * duration (process start to the runtime's first /next).
 *
 * Then the real gradient function, when this build has it (the `peerless`
 * next to this binary): it packages function.zip (package-function; prints
 * its size) and measures the cold starts (init: spawn .. first /next, and the
 * round trip of a first, invalid event) of
 *   - `peerless function` as `peerless run` starts it (env OMP_WAIT_POLICY=...),
 *     and the same through /bin/sh and env(1) (the platform's spawn before
 *     it started simple commands directly; forced here by a redirection),
 *   - the unzipped package's bootstrap (what Lambda runs),
 *   - the packaged binary started directly,
 * interleaved so that machine load hits every variant alike.
 * Goals: warm < 1 ms, cold < 20 ms, package < 10 MB.
 *
 *   bench_faas [WARM_CALLS] [COLD_CALLS]      (default 200, 20) */
#include <libgen.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../tests/faas_runtime.c"
#include "peerless/faas.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void summary(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    printf("%-40s n=%-4d median %8.3f ms   p95 %8.3f ms   max %8.3f ms\n", what, n, v[n / 2],
           v[(int)(0.95 * (n - 1))], v[n - 1]);
}

static size_t sink(char *d, size_t s, size_t n, void *arg)
{
    (void)d, (void)arg;
    return s * n;
}

/* One invocation over a persistent connection; returns ms or -1. */
static double call(CURL *h, const char *url)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    double t0 = now_ms();
    long code = 0;
    if (curl_easy_perform(h) != CURLE_OK)
        return -1;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    return code == 200 ? now_ms() - t0 : -1;
}

static int add_fn(pl_faas *p, const char *name, const char *cmd)
{
    pl_faas_function f = {name, cmd, 1024, 10, 4, 600, NULL, NULL};
    pl_err err = {0};
    if (pl_faas_add_function(p, &f, &err) != PL_OK) {
        fprintf(stderr, "bench_faas: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Real functions: one cold start per variant per round. */
#define NVAR 4

static int bench_functions(pl_faas *p, CURL *h, const char *exe, int cold)
{
    char dir[600], peerless[700], tmp[] = "/tmp/bench-faas-XXXXXX", cmd[2400], line[1024];
    snprintf(dir, sizeof dir, "%s", exe);
    snprintf(peerless, sizeof peerless, "%s/peerless", dirname(dir));
    struct stat sb;
    if (stat(peerless, &sb) || !mkdtemp(tmp)) {
        printf("(no %s: real function cold starts skipped)\n", peerless);
        return 0;
    }
    snprintf(cmd, sizeof cmd, "'%s' package-function --out %s/fn.zip", peerless, tmp);
    FILE *f = popen(cmd, "r");
    long long zip = -1, unzipped = -1;
    int libs = -1;
    while (f && fgets(line, sizeof line, f)) {
        const char *z = strstr(line, "\"zip_bytes\":"), *u = strstr(line, "\"unzipped_bytes\":"),
                   *l = strstr(line, "\"libraries\":");
        if (z && u && l) {
            zip = atoll(z + 12);
            unzipped = atoll(u + 17);
            libs = atoi(l + 12);
        }
    }
    int rc = f ? pclose(f) : -1;
    snprintf(cmd, sizeof cmd, "cd %s && unzip -q fn.zip", tmp);
    if (rc || zip < 0 || system(cmd)) {
        fprintf(stderr, "bench_faas: package-function / unzip failed\n");
        return 1;
    }
    printf("function package (package-function): zip %.2f MB, unzipped %.2f MB, %d libraries  (goal < 10 MB)\n",
           (double)zip / 1048576.0, (double)unzipped / 1048576.0, libs);
    const char *names[NVAR] = {"peerless function via sh+env", "peerless function (run's)", "package bootstrap",
                               "packaged binary"};
    char cmds[NVAR][1400];
    snprintf(cmds[0], sizeof cmds[0], "env OMP_WAIT_POLICY=PASSIVE '%s' function </dev/null", peerless);
    snprintf(cmds[1], sizeof cmds[1], "env OMP_WAIT_POLICY=PASSIVE '%s' function", peerless);
    snprintf(cmds[2], sizeof cmds[2], "%s/bootstrap", tmp);
    snprintf(cmds[3], sizeof cmds[3], "%s/peerless function", tmp);
    double *init[NVAR], *rt[NVAR];
    int ok = 1;
    for (int v = 0; v < NVAR; v++) {
        init[v] = calloc((size_t)cold, sizeof(double));
        rt[v] = calloc((size_t)cold, sizeof(double));
        ok = ok && init[v] && rt[v];
    }
    char name[64], url[256];
    for (int i = 0; ok && i < cold; i++)
        for (int v = 0; ok && v < NVAR; v++) {
            snprintf(name, sizeof name, "fn%d_%d", v, i);
            snprintf(url, sizeof url, "http://127.0.0.1:%d/2015-03-31/functions/%s/invocations", pl_faas_port(p), name);
            pl_faas_report r;
            ok = !add_fn(p, name, cmds[v]) && (rt[v][i] = call(h, url)) >= 0 &&
                 pl_faas_reports(p, pl_faas_report_count(p) - 1, &r, 1) == 1 && r.cold;
            init[v][i] = ok ? r.init_ms : 0;
        }
    for (int v = 0; ok && v < NVAR; v++) {
        char what[96];
        snprintf(what, sizeof what, "%s init", names[v]);
        summary(what, init[v], cold);
        snprintf(what, sizeof what, "%s round trip", names[v]);
        summary(what, rt[v], cold);
    }
    if (!ok)
        fprintf(stderr, "bench_faas: a function cold start failed\n");
    for (int v = 0; v < NVAR; v++) {
        free(init[v]);
        free(rt[v]);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd))
        fprintf(stderr, "bench_faas: cannot remove %s\n", tmp);
    return !ok;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "runtime"))
        return faas_runtime_main(0);
    int warm = argc > 1 ? atoi(argv[1]) : 200, cold = argc > 2 ? atoi(argv[2]) : 20;
    if (warm < 2 || cold < 2 || warm > 100000 || cold > 1000) {
        fprintf(stderr, "usage: bench_faas [WARM_CALLS>=2] [COLD_CALLS 2..1000]\n");
        return 2;
    }
    char exe[512] = {0}, cmd[600], url[256], name[32];
    if (readlink("/proc/self/exe", exe, sizeof exe - 1) <= 0)
        return 1;
    snprintf(cmd, sizeof cmd, "'%s' runtime", exe);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pl_faas_config cfg = {NULL, 0, NULL, NULL, PL_FAAS_MEM_AUTO};
    pl_faas *p = NULL;
    pl_err err = {0};
    if (pl_faas_create(&cfg, &p, &err) != PL_OK) {
        fprintf(stderr, "bench_faas: %s\n", err.msg);
        return 1;
    }
    printf("memory limits: %s\n", pl_faas_memory_mode_name(p));
    double *w = calloc((size_t)warm, sizeof *w), *c = calloc((size_t)cold, sizeof *c);
    double *init = calloc((size_t)cold, sizeof *init);
    CURL *h = curl_easy_init();
    struct curl_slist *hd = curl_slist_append(NULL, "Expect:");
    int rc = !w || !c || !init || !h || !hd || add_fn(p, "warm", cmd);
    if (!rc) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"op\":\"noop\"}");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/2015-03-31/functions/warm/invocations", pl_faas_port(p));
        rc = call(h, url) < 0; /* the cold start of the warm function */
    }
    for (int i = 0; !rc && i < warm; i++)
        rc = (w[i] = call(h, url)) < 0;
    for (int i = 0; !rc && i < cold; i++) {
        snprintf(name, sizeof name, "cold%d", i);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/2015-03-31/functions/%s/invocations", pl_faas_port(p), name);
        rc = add_fn(p, name, cmd) || (c[i] = call(h, url)) < 0;
        pl_faas_report r;
        if (!rc && pl_faas_reports(p, pl_faas_report_count(p) - 1, &r, 1) == 1)
            init[i] = r.init_ms;
    }
    if (rc) {
        fprintf(stderr, "bench_faas: an invocation failed\n");
    } else {
        summary("warm invoke (round trip)", w, warm);
        summary("cold invoke (round trip)", c, cold);
        summary("cold init (spawn..next)", init, cold);
        rc = bench_functions(p, h, exe, cold);
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    pl_faas_destroy(p);
    free(w);
    free(c);
    free(init);
    curl_global_cleanup();
    return rc;
}
