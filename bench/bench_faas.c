/* bench_faas.c — invocation overhead of the local function platform.
 *
 * The function is this binary started as `bench_faas runtime`: a C runtime
 * (tests/faas_runtime.c) answering the "noop" event with {}, so every
 * microsecond measured is the platform's (Invoke API + Runtime API hops,
 * dispatch, process start). Prints median and p95 of the client-observed
 * latency for warm calls and cold starts, and of the platform's own init
 * duration (process start to the runtime's first /next).
 * Goals: warm < 1 ms, cold < 20 ms.
 *
 *   bench_faas [WARM_CALLS] [COLD_CALLS]      (default 200, 20) */
#include <stdlib.h>
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
    printf("%-28s n=%-4d median %8.3f ms   p95 %8.3f ms   max %8.3f ms\n", what, n, v[n / 2],
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
    pl_faas_function f = {name, cmd, 128, 10, 4, 600, NULL, NULL};
    pl_err err = {0};
    if (pl_faas_add_function(p, &f, &err) != PL_OK) {
        fprintf(stderr, "bench_faas: %s\n", err.msg);
        return -1;
    }
    return 0;
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
