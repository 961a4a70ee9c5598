/* testutil.c — shared helpers for the C unit tests. */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "peerless/rng.h"

int pl_test_failures;
int pl_test_checks;

double pl_test_rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (isnan(num))
        return INFINITY;
    return sqrt(num) / (den > 1e-30 ? sqrt(den) : 1e-15);
}

void pl_test_fill(float *x, size_t n, unsigned seed, float lo, float hi)
{
    pl_rng r;
    pl_rng_seed(&r, seed, 7);
    for (size_t i = 0; i < n; i++)
        x[i] = pl_rng_uniform_range(&r, lo, hi);
}

const char *pl_test_tmpdir(void)
{
    const char *d = getenv("PEERLESS_TEST_TMP");
    if (!d || !*d)
        d = "/tmp/peerless-test";
    mkdir(d, 0755);
    return d;
}

static int cmp_mag_desc(const void *a, const void *b)
{
    float x = fabsf(*(const float *)a), y = fabsf(*(const float *)b);
    return (x < y) - (x > y);
}

void pl_test_topk_sum(float *want, float *const *in, int n, size_t lo, size_t hi, double ratio)
{
    size_t len = hi - lo, k = (size_t)ceil(ratio * (double)len);
    float *mag = malloc(len * sizeof *mag);
    for (int r = 0; r < n; r++) {
        memcpy(mag, in[r] + lo, len * sizeof *mag);
        qsort(mag, len, sizeof *mag, cmp_mag_desc);
        float thr = fabsf(mag[k - 1]);
        for (size_t e = lo; e < hi; e++) {
            float t = fabsf(in[r][e]) >= thr ? in[r][e] : 0.0f;
            want[e] = r == 0 ? t : want[e] + t;
        }
    }
    free(mag);
}
