/* bench_allreduce.c — time of the tcp:// all-reduce at model gradient sizes.
 *
 *   bench_allreduce [--peers 2,4] [--reps R] [--codec C] [--segment BYTES]
 *                   [--only MODEL]
 *
 * For each N it forks N peer processes on loopback; each all-reduces a
 * random vector of every model's gradient size (torchvision models with 10
 * classes; sizes checked with sum(p.numel())) once to warm up, then R times,
 * each after a barrier. Rank 0 prints one line per (N, model): the median
 * time and the algorithm bandwidth (vector bytes / time), as
 *   impl,N,model,floats,median_s,algbw_GBps
 * (bench/allreduce_reference.py prints the same for PyTorch gloo).
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model_sizes.h"
#include "peerless/transport.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_now(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec * 1e-6 +
           (double)u.ru_stime.tv_sec + (double)u.ru_stime.tv_usec * 1e-6;
}

static void make_url(int n, char *url, size_t len)
{
    size_t k = (size_t)snprintf(url, len, "tcp://");
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof a;
        if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &al))
            perror("bench_allreduce: picking a port");
        close(fd);
        k += (size_t)snprintf(url + k, len - k, "%s127.0.0.1:%d", i ? "," : "", ntohs(a.sin_port));
    }
}

typedef struct bench_cfg {
    int reps;
    const char *codec, *only;
    size_t segment;
    double *cpu; /* shared between the processes: each rank's CPU seconds */
} bench_cfg;

/* One peer process: returns its exit status. */
static int run_peer(const char *url, int rank, int n, const bench_cfg *c)
{
    pl_transport_opts o;
    pl_transport_opts_init(&o);
    o.url = url;
    o.rank = rank;
    o.size = n;
    o.run = "bench";
    o.codec = c->codec;
    o.segment_bytes = c->segment;
    o.peer_timeout_ms = 120000;
    pl_err err = {0};
    pl_transport *t;
    if (pl_transport_open(&o, &t, &err)) {
        fprintf(stderr, "bench_allreduce: rank %d: %s\n", rank, err.msg);
        return 1;
    }
    uint64_t step = 1;
    for (size_t m = 0; m < N_MODELS; m++) {
        if (c->only && !strstr(models[m].name, c->only))
            continue;
        size_t nf = models[m].floats;
        float *x = malloc(nf * sizeof *x);
        int reps = model_reps(&models[m], c->reps);
        double *ts = malloc((size_t)reps * sizeof *ts);
        if (!x || !ts)
            return 1;
        for (size_t i = 0; i < nf; i++)
            x[i] = (float)((i * 2654435761u + (size_t)rank) % 1000) * 1e-3f - 0.5f;
        int rc = pl_transport_allreduce_sum(t, x, nf, step++, NULL, &err);
        double cpu0 = cpu_now();
        for (int r = 0; !rc && r < reps; r++) {
            rc = pl_transport_barrier(t, step++, &err);
            double t0 = now();
            rc = rc ? rc : pl_transport_allreduce_sum(t, x, nf, step++, NULL, &err);
            ts[r] = now() - t0;
        }
        c->cpu[rank] = (cpu_now() - cpu0) / reps; /* includes the barriers (small) */
        rc = rc ? rc : pl_transport_barrier(t, step++, &err);
        if (rc) {
            fprintf(stderr, "bench_allreduce: rank %d: %s\n", rank, err.msg);
            return 1;
        }
        qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
        double med = ts[reps / 2], cpu = 0;
        for (int r = 0; r < n; r++)
            cpu += c->cpu[r];
        if (rank == 0)
            printf("tcp%s%s,%d,%s,%zu,%.5f,%.3f,%.4f\n", strcmp(c->codec, "none") ? "-" : "",
                   strcmp(c->codec, "none") ? c->codec : "", n, models[m].name, nf, med,
                   (double)nf * 4 / med / 1e9, cpu);
        fflush(stdout);
        free(x);
        free(ts);
    }
    pl_transport_close(t);
    return 0;
}

static int run_world(int n, const bench_cfg *c)
{
    char url[512];
    make_url(n, url, sizeof url);
    pid_t pids[64];
    for (int r = 0; r < n; r++) {
        pids[r] = fork();
        if (pids[r] == 0)
            _exit(run_peer(url, r, n, c));
    }
    int bad = 0;
    for (int r = 0; r < n; r++) {
        int st;
        waitpid(pids[r], &st, 0);
        bad |= !WIFEXITED(st) || WEXITSTATUS(st);
    }
    return bad;
}

int main(int argc, char **argv)
{
    bench_cfg c = {.reps = 10, .codec = "none"};
    const char *peers = "2,4";
    for (int i = 1; i < argc; i += 2) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && !strcmp(f, "--peers"))
            peers = v;
        else if (v && !strcmp(f, "--reps"))
            c.reps = atoi(v);
        else if (v && !strcmp(f, "--codec"))
            c.codec = v;
        else if (v && !strcmp(f, "--segment"))
            c.segment = (size_t)atol(v);
        else if (v && !strcmp(f, "--only"))
            c.only = v;
        else {
            fprintf(stderr, "usage: bench_allreduce [--peers 2,4] [--reps R] [--codec C] "
                            "[--segment BYTES] [--only MODEL]\n");
            return 2;
        }
    }
    c.cpu = mmap(NULL, 64 * sizeof *c.cpu, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c.cpu == MAP_FAILED) {
        perror("bench_allreduce: mmap");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    printf("impl,N,model,floats,median_s,algbw_GBps,cpu_s\n");
    fflush(stdout);
    int bad = 0;
    for (const char *p = peers; *p;) {
        int n = atoi(p);
        if (n < 1 || n > 64) {
            fprintf(stderr, "bench_allreduce: bad peer count in '%s'\n", peers);
            return 2;
        }
        bad |= run_world(n, &c);
        p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p);
    }
    return bad;
}
