/* optim_impl.h — private contract between optim.c and the optimizer kinds.
 *
 * Each kind (sgd.c, adam.c, rmsprop.c, adagrad.c) is one pl_optim_ops table:
 * it validates its fields, names the state vectors a config needs and applies
 * one update. optim.c owns allocation, dispatch and the public API, so adding
 * a kind touches only its own file and the table in optim.c.
 */
#ifndef PEERLESS_OPTIM_IMPL_H
#define PEERLESS_OPTIM_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/optim.h"

#define PL_OPTIM_MAX_STATE 3

/* Vectors shorter than this are updated on one thread: a parallel region
 * costs more than the work it would split. */
#define PL_OPTIM_PAR_MIN 32768

typedef struct pl_optim_state_spec {
    const char *name;  /* torch's state key, static string */
    float init;        /* initial value of every element */
} pl_optim_state_spec;

typedef struct pl_optim_ops {
    const char *name;
    /* Check the fields this kind uses (lr is checked by the caller). */
    int (*validate)(const pl_optim_config *cfg, pl_err *err);
    /* Fill spec[] with the state vectors `cfg` needs; returns how many. */
    int (*state_spec)(const pl_optim_config *cfg, pl_optim_state_spec spec[PL_OPTIM_MAX_STATE]);
    /* One update of p[0..n) from g[0..n); state[i] is the vector described
     * by spec[i]; step is the 1-based number of this update. */
    void (*step)(const pl_optim_config *cfg, int64_t step, float *const *state,
                 float *p, const float *g, size_t n);
} pl_optim_ops;

extern const pl_optim_ops pl_optim_sgd_ops;
extern const pl_optim_ops pl_optim_adam_ops;
extern const pl_optim_ops pl_optim_adamw_ops;
extern const pl_optim_ops pl_optim_rmsprop_ops;
extern const pl_optim_ops pl_optim_adagrad_ops;

/* PL_OK if lo <= v <= hi (strict at an end whose *_open flag is set) and v is
 * not NaN; else PL_ERR_ARG with "<kind>: <field> = <v> invalid, expected ...". */
int pl_optim_check_range(pl_err *err, const char *kind, const char *field, double v,
                         double lo, int lo_open, double hi, int hi_open);

#endif
