/* optim.c — optimizer configs, names, state allocation and dispatch. */
#include "optim/optim_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/tensor.h"

struct pl_optim {
    pl_optim_config cfg;
    const pl_optim_ops *ops;
    size_t n;
    int64_t steps;
    int nstate;
    pl_optim_state_spec spec[PL_OPTIM_MAX_STATE];
    float *state[PL_OPTIM_MAX_STATE]; /* owned, n floats each */
};

/* Indexed by pl_optim_kind. */
static const pl_optim_ops *const kind_ops[PL_OPTIM_KIND_COUNT_] = {
    &pl_optim_sgd_ops, &pl_optim_adam_ops, &pl_optim_adamw_ops,
    &pl_optim_rmsprop_ops, &pl_optim_adagrad_ops,
};

static const pl_optim_config kind_defaults[PL_OPTIM_KIND_COUNT_] = {
    {.kind = PL_OPTIM_SGD, .lr = 0.01},
    {.kind = PL_OPTIM_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
    {.kind = PL_OPTIM_ADAMW, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
     .weight_decay = 1e-2},
    {.kind = PL_OPTIM_RMSPROP, .lr = 1e-2, .alpha = 0.99, .eps = 1e-8},
    {.kind = PL_OPTIM_ADAGRAD, .lr = 1e-2, .eps = 1e-10},
};

static int kind_valid(int kind) { return kind >= 0 && kind < PL_OPTIM_KIND_COUNT_; }

pl_optim_config pl_optim_defaults(pl_optim_kind kind)
{
    return kind_defaults[kind_valid((int)kind) ? kind : PL_OPTIM_SGD];
}

int pl_optim_config_init(pl_optim_config *cfg, int kind, pl_err *err)
{
    if (!kind_valid(kind))
        return pl_err_set(err, PL_ERR_ARG, "optimizer kind %d out of range [0, %d)", kind,
                          (int)PL_OPTIM_KIND_COUNT_);
    *cfg = kind_defaults[kind];
    return PL_OK;
}

const char *pl_optim_kind_name(pl_optim_kind kind)
{
    return kind_valid((int)kind) ? kind_ops[kind]->name : "?";
}

int pl_optim_kind_parse(const char *name, pl_optim_kind *kind, pl_err *err)
{
    for (int k = 0; k < PL_OPTIM_KIND_COUNT_; k++) {
        if (name && strcmp(name, kind_ops[k]->name) == 0) {
            *kind = (pl_optim_kind)k;
            return PL_OK;
        }
    }
    return pl_err_set(err, PL_ERR_ARG,
                      "unknown optimizer \"%s\": expected one of sgd, adam, adamw, rmsprop, adagrad",
                      name ? name : "(null)");
}

typedef enum field_type { FIELD_REAL, FIELD_FLAG } field_type;

typedef struct field_info {
    const char *key;
    size_t offset;
    field_type type;
} field_info;

#define REAL(f) {#f, offsetof(pl_optim_config, f), FIELD_REAL}
#define FLAG(f) {#f, offsetof(pl_optim_config, f), FIELD_FLAG}
static const field_info fields[] = {
    REAL(lr), REAL(weight_decay), REAL(momentum), REAL(dampening), FLAG(nesterov),
    REAL(beta1), REAL(beta2), REAL(eps), FLAG(amsgrad), REAL(alpha), FLAG(centered),
    REAL(lr_decay), REAL(initial_accumulator_value),
};
#undef REAL
#undef FLAG

int pl_optim_config_set(pl_optim_config *cfg, const char *key, double value, pl_err *err)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!key || strcmp(key, fields[i].key) != 0)
            continue;
        char *at = (char *)cfg + fields[i].offset;
        if (fields[i].type == FIELD_REAL)
            memcpy(at, &value, sizeof value);
        else
            *(int *)(void *)at = value != 0.0;
        return PL_OK;
    }
    return pl_err_set(err, PL_ERR_ARG,
                      "unknown optimizer option \"%s\": expected one of lr, weight_decay, "
                      "momentum, dampening, nesterov, beta1, beta2, eps, amsgrad, alpha, "
                      "centered, lr_decay, initial_accumulator_value",
                      key ? key : "(null)");
}

