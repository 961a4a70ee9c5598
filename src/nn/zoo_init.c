/* zoo_init.c — torchvision's weight initialisation schemes, applied to a
 * model's parameter views by name and shape. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/zoo.h"

/* fan_in / fan_out of a weight as torch.nn.init computes them:
 * dim 1 resp. dim 0 times the receptive field (product of dims >= 2). */
static void fans(const pl_shape *s, double *fan_in, double *fan_out)
{
    double rf = 1;
    for (int i = 2; i < s->ndim; i++)
        rf *= (double)s->dim[i];
    *fan_in = s->ndim > 1 ? (double)s->dim[1] * rf : (double)s->dim[0];
    *fan_out = (double)s->dim[0] * rf;
}

/* p [numel(shape)] filled by `how`; the shape gives the fans. */
static void fill(float *p, const pl_shape *shape, pl_zoo_fill how, pl_rng *r)
{
    size_t n = (size_t)pl_shape_numel(shape);
    double fan_in, fan_out;
    fans(shape, &fan_in, &fan_out);
    float std = 0.0f, bound = 0.0f;
    switch (how) {
    case PL_ZOO_KEEP:
        return;
    case PL_ZOO_ZERO:
    case PL_ZOO_ONE:
        for (size_t i = 0; i < n; i++)
            p[i] = how == PL_ZOO_ONE ? 1.0f : 0.0f;
        return;
    case PL_ZOO_KAIMING_NORMAL_FAN_OUT:
        std = (float)sqrt(2.0 / fan_out);
        break;
    case PL_ZOO_NORMAL_001:
        std = 0.01f;
        break;
    case PL_ZOO_KAIMING_UNIFORM_FAN_IN:
        bound = (float)sqrt(6.0 / fan_in);
        for (size_t i = 0; i < n; i++)
            p[i] = pl_rng_uniform_range(r, -bound, bound);
        return;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = std * pl_rng_normal(r);
}

/* Split "a.b.weight" into module "a.b" (into buf) and leaf "weight". */
static const char *split_name(const char *name, char *buf, size_t len)
{
    const char *dot = strrchr(name, '.');
    size_t k = dot ? (size_t)(dot - name) : 0;
    if (k >= len)
        k = len - 1;
    memcpy(buf, name, k);
    buf[k] = '\0';
    return dot ? dot + 1 : name;
}

static int is_bn(pl_model *m, const char *module)
{
    char key[300];
    snprintf(key, sizeof key, "%s.running_mean", module);
    return pl_flat_find(pl_model_buffers(m), key) >= 0;
}

/* The fill for one parameter view under scheme s. */
static pl_zoo_fill choose(pl_model *m, const pl_flat *params, int i, const pl_zoo_scheme *s)
{
    char module[256], key[300];
    const char *leaf = split_name(params->views[i].name, module, sizeof module);
    int weight = strcmp(leaf, "weight") == 0;
    if (is_bn(m, module))
        return weight ? s->bn_weight : s->bn_bias;
    snprintf(key, sizeof key, "%s.weight", module);
    int w = pl_flat_find(params, key);
    if (w < 0)
        return PL_ZOO_KEEP;
    if (weight && s->special && strcmp(module, s->special) == 0)
        return s->special_weight;
    if (params->views[w].shape.ndim == 4)
        return weight ? s->conv_weight : s->conv_bias;
    return weight ? s->linear_weight : s->linear_bias;
}

void pl_zoo_init(pl_model *m, uint64_t seed, const pl_zoo_scheme *s)
{
    pl_rng r;
    pl_rng_seed(&r, seed, 0x7a6f6f); /* "zoo": independent of pl_model_init's draws */
    pl_flat *params = pl_model_params(m);
    for (int i = 0; i < params->nviews; i++)
        fill(pl_flat_ptr(params, i), &params->views[i].shape, choose(m, params, i, s), &r);
}
