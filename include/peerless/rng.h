/* rng.h — seeded, portable random numbers (PCG32).
 *
 * Every random choice in peerless (weight init, shuffling, augmentation,
 * dropout, stochastic rounding) draws from a pl_rng seeded explicitly, so a
 * run is reproducible from its seed on any machine.
 */
#ifndef PEERLESS_RNG_H
#define PEERLESS_RNG_H

#include <stdint.h>

typedef struct pl_rng {
    uint64_t state;
    uint64_t inc;
} pl_rng;

/* Seed with (seed, stream): different streams give independent sequences. */
void pl_rng_seed(pl_rng *r, uint64_t seed, uint64_t stream);
uint32_t pl_rng_u32(pl_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint32_t pl_rng_below(pl_rng *r, uint32_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float pl_rng_uniform(pl_rng *r);
/* Uniform in [lo, hi). */
float pl_rng_uniform_range(pl_rng *r, float lo, float hi);
/* Standard normal (Box-Muller). */
float pl_rng_normal(pl_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void pl_rng_shuffle_u32(pl_rng *r, uint32_t *idx, uint32_t n);

#endif
