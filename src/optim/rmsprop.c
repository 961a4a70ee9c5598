/* rmsprop.c — torch.optim.RMSprop (single-tensor path, maximize=False).
 *
 *   g = g + wd * p                       (if weight_decay != 0)
 *   sq = alpha * sq + (1 - alpha) * g * g
 *   centered: ga = alpha * ga + (1 - alpha) * g;  avg = sqrt(sq - ga * ga)
 *   else:     avg = sqrt(sq)
 *   avg = avg + eps
 *   momentum > 0: buf = momentum * buf + g / avg;  p = p - lr * buf
 *   else:         p = p - lr * g / avg
 */
#include "optim/optim_impl.h"

#include <math.h>

static int rmsprop_validate(const pl_optim_config *c, pl_err *err)
{
    int rc = pl_optim_check_range(err, "rmsprop", "alpha", c->alpha, 0, 0, 1, 0);
    if (rc == PL_OK)
        rc = pl_optim_check_range(err, "rmsprop", "eps", c->eps, 0, 1, INFINITY, 1);
    if (rc == PL_OK)
        rc = pl_optim_check_range(err, "rmsprop", "momentum", c->momentum, 0, 0, INFINITY, 1);
    return rc;
}

/* State order: square_avg, then momentum_buffer and grad_avg when used. */
static int rmsprop_state_spec(const pl_optim_config *c,
                              pl_optim_state_spec spec[PL_OPTIM_MAX_STATE])
{
    int k = 0;
    spec[k++] = (pl_optim_state_spec){"square_avg", 0.0f};
    if (c->momentum > 0)
        spec[k++] = (pl_optim_state_spec){"momentum_buffer", 0.0f};
    if (c->centered)
        spec[k++] = (pl_optim_state_spec){"grad_avg", 0.0f};
    return k;
}

/* p, g, sq, buf, ga: [n]; buf is NULL without momentum, ga NULL unless centered. */
static void rmsprop_step(const pl_optim_config *c, int64_t step, float *const *state, float *p,
                         const float *g, size_t n)
{
    (void)step;
    float *sq = state[0];
    float *buf = c->momentum > 0 ? state[1] : NULL;
    float *ga = c->centered ? state[buf ? 2 : 1] : NULL;
    const float wd = (float)c->weight_decay, a = (float)c->alpha;
    const float oma = (float)(1.0 - c->alpha), eps = (float)c->eps;
    const float mom = (float)c->momentum, neg_lr = (float)-c->lr;
    const int has_wd = c->weight_decay != 0, has_mom = buf != NULL, centered = ga != NULL;
#pragma omp parallel for simd schedule(static) if (n >= PL_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = has_wd ? fmaf(p[i], wd, g[i]) : g[i];
        float s = sq[i] * a + oma * gi * gi;
        sq[i] = s;
        float avg;
        if (centered) {
            float m = fmaf(gi, oma, ga[i] * a);
            ga[i] = m;
            avg = sqrtf(s + -m * m);
        } else {
            avg = sqrtf(s);
        }
        avg = avg + eps;
        if (has_mom) {
            float b = buf[i] * mom + gi / avg;
            buf[i] = b;
            p[i] = fmaf(b, neg_lr, p[i]);
        } else {
            p[i] = p[i] + neg_lr * gi / avg;
        }
    }
}

const pl_optim_ops pl_optim_rmsprop_ops = {"rmsprop", rmsprop_validate, rmsprop_state_spec,
                                           rmsprop_step};
