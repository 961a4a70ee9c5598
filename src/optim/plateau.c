/* plateau.c — ReduceLROnPlateau, as torch.optim.lr_scheduler (mode='min'). */
#include <math.h>

#include "peerless/optim.h"

pl_plateau_config pl_plateau_defaults(void)
{
    pl_plateau_config c = {.factor = 0.1, .patience = 10, .threshold = 1e-4,
                           .threshold_abs = 0, .cooldown = 0, .min_lr = 0.0, .eps = 1e-8};
    return c;
}

static int plateau_validate(const pl_plateau_config *c, double lr, pl_err *err)
{
    if (!(c->factor >= 0 && c->factor < 1))
        return pl_err_set(err, PL_ERR_ARG, "plateau: factor = %g invalid, expected [0, 1)",
                          c->factor);
    if (c->patience < 0 || c->cooldown < 0)
        return pl_err_set(err, PL_ERR_ARG,
                          "plateau: patience = %d, cooldown = %d invalid, expected >= 0",
                          c->patience, c->cooldown);
    if (!(c->threshold >= 0 && c->min_lr >= 0 && c->eps >= 0 && isfinite(c->threshold)))
        return pl_err_set(err, PL_ERR_ARG,
                          "plateau: threshold = %g, min_lr = %g, eps = %g invalid, "
                          "expected finite values >= 0",
                          c->threshold, c->min_lr, c->eps);
    if (!(lr >= 0 && isfinite(lr)))
        return pl_err_set(err, PL_ERR_ARG, "plateau: initial lr = %g invalid, expected >= 0",
                          lr);
    return PL_OK;
}

int pl_plateau_init(pl_plateau *s, const pl_plateau_config *cfg, double lr, pl_err *err)
{
    pl_plateau_config c = cfg ? *cfg : pl_plateau_defaults();
    int rc = plateau_validate(&c, lr, err);
    if (rc != PL_OK)
        return rc;
    *s = (pl_plateau){.cfg = c, .lr = lr, .best = INFINITY};
    return PL_OK;
}

static int plateau_is_better(const pl_plateau *s, double metric)
{
    if (s->cfg.threshold_abs)
        return metric < s->best - s->cfg.threshold;
    return metric < s->best * (1.0 - s->cfg.threshold);
}

double pl_plateau_step(pl_plateau *s, double metric, int *reduced)
{
    int cut = 0;
    s->last_epoch++;
    if (plateau_is_better(s, metric)) {
        s->best = metric;
        s->num_bad_epochs = 0;
    } else {
        s->num_bad_epochs++;
    }
    if (s->cooldown_counter > 0) {
        s->cooldown_counter--;
        s->num_bad_epochs = 0; /* bad epochs during cooldown do not count */
    }
    if (s->num_bad_epochs > s->cfg.patience) {
        double new_lr = fmax(s->lr * s->cfg.factor, s->cfg.min_lr);
        /* torch skips reductions smaller than eps (lr already near min_lr)
         * but still restarts the cooldown and the bad-epoch count. */
        if (s->lr - new_lr > s->cfg.eps) {
            s->lr = new_lr;
            cut = 1;
        }
        s->cooldown_counter = s->cfg.cooldown;
        s->num_bad_epochs = 0;
    }
    if (reduced)
        *reduced = cut;
    return s->lr;
}
