/* test.h — a tiny test harness: checks count failures, main returns nonzero.
 *
 *   PL_CHECK(cond, fmt, ...)       fails the test if cond is false
 *   PL_CHECK_NEAR(a, b, tol, what) |a-b| <= tol * max(1, |b|)
 *   PL_TEST_MAIN()                 prints "N passed, M failed" and returns
 */
#ifndef PEERLESS_TEST_H
#define PEERLESS_TEST_H

#include <math.h>
#include <stdio.h>
#include <stddef.h>

extern int pl_test_failures;
extern int pl_test_checks;

#define PL_CHECK(cond, ...)                                                    \
    do {                                                                       \
        pl_test_checks++;                                                      \
        if (!(cond)) {                                                         \
            pl_test_failures++;                                                \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

#define PL_CHECK_NEAR(a, b, tol, what)                                         \
    do {                                                                       \
        double a_ = (a), b_ = (b);                                             \
        double s_ = fabs(b_) > 1.0 ? fabs(b_) : 1.0;                           \
        PL_CHECK(fabs(a_ - b_) <= (tol) * s_, "%s: got %.9g want %.9g", what,  \
                 a_, b_);                                                      \
    } while (0)

/* Relative error ||a-b|| / max(||b||, tiny) over n floats. */
double pl_test_rel_err(const float *a, const float *b, size_t n);
/* Fill with uniform values in [lo, hi) from a fixed seed. */
void pl_test_fill(float *x, size_t n, unsigned seed, float lo, float hi);
/* Reference of a top-k all-reduce over elements [lo, hi): want[e] = sum in
 * rank order of each in[r]'s k = ceil(ratio * (hi - lo)) largest
 * magnitudes in [lo, hi), found by sorting (ties unlikely in test data);
 * the others count as zero. */
void pl_test_topk_sum(float *want, float *const *in, int n, size_t lo, size_t hi, double ratio);
/* A scratch directory for this test run (created); never NULL. */
const char *pl_test_tmpdir(void);

#define PL_TEST_MAIN()                                                         \
    do {                                                                       \
        printf("%d passed, %d failed\n", pl_test_checks - pl_test_failures,    \
               pl_test_failures);                                              \
        return pl_test_failures ? 1 : 0;                                       \
    } while (0)

#endif
