/* sgd.c — torch.optim.SGD (single-tensor path, maximize=False).
 *
 *   d = g + wd * p                      (if weight_decay != 0)
 *   step 1:  buf = d                    (no dampening on the first step)
 *   later:   buf = momentum * buf + (1 - dampening) * d
 *   d = nesterov ? d + momentum * buf : buf    (if momentum != 0)
 *   p = p - lr * d
 */
#include "optim/optim_impl.h"

#include <math.h>

static int sgd_validate(const pl_optim_config *c, pl_err *err)
{
    int rc = pl_optim_check_range(err, "sgd", "momentum", c->momentum, 0, 0, INFINITY, 1);
    if (rc == PL_OK && !isfinite(c->dampening))
        rc = pl_err_set(err, PL_ERR_ARG, "sgd: dampening = %g invalid, expected a finite value",
                        c->dampening);
    if (rc == PL_OK && c->nesterov && (c->momentum <= 0 || c->dampening != 0))
        rc = pl_err_set(err, PL_ERR_ARG,
                        "sgd: nesterov requires momentum > 0 and dampening = 0 "
                        "(got momentum = %g, dampening = %g)",
                        c->momentum, c->dampening);
    return rc;
}

static int sgd_state_spec(const pl_optim_config *c, pl_optim_state_spec spec[PL_OPTIM_MAX_STATE])
{
    if (c->momentum == 0)
        return 0;
    spec[0] = (pl_optim_state_spec){"momentum_buffer", 0.0f};
    return 1;
}

/* p, g, buf: [n]. Scalars are rounded to float once, as torch does; torch's
 * vectorised add(x, alpha=a) is a fused multiply-add, hence fmaf. */
static void sgd_step(const pl_optim_config *c, int64_t step, float *const *state, float *p,
                     const float *g, size_t n)
{
    const float wd = (float)c->weight_decay, mom = (float)c->momentum;
    const float keep = (float)(1.0 - c->dampening), neg_lr = (float)-c->lr;
    const int has_wd = c->weight_decay != 0, has_mom = c->momentum != 0;
    const int first = step == 1, nesterov = c->nesterov;
    float *buf = has_mom ? state[0] : NULL;
#pragma omp parallel for simd schedule(static) if (n >= PL_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float d = has_wd ? fmaf(p[i], wd, g[i]) : g[i];
        if (has_mom) {
            float b = first ? d : fmaf(d, keep, buf[i] * mom);
            buf[i] = b;
            d = nesterov ? fmaf(b, mom, d) : b;
        }
        p[i] = fmaf(d, neg_lr, p[i]);
    }
}

const pl_optim_ops pl_optim_sgd_ops = {"sgd", sgd_validate, sgd_state_spec, sgd_step};
