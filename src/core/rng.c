/* rng.c — PCG32 (O'Neill), plus the derived draws peerless needs. */
#include "peerless/rng.h"

#include <math.h>

void pl_rng_seed(pl_rng *r, uint64_t seed, uint64_t stream)
{
    r->state = 0;
    r->inc = (stream << 1u) | 1u;
    (void)pl_rng_u32(r);
    r->state += seed;
    (void)pl_rng_u32(r);
}

uint32_t pl_rng_u32(pl_rng *r)
{
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

uint32_t pl_rng_below(pl_rng *r, uint32_t n)
{
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t v = pl_rng_u32(r);
        if (v >= threshold)
            return v % n;
    }
}

float pl_rng_uniform(pl_rng *r) { return (float)(pl_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float pl_rng_uniform_range(pl_rng *r, float lo, float hi) { return lo + (hi - lo) * pl_rng_uniform(r); }

float pl_rng_normal(pl_rng *r)
{
    /* u1 in (0, 1] so log() is finite. */
    double u1 = ((double)(pl_rng_u32(r) >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(pl_rng_u32(r) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

void pl_rng_shuffle_u32(pl_rng *r, uint32_t *idx, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = pl_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
