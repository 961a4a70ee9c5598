/* early_stop.c — patience-based early stopping on a validation loss. */
#include <math.h>

#include "peerless/optim.h"

int pl_early_stop_init(pl_early_stop *es, int patience, double min_delta, pl_err *err)
{
    if (patience < 1)
        return pl_err_set(err, PL_ERR_ARG, "early stopping: patience = %d invalid, expected >= 1",
                          patience);
    if (!(min_delta >= 0 && isfinite(min_delta)))
        return pl_err_set(err, PL_ERR_ARG,
                          "early stopping: min_delta = %g invalid, expected a finite value >= 0",
                          min_delta);
    *es = (pl_early_stop){.patience = patience, .min_delta = min_delta, .best = INFINITY};
    return PL_OK;
}

int pl_early_stop_step(pl_early_stop *es, double val_loss, int *improved)
{
    /* NaN compares false, so a NaN loss counts as no improvement. The first
     * finite value always improves on +inf. */
    int better = val_loss < es->best - es->min_delta;
    if (better) {
        es->best = val_loss;
        es->counter = 0;
    } else {
        es->counter++;
        if (es->counter >= es->patience)
            es->stop = 1;
    }
    if (improved)
        *improved = better;
    return es->stop;
}
