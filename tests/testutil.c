/* testutil.c — shared helpers for the C unit tests. */
#include "test.h"

#include <stdlib.h>
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