int pl_optim_check_range(pl_err *err, const char *kind, const char *field, double v,
                         double lo, int lo_open, double hi, int hi_open)
{
    int ok = lo_open ? v > lo : v >= lo;
    ok = ok && (hi_open ? v < hi : v <= hi);
    if (ok)
        return PL_OK;
    return pl_err_set(err, PL_ERR_ARG, "%s: %s = %g invalid, expected %s%g, %g%s", kind,
                      field, v, lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
}

int pl_optim_config_validate(const pl_optim_config *cfg, pl_err *err)
{
    if (!cfg)
        return pl_err_set(err, PL_ERR_ARG, "optimizer config is NULL");
    if (!kind_valid((int)cfg->kind))
        return pl_err_set(err, PL_ERR_ARG, "optimizer kind %d out of range [0, %d)",
                          (int)cfg->kind, (int)PL_OPTIM_KIND_COUNT_);
    const pl_optim_ops *ops = kind_ops[cfg->kind];
    int rc = pl_optim_check_range(err, ops->name, "lr", cfg->lr, 0, 0, INFINITY, 1);
    if (rc == PL_OK)
        rc = pl_optim_check_range(err, ops->name, "weight_decay", cfg->weight_decay, 0, 0,
                                  INFINITY, 1);
    return rc == PL_OK ? ops->validate(cfg, err) : rc;
}

void pl_optim_destroy(pl_optim *opt)
{
    if (!opt)
        return;
    for (int i = 0; i < opt->nstate; i++)
        pl_free(opt->state[i]);
    free(opt);
}

static int alloc_state(pl_optim *opt, pl_err *err)
{
    opt->nstate = opt->ops->state_spec(&opt->cfg, opt->spec);
    for (int i = 0; i < opt->nstate; i++) {
        size_t bytes = (opt->n ? opt->n : 1) * sizeof(float);
        opt->state[i] = pl_alloc(bytes);
        if (!opt->state[i])
            return pl_err_set(err, PL_ERR_NOMEM, "%s: cannot allocate state \"%s\" (%zu floats)",
                              opt->ops->name, opt->spec[i].name, opt->n);
        for (size_t j = 0; j < opt->n; j++)
            opt->state[i][j] = opt->spec[i].init;
    }
    return PL_OK;
}

int pl_optim_create(pl_optim **out, const pl_optim_config *cfg, size_t n, pl_err *err)
{
    *out = NULL;
    int rc = pl_optim_config_validate(cfg, err);
    if (rc != PL_OK)
        return rc;
    pl_optim *opt = calloc(1, sizeof *opt);
    if (!opt)
        return pl_err_set(err, PL_ERR_NOMEM, "cannot allocate optimizer");
    opt->cfg = *cfg;
    opt->ops = kind_ops[cfg->kind];
    opt->n = n;
    rc = alloc_state(opt, err);
    if (rc != PL_OK) {
        pl_optim_destroy(opt);
        return rc;
    }
    *out = opt;
    return PL_OK;
}

int pl_optim_step(pl_optim *opt, float *params, const float *grads, size_t n, pl_err *err)
{
    if (!opt || !params || !grads)
        return pl_err_set(err, PL_ERR_ARG, "optimizer step: NULL %s",
                          !opt ? "optimizer" : !params ? "params" : "grads");
    if (n != opt->n)
        return pl_err_set(err, PL_ERR_SHAPE,
                          "%s step: vector has %zu floats, optimizer was created for %zu",
                          opt->ops->name, n, opt->n);
    opt->steps++;
    opt->ops->step(&opt->cfg, opt->steps, opt->state, params, grads, n);
    return PL_OK;
}

double pl_optim_lr(const pl_optim *opt) { return opt->cfg.lr; }

int pl_optim_set_lr(pl_optim *opt, double lr, pl_err *err)
{
    int rc = pl_optim_check_range(err, opt->ops->name, "lr", lr, 0, 0, INFINITY, 1);
    if (rc == PL_OK)
        opt->cfg.lr = lr;
    return rc;
}

int pl_optim_set_momentum(pl_optim *opt, double momentum, pl_err *err)
{
    pl_optim_kind k = opt->cfg.kind;
    if (!(momentum >= 0 && momentum < 1))
        return pl_err_set(err, PL_ERR_ARG, "%s: momentum = %g invalid, expected [0, 1)",
                          opt->ops->name, momentum);
    if (k == PL_OPTIM_ADAM || k == PL_OPTIM_ADAMW) {
        opt->cfg.beta1 = momentum;
        return PL_OK;
    }
    if ((k == PL_OPTIM_SGD || k == PL_OPTIM_RMSPROP) && opt->cfg.momentum > 0 && momentum > 0) {
        opt->cfg.momentum = momentum;
        return PL_OK;
    }
    return pl_err_set(err, PL_ERR_ARG,
                      "%s: cannot set momentum to %g (the optimizer was created %s)", opt->ops->name,
                      momentum, k == PL_OPTIM_ADAGRAD ? "without momentum (adagrad)" : "with momentum 0");
}

int64_t pl_optim_steps(const pl_optim *opt) { return opt->steps; }

int pl_optim_set_steps(pl_optim *opt, int64_t steps, pl_err *err)
{
    if (steps < 0)
        return pl_err_set(err, PL_ERR_ARG, "%s: step count %lld invalid, expected >= 0",
                          opt->ops->name, (long long)steps);
    opt->steps = steps;
    return PL_OK;
}

size_t pl_optim_size(const pl_optim *opt) { return opt->n; }

const pl_optim_config *pl_optim_config_of(const pl_optim *opt) { return &opt->cfg; }

int pl_optim_state_count(const pl_optim *opt) { return opt->nstate; }

const char *pl_optim_state_name(const pl_optim *opt, int i)
{
    return i >= 0 && i < opt->nstate ? opt->spec[i].name : NULL;
}

float *pl_optim_state_data(pl_optim *opt, int i)
{
    return i >= 0 && i < opt->nstate ? opt->state[i] : NULL;
}

float *pl_optim_state_find(pl_optim *opt, const char *name)
{
    for (int i = 0; name && i < opt->nstate; i++)
        if (strcmp(opt->spec[i].name, name) == 0)
            return opt->state[i];
    return NULL;
}
