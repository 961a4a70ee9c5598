/* schedule.c — per-step learning-rate schedules: CosineAnnealingLR and
 * OneCycleLR as in torch.optim.lr_scheduler (PyTorch 1.13). */
#include <math.h>
#include <string.h>

#include "peerless/optim.h"

static const char *const sched_names[] = {"plateau", "constant", "cosine", "onecycle"};

pl_sched_config pl_sched_defaults(pl_sched_kind kind, double lr)
{
    return (pl_sched_config){.kind = kind, .lr = lr, .min_lr = 0, .pct_start = 0.3,
                             .div_factor = 25, .final_div_factor = 1e4, .cycle_momentum = 1,
                             .base_momentum = 0.85, .max_momentum = 0.95};
}

int pl_sched_kind_parse(const char *name, pl_sched_kind *kind, pl_err *err)
{
    for (int i = 0; i < 4; i++)
        if (name && !strcmp(name, sched_names[i])) {
            *kind = (pl_sched_kind)i;
            return PL_OK;
        }
    return pl_err_set(err, PL_ERR_ARG,
                      "unknown lr schedule '%s', expected plateau, constant, cosine or onecycle",
                      name ? name : "(null)");
}

const char *pl_sched_kind_name(pl_sched_kind kind)
{
    return (unsigned)kind < 4 ? sched_names[kind] : "?";
}

static int uses_momentum(pl_optim_kind k)
{
    return k == PL_OPTIM_SGD || k == PL_OPTIM_RMSPROP || k == PL_OPTIM_ADAM || k == PL_OPTIM_ADAMW;
}

int pl_sched_prepare(const pl_sched_config *s, pl_optim_config *cfg, pl_err *err)
{
    const char *name = pl_sched_kind_name(s->kind);
    if ((unsigned)s->kind >= 4)
        return pl_err_set(err, PL_ERR_ARG, "lr schedule: unknown kind %d", (int)s->kind);
    if (s->kind == PL_SCHED_PLATEAU || s->kind == PL_SCHED_CONSTANT)
        return PL_OK;
    if (s->total_steps < 1)
        return pl_err_set(err, PL_ERR_ARG, "%s schedule: total steps = %lld invalid, expected >= 1",
                          name, (long long)s->total_steps);
    if (!(s->lr > 0 && isfinite(s->lr)))
        return pl_err_set(err, PL_ERR_ARG, "%s schedule: lr = %g invalid, expected > 0", name, s->lr);
    if (s->kind == PL_SCHED_COSINE) {
        if (!(s->min_lr >= 0 && s->min_lr <= s->lr))
            return pl_err_set(err, PL_ERR_ARG, "cosine schedule: min lr = %g invalid, expected [0, lr = %g]",
                              s->min_lr, s->lr);
        cfg->lr = s->lr;
        return PL_OK;
    }
    if (!(s->pct_start > 0 && s->pct_start < 1))
        return pl_err_set(err, PL_ERR_ARG, "onecycle schedule: pct_start = %g invalid, expected (0, 1)",
                          s->pct_start);
    if (!(s->div_factor > 0 && s->final_div_factor > 0 && isfinite(s->div_factor) &&
          isfinite(s->final_div_factor)))
        return pl_err_set(err, PL_ERR_ARG,
                          "onecycle schedule: div_factor = %g, final_div_factor = %g invalid, expected > 0",
                          s->div_factor, s->final_div_factor);
    if (s->cycle_momentum) {
        if (!uses_momentum(cfg->kind))
            return pl_err_set(err, PL_ERR_ARG,
                              "onecycle schedule: optimizer %s has no momentum to cycle "
                              "(use sgd, adam, adamw or rmsprop)",
                              pl_optim_kind_name(cfg->kind));
        if (!(s->base_momentum >= 0 && s->base_momentum <= s->max_momentum && s->max_momentum < 1))
            return pl_err_set(err, PL_ERR_ARG,
                              "onecycle schedule: momentum range [%g, %g] invalid, expected 0 <= base <= max < 1",
                              s->base_momentum, s->max_momentum);
        if (cfg->kind == PL_OPTIM_ADAM || cfg->kind == PL_OPTIM_ADAMW)
            cfg->beta1 = s->max_momentum;
        else
            cfg->momentum = s->max_momentum;
    }
    cfg->lr = s->lr / s->div_factor;
    return PL_OK;
}

/* torch's _annealing_cos: cosine from start (pct 0) to end (pct 1). */
static double anneal_cos(double start, double end, double pct)
{
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

void pl_sched_values(const pl_sched_config *s, int64_t t, double *lr, double *momentum)
{
    *lr = s->lr;
    *momentum = NAN;
    if (s->kind == PL_SCHED_COSINE) {
        int64_t tt = t < s->total_steps ? t : s->total_steps;
        *lr = s->min_lr + (s->lr - s->min_lr) * (1.0 + cos(M_PI * (double)tt / (double)s->total_steps)) / 2.0;
    } else if (s->kind == PL_SCHED_ONECYCLE) {
        double initial = s->lr / s->div_factor, min_lr = initial / s->final_div_factor;
        double end1 = s->pct_start * (double)s->total_steps - 1.0, end2 = (double)s->total_steps - 1.0;
        double step = (double)(t < s->total_steps ? t : s->total_steps - 1);
        if (step <= end1) {
            double pct = end1 > 0 ? step / end1 : 1.0; /* torch divides by zero here */
            *lr = anneal_cos(initial, s->lr, pct);
            *momentum = anneal_cos(s->max_momentum, s->base_momentum, pct);
        } else {
            double pct = (step - end1) / (end2 - end1);
            *lr = anneal_cos(s->lr, min_lr, pct);
            *momentum = anneal_cos(s->base_momentum, s->max_momentum, pct);
        }
        if (!s->cycle_momentum)
            *momentum = NAN;
    }
}

int pl_sched_apply(const pl_sched_config *s, int64_t t, pl_optim *opt, pl_err *err)
{
    if (s->kind == PL_SCHED_PLATEAU || s->kind == PL_SCHED_CONSTANT)
        return PL_OK;
    double lr, mom;
    pl_sched_values(s, t, &lr, &mom);
    int st = pl_optim_set_lr(opt, lr, err);
    if (!st && !isnan(mom))
        st = pl_optim_set_momentum(opt, mom, err);
    return st;
}
