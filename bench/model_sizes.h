/* model_sizes.h — the gradient sizes the all-reduce benchmarks share
 * (bench_allreduce, bench_amqp, mpi_allreduce; bench/allreduce_reference.py
 * has the same table and checks it against torchvision). Header-only. */
#ifndef PEERLESS_BENCH_MODEL_SIZES_H
#define PEERLESS_BENCH_MODEL_SIZES_H

#include <stddef.h>

typedef struct model_size {
    const char *name;
    size_t floats; /* sum(p.numel()) of the torchvision model with 10 classes */
    int reps_div;  /* big vectors: fewer repetitions */
} model_size;

static const model_size models[] = {
    {"squeezenet1_1", 727626, 1},
    {"mobilenet_v3_small", 1528106, 1},
    {"resnet18", 11181642, 1},
    {"vgg11", 128807306, 3},
};
#define N_MODELS (sizeof models / sizeof *models)

/* Timed calls for model m when R were asked for: R / reps_div, at least 2. */
static inline int model_reps(const model_size *m, int reps)
{
    return reps / m->reps_div > 1 ? reps / m->reps_div : 2;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
