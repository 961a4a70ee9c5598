/* adam.c — torch.optim.Adam and torch.optim.AdamW (single-tensor path,
 * maximize=False, capturable=False).
 *
 *   adam:  g = g + wd * p                (L2, if weight_decay != 0)
 *   adamw: p = p * (1 - lr * wd)         (decoupled decay)
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   vmax = max(vmax, v)                  (amsgrad; the denominator uses vmax)
 *   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *   p = p - lr / (1 - beta1^t) * m / denom
 */
#include "optim/optim_impl.h"

#include <math.h>

static int adam_check(const char *kind, const pl_optim_config *c, pl_err *err)
{
    int rc = pl_optim_check_range(err, kind, "beta1", c->beta1, 0, 0, 1, 1);
    if (rc == PL_OK)
        rc = pl_optim_check_range(err, kind, "beta2", c->beta2, 0, 0, 1, 1);
    if (rc == PL_OK)
        rc = pl_optim_check_range(err, kind, "eps", c->eps, 0, 1, INFINITY, 1);
    return rc;
}

static int adam_validate(const pl_optim_config *c, pl_err *err) { return adam_check("adam", c, err); }
static int adamw_validate(const pl_optim_config *c, pl_err *err) { return adam_check("adamw", c, err); }

static int adam_state_spec(const pl_optim_config *c, pl_optim_state_spec spec[PL_OPTIM_MAX_STATE])
{
    spec[0] = (pl_optim_state_spec){"exp_avg", 0.0f};
    spec[1] = (pl_optim_state_spec){"exp_avg_sq", 0.0f};
    if (!c->amsgrad)
        return 2;
    spec[2] = (pl_optim_state_spec){"max_exp_avg_sq", 0.0f};
    return 3;
}

/* Per-step scalars, computed in double as torch does in Python, then
 * rounded to float where torch passes them to a float kernel. */
typedef struct adam_coef {
    float decay;        /* adamw: 1 - lr*wd; adam: 1 */
    float wd;           /* adam: L2 coefficient; adamw: 0 */
    float b1, omb1, b2, omb2, bc2_sqrt, eps, neg_step_size;
} adam_coef;

static adam_coef adam_coefs(const pl_optim_config *c, int64_t step, int decoupled)
{
    double bc1 = 1.0 - pow(c->beta1, (double)step);
    double bc2 = 1.0 - pow(c->beta2, (double)step);
    adam_coef k = {
        .decay = decoupled ? (float)(1.0 - c->lr * c->weight_decay) : 1.0f,
        .wd = decoupled ? 0.0f : (float)c->weight_decay,
        .b1 = (float)c->beta1, .omb1 = (float)(1.0 - c->beta1),
        .b2 = (float)c->beta2, .omb2 = (float)(1.0 - c->beta2),
        .bc2_sqrt = (float)sqrt(bc2), .eps = (float)c->eps,
        .neg_step_size = (float)-(c->lr / bc1),
    };
    return k;
}

/* p, g, m, v, vmax: [n]; vmax is NULL unless amsgrad. */
static void adam_update(const adam_coef *k, int decoupled, float *m, float *v, float *vmax,
                        float *p, const float *g, size_t n)
{
    const adam_coef K = *k;
    const int has_wd = K.wd != 0.0f, ams = vmax != NULL;
#pragma omp parallel for simd schedule(static) if (n >= PL_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float pi = decoupled ? p[i] * K.decay : p[i];
        float gi = has_wd ? fmaf(pi, K.wd, g[i]) : g[i];
        float mi = fmaf(gi, K.omb1, m[i] * K.b1);
        float vi = v[i] * K.b2 + K.omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        if (ams) {
            vi = vi > vmax[i] ? vi : vmax[i];
            vmax[i] = vi;
        }
        float denom = sqrtf(vi) / K.bc2_sqrt + K.eps;
        p[i] = pi + K.neg_step_size * mi / denom;
    }
}

static void adam_step(const pl_optim_config *c, int64_t step, float *const *state, float *p,
                      const float *g, size_t n)
{
    adam_coef k = adam_coefs(c, step, 0);
    adam_update(&k, 0, state[0], state[1], c->amsgrad ? state[2] : NULL, p, g, n);
}

static void adamw_step(const pl_optim_config *c, int64_t step, float *const *state, float *p,
                       const float *g, size_t n)
{
    adam_coef k = adam_coefs(c, step, 1);
    adam_update(&k, 1, state[0], state[1], c->amsgrad ? state[2] : NULL, p, g, n);
}

const pl_optim_ops pl_optim_adam_ops = {"adam", adam_validate, adam_state_spec, adam_step};
const pl_optim_ops pl_optim_adamw_ops = {"adamw", adamw_validate, adam_state_spec, adamw_step};
