/* adagrad.c — torch.optim.Adagrad (dense single-tensor path, maximize=False).
 *
 *   g = g + wd * p                       (if weight_decay != 0)
 *   clr = lr / (1 + (t - 1) * lr_decay)
 *   sum = sum + g * g                    (sum starts at initial_accumulator_value)
 *   p = p - clr * g / (sqrt(sum) + eps)
 */
#include "optim/optim_impl.h"

#include <math.h>

static int adagrad_validate(const pl_optim_config *c, pl_err *err)
{
    int rc = pl_optim_check_range(err, "adagrad", "lr_decay", c->lr_decay, 0, 0, INFINITY, 1);
    if (rc == PL_OK)
        rc = pl_optim_check_range(err, "adagrad", "initial_accumulator_value",
                                  c->initial_accumulator_value, 0, 0, INFINITY, 1);
    if (rc == PL_OK)
        rc = pl_optim_check_range(err, "adagrad", "eps", c->eps, 0, 1, INFINITY, 1);
    return rc;
}

static int adagrad_state_spec(const pl_optim_config *c,
                              pl_optim_state_spec spec[PL_OPTIM_MAX_STATE])
{
    spec[0] = (pl_optim_state_spec){"sum", (float)c->initial_accumulator_value};
    return 1;
}

/* p, g, sum: [n]. */
static void adagrad_step(const pl_optim_config *c, int64_t step, float *const *state, float *p,
                         const float *g, size_t n)
{
    float *sum = state[0];
    const double clr = c->lr / (1.0 + (double)(step - 1) * c->lr_decay);
    const float neg_clr = (float)-clr, wd = (float)c->weight_decay, eps = (float)c->eps;
    const int has_wd = c->weight_decay != 0;
#pragma omp parallel for simd schedule(static) if (n >= PL_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = has_wd ? fmaf(p[i], wd, g[i]) : g[i];
        float s = sum[i] + gi * gi;
        sum[i] = s;
        p[i] = p[i] + neg_clr * gi / (sqrtf(s) + eps);
    }
}

const pl_optim_ops pl_optim_adagrad_ops = {"adagrad", adagrad_validate, adagrad_state_spec,
                                           adagrad_step};
