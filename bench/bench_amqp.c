/* bench_amqp.c — time of the amqp:// all-reduce at model gradient sizes.
 *
 *   bench_amqp URL [--peers 2,4] [--reps R] [--only MODEL] [--patterns scatter,fanout]
 *
 * URL is a broker (e.g. from scripts/rabbitmq.sh start DIR) with optional
 * query options (chunk=...). For each pattern and N it forks N peer
 * processes, each with its own connection; each all-reduces a random vector
 * of every model's gradient size once to warm up, then R times (R/3 for
 * VGG11, at least 2, as bench_allreduce), each after a
 * barrier. --only MODEL keeps the models whose name contains MODEL. Rank 0
 * prints
 *   pattern,N,model,floats,median_s,sent_MB_per_peer,recv_MB_per_peer,send_s,recv_s,wait_s
 * (bytes and rank 0's seconds inside publish / receive / waiting of the
 * last call, message headers included).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model_sizes.h"
#include "peerless/transport.h"

static int run_peer(const char *url, int rank, int n, int reps_arg, const char *only, int run_id)
{
    char run[64];
    snprintf(run, sizeof run, "bench-%d-%d", (int)getppid(), run_id);
    pl_transport_opts o;
    pl_transport_opts_init(&o);
    o.url = url;
    o.rank = rank;
    o.size = n;
    o.run = run;
    o.peer_timeout_ms = 120000;
    pl_transport *t = NULL;
    pl_err err = {0};
    if (pl_transport_open(&o, &t, &err)) {
        fprintf(stderr, "rank %d: %s\n", rank, err.msg);
        return 1;
    }
    uint64_t step = 0;
    for (size_t m = 0; m < N_MODELS; m++) {
        if (only && !strstr(models[m].name, only))
            continue;
        size_t len = models[m].floats;
        int reps = model_reps(&models[m], reps_arg);
        float *x = malloc(len * sizeof *x);
        double *times = malloc((size_t)(reps + 1) * sizeof *times);
        if (!x || !times) {
            fprintf(stderr, "rank %d: out of memory\n", rank);
            return 1;
        }
        for (size_t i = 0; i < len; i++)
            x[i] = (float)((i * 2654435761u + (size_t)rank) % 1000) * 1e-3f;
        pl_xfer_stats st = {0};
        for (int r = 0; r <= reps; r++) {
            if (pl_transport_barrier(t, step, &err))
                break;
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            if (pl_transport_allreduce_sum(t, x, len, step++, &st, &err))
                break;
            clock_gettime(CLOCK_MONOTONIC, &b);
            times[r] = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
        }
        if (err.status) {
            fprintf(stderr, "rank %d, %s: %s\n", rank, models[m].name, err.msg);
            return 1;
        }
        qsort(times + 1, (size_t)reps, sizeof *times, cmp_double);
        if (rank == 0)
            printf("%s,%d,%s,%zu,%.4f,%.1f,%.1f,%.4f,%.4f,%.4f\n", strstr(url, "fanout") ? "fanout" : "scatter", n,
                   models[m].name, len, times[1 + reps / 2], (double)st.bytes_sent / 1e6,
                   (double)st.bytes_recv / 1e6, st.send_s, st.recv_s, st.wait_s);
        fflush(stdout);
        free(x);
        free(times);
    }
    pl_transport_close(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strncmp(argv[1], "--", 2)) {
        fprintf(stderr, "usage: %s URL [--peers 2,4] [--reps R] [--only MODEL] [--patterns scatter,fanout]\n",
                argv[0]);
        return 2;
    }
    const char *peers = "2,4", *only = NULL, *patterns = "scatter,fanout";
    int reps = 3;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--peers"))
            peers = argv[i + 1];
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : 1;
        else if (!strcmp(argv[i], "--only"))
            only = argv[i + 1];
        else if (!strcmp(argv[i], "--patterns"))
            patterns = argv[i + 1];
        else {
            fprintf(stderr, "unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    printf("pattern,N,model,floats,median_s,sent_MB_per_peer,recv_MB_per_peer,send_s,recv_s,wait_s\n");
    int failed = 0, run_id = 0;
    for (const char *p = patterns; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
        char url[1024];
        size_t pl = strcspn(p, ",");
        snprintf(url, sizeof url, "%s%spattern=%.*s", argv[1], strchr(argv[1], '?') ? "&" : "?", (int)pl, p);
        for (const char *q = peers; *q; q += strcspn(q, ",") + (q[strcspn(q, ",")] == ',')) {
            int n = atoi(q);
            run_id++;
            fflush(stdout); /* children inherit the buffer */
            for (int r = 0; r < n; r++) {
                pid_t pid = fork();
                if (pid == 0)
                    _exit(run_peer(url, r, n, reps, only, run_id));
            }
            for (int r = 0; r < n; r++) {
                int status;
                wait(&status);
                failed |= !WIFEXITED(status) || WEXITSTATUS(status);
            }
        }
    }
    return failed;
}
