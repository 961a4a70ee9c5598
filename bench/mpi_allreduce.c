/* mpi_allreduce.c — OpenMPI's MPI_Allreduce at model gradient sizes, the
 * MPI row of bench/allreduce.sh.
 *
 *   mpirun --oversubscribe --allow-run-as-root -np N mpi_allreduce
 *          [--reps R] [--only MODEL] [--impl NAME]
 *
 * Same protocol as bench_allreduce and bench/allreduce_reference.py: per
 * model a float32 vector of the gradient size (torchvision models with 10
 * classes), one warm-up all-reduce (in place, MPI_SUM), then R timed ones
 * (fewer for the big models), each after a barrier; rank 0 prints the median
 * of its times and the algorithm bandwidth (vector bytes / time) as
 *   impl,N,model,floats,median_s,algbw_GBps
 * with impl = NAME (default "mpi"). The warm-up result is checked on every
 * rank against the known sum (the inputs are small integers, so the float
 * sum is exact whatever order MPI adds in): a rank that did not get the
 * full sum fails the run, so the row measures a complete all-reduce.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_sizes.h"

/* Rank r's element i: a small integer, so every partial sum is exact. */
static float value(size_t i, int r) { return (float)((i * 2654435761u + (size_t)r) % 64); }

/* 0 if x holds the sum over n ranks at every element. */
static size_t check_sum(const float *x, size_t nf, int n)
{
    for (size_t i = 0; i < nf; i++) {
        float want = 0;
        for (int r = 0; r < n; r++)
            want += value(i, r);
        if (x[i] != want)
            return i + 1;
    }
    return 0;
}

/* The MPI_Allreduce rows of one model; returns 0 or 1 (failure, reported). */
static int bench_model(const model_size *m, int rank, int n, int reps_arg, const char *impl)
{
    size_t nf = m->floats;
    float *x = malloc(nf * sizeof *x);
    int reps = model_reps(m, reps_arg);
    double *ts = malloc((size_t)reps * sizeof *ts);
    int ok = x && ts, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_ok) {
        fprintf(stderr, "mpi_allreduce: rank %d: out of memory for %zu floats\n", rank, nf);
        free(x);
        free(ts);
        return 1;
    }
    for (size_t i = 0; i < nf; i++)
        x[i] = value(i, rank);
    MPI_Allreduce(MPI_IN_PLACE, x, (int)nf, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    size_t bad = check_sum(x, nf, n);
    if (bad)
        fprintf(stderr, "mpi_allreduce: rank %d, %s: element %zu is %g, not the sum over %d ranks\n",
                rank, m->name, bad - 1, (double)x[bad - 1], n);
    ok = !bad;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    for (int r = 0; all_ok && r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, x, (int)nf, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        ts[r] = MPI_Wtime() - t0;
    }
    if (all_ok && rank == 0) {
        qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
        double med = ts[reps / 2];
        printf("%s,%d,%s,%zu,%.5f,%.3f\n", impl, n, m->name, nf, med, (double)nf * 4 / med / 1e9);
        fflush(stdout);
    }
    free(x);
    free(ts);
    return !all_ok;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, n;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    int reps = 10;
    const char *only = NULL, *impl = "mpi";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--reps") && atoi(argv[i + 1]) > 0)
            reps = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--only"))
            only = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--impl"))
            impl = argv[++i];
        else {
            if (rank == 0)
                fprintf(stderr, "mpi_allreduce: unknown or incomplete flag '%s'; usage: "
                                "mpi_allreduce [--reps R>0] [--only MODEL] [--impl NAME]\n",
                        argv[i]);
            MPI_Finalize();
            return 2;
        }
    }
    int failed = 0;
    for (size_t m = 0; !failed && m < N_MODELS; m++)
        if (!only || strstr(models[m].name, only))
            failed = bench_model(&models[m], rank, n, reps, impl);
    MPI_Finalize();
    return failed;
}
