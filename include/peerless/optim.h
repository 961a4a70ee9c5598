/* optim.h — optimizers over one flat parameter vector, plus training control
 * (ReduceLROnPlateau, early stopping).
 *
 * An optimizer updates params[0..n) in place from grads[0..n): the whole
 * model's parameters and gradients are each one contiguous float vector
 * (pl_flat). Update rules, defaults and the order of floating-point
 * operations follow the single-tensor (foreach=False) code paths of
 * torch.optim in PyTorch 1.13: scalar coefficients are computed in double
 * and rounded to float once, elementwise work is float32.
 *
 *   kind      torch class        state vectors (each n floats, torch names)
 *   sgd       torch.optim.SGD     momentum_buffer (if momentum != 0)
 *   adam      torch.optim.Adam    exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad)
 *   adamw     torch.optim.AdamW   same as adam
 *   rmsprop   torch.optim.RMSprop square_avg, momentum_buffer (momentum > 0),
 *                                 grad_avg (centered)
 *   adagrad   torch.optim.Adagrad sum (starts at initial_accumulator_value)
 */
#ifndef PEERLESS_OPTIM_H
#define PEERLESS_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/status.h"

typedef enum pl_optim_kind {
    PL_OPTIM_SGD = 0,
    PL_OPTIM_ADAM = 1,
    PL_OPTIM_ADAMW = 2,
    PL_OPTIM_RMSPROP = 3,
    PL_OPTIM_ADAGRAD = 4,
    PL_OPTIM_KIND_COUNT_ = 5 /* sentinel */
} pl_optim_kind;

/* Hyper-parameters. Fields a kind does not use are ignored. Get a valid
 * starting point from pl_optim_defaults(); the defaults are torch's:
 *   sgd      lr 0.01 (torch has NO default lr; 0.01 is ours), momentum 0,
 *            dampening 0, weight_decay 0, nesterov 0
 *   adam     lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, amsgrad 0
 *   adamw    as adam but weight_decay 1e-2 (decoupled: p *= 1 - lr*wd)
 *   rmsprop  lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0,
 *            centered 0
 *   adagrad  lr 1e-2, lr_decay 0, weight_decay 0,
 *            initial_accumulator_value 0, eps 1e-10 */
typedef struct pl_optim_config {
    pl_optim_kind kind;
    double lr;
    double weight_decay;   /* all kinds; L2 added to the gradient, except adamw */
    double momentum;       /* sgd, rmsprop */
    double dampening;      /* sgd */
    int nesterov;          /* sgd: requires momentum > 0 and dampening == 0 */
    double beta1, beta2;   /* adam, adamw: each in [0, 1) */
    double eps;            /* adam, adamw, rmsprop, adagrad: > 0 */
    int amsgrad;           /* adam, adamw */
    double alpha;          /* rmsprop: smoothing constant in [0, 1] */
    int centered;          /* rmsprop */
    double lr_decay;       /* adagrad: clr = lr / (1 + (step-1) * lr_decay) */
    double initial_accumulator_value; /* adagrad */
} pl_optim_config;

/* Defaults for `kind` (see above). An out-of-range kind gives sgd's. */
pl_optim_config pl_optim_defaults(pl_optim_kind kind);
/* Same, written through a pointer (for bindings that cannot take structs by
 * value). Returns PL_OK or PL_ERR_ARG for an unknown kind. */
int pl_optim_config_init(pl_optim_config *cfg, int kind, pl_err *err);
/* "sgd", "adam", "adamw", "rmsprop", "adagrad" (case-sensitive) -> kind.
 * Unknown names fail with PL_ERR_ARG and a message listing the valid ones. */
int pl_optim_kind_parse(const char *name, pl_optim_kind *kind, pl_err *err);
/* Name of `kind`, or "?" when out of range. Static string. */
const char *pl_optim_kind_name(pl_optim_kind kind);
/* Set one field by name: "lr", "weight_decay", "momentum", "dampening",
 * "nesterov", "beta1", "beta2", "eps", "amsgrad", "alpha", "centered",
 * "lr_decay", "initial_accumulator_value" (flags: nonzero = on). Does not
 * validate the value; pl_optim_config_validate() / pl_optim_create() do. */
int pl_optim_config_set(pl_optim_config *cfg, const char *key, double value, pl_err *err);
/* Check every field the kind uses; PL_ERR_ARG with a message naming the
 * field, its value and the allowed range. */
int pl_optim_config_validate(const pl_optim_config *cfg, pl_err *err);

typedef struct pl_optim pl_optim;

/* Validate `cfg` (copied) and create an optimizer for vectors of n floats.
 * All state vectors are allocated here, once, and initialised (zero; adagrad's
 * sum = initial_accumulator_value). *out is owned by the caller: free with
 * pl_optim_destroy. On failure *out is NULL. */
int pl_optim_create(pl_optim **out, const pl_optim_config *cfg, size_t n, pl_err *err);
/* Free the optimizer and its state. NULL is a no-op. */
void pl_optim_destroy(pl_optim *opt);

/* One update: params[0..n) -= f(grads[0..n), state). n must equal the size
 * given at creation (else PL_ERR_SHAPE). grads is read only. Increments the
 * step count. Elementwise, parallel over the vector with OpenMP. */
int pl_optim_step(pl_optim *opt, float *params, const float *grads, size_t n, pl_err *err);

double pl_optim_lr(const pl_optim *opt);
/* Change the learning rate for the following steps (lr >= 0, finite). */
int pl_optim_set_lr(pl_optim *opt, double lr, pl_err *err);
/* Steps taken so far (torch's state['step']; also counted for sgd/rmsprop). */
int64_t pl_optim_steps(const pl_optim *opt);
/* Restore the step count (checkpoint import); steps >= 0. For sgd with
 * momentum, steps > 0 means the momentum buffer is already initialised. */
int pl_optim_set_steps(pl_optim *opt, int64_t steps, pl_err *err);
size_t pl_optim_size(const pl_optim *opt);
/* The validated configuration in use (borrowed; lr reflects set_lr). */
const pl_optim_config *pl_optim_config_of(const pl_optim *opt);

/* State export/import for checkpoints: the optimizer's state vectors, each of
 * pl_optim_size() floats, by index 0..pl_optim_state_count()-1 or by torch
 * name. Returned pointers are borrowed, writable and live until destroy;
 * an index out of range gives NULL. */
int pl_optim_state_count(const pl_optim *opt);
const char *pl_optim_state_name(const pl_optim *opt, int i);
float *pl_optim_state_data(pl_optim *opt, int i);
/* Pointer to the state vector called `name`, or NULL if this config has none. */
float *pl_optim_state_find(pl_optim *opt, const char *name);

/* ---- ReduceLROnPlateau (torch.optim.lr_scheduler, mode='min') ---- */

typedef struct pl_plateau_config {
    double factor;        /* new_lr = max(lr * factor, min_lr); 0 <= factor < 1 */
    int patience;         /* bad epochs tolerated before reducing; >= 0 */
    double threshold;     /* >= 0 */
    int threshold_abs;    /* 0: 'rel' (better if m < best*(1-threshold)),
                           * 1: 'abs' (better if m < best - threshold) */
    int cooldown;         /* epochs after a reduction that ignore bad epochs */
    double min_lr;        /* >= 0 */
    double eps;           /* reductions smaller than eps are skipped; >= 0 */
} pl_plateau_config;

/* torch's defaults: factor 0.1, patience 10, threshold 1e-4 'rel',
 * cooldown 0, min_lr 0, eps 1e-8. */
pl_plateau_config pl_plateau_defaults(void);

/* Plain state; read the fields, change them only through the functions. */
typedef struct pl_plateau {
    pl_plateau_config cfg;
    double lr;             /* current learning rate */
    double best;           /* best metric so far (+inf before the first step) */
    int num_bad_epochs;
    int cooldown_counter;
    int64_t last_epoch;    /* number of step() calls */
} pl_plateau;

/* Validate cfg (NULL = defaults) and start at learning rate `lr`. */
int pl_plateau_init(pl_plateau *s, const pl_plateau_config *cfg, double lr, pl_err *err);
/* Record one epoch's metric (lower is better). Returns the learning rate to
 * use from now on; *reduced (may be NULL) is set to 1 if it was lowered. */
double pl_plateau_step(pl_plateau *s, double metric, int *reduced);

/* ---- Early stopping ----
 * Improvement means val_loss < best - min_delta (the first value always
 * improves); an improvement sets best and resets the counter, anything else
 * increments it; training should stop once counter >= patience. */
typedef struct pl_early_stop {
    int patience;          /* >= 1 */
    double min_delta;      /* >= 0 */
    double best;           /* best val_loss so far (+inf before the first step) */
    int counter;           /* steps since the last improvement */
    int stop;              /* 1 once counter >= patience (stays 1) */
} pl_early_stop;

int pl_early_stop_init(pl_early_stop *es, int patience, double min_delta, pl_err *err);
/* Record one val_loss. Returns 1 if training should stop, else 0;
 * *improved (may be NULL) is set to 1 if this value became the new best. */
int pl_early_stop_step(pl_early_stop *es, double val_loss, int *improved);

/* ---- Per-step learning-rate schedules (torch.optim.lr_scheduler) ----
 *   constant   lr stays at the configured value
 *   plateau    ReduceLROnPlateau (above), decided once per epoch
 *   cosine     CosineAnnealingLR over total_steps updates, closed form:
 *              lr(t) = min_lr + (lr - min_lr) * (1 + cos(pi * t / T)) / 2
 *   onecycle   OneCycleLR (two phases, cosine annealing) with torch's
 *              defaults: max_lr = lr, pct_start 0.3, div_factor 25,
 *              final_div_factor 1e4, and cycle_momentum: momentum (sgd,
 *              rmsprop) or beta1 (adam, adamw) goes 0.95 -> 0.85 -> 0.95.
 * t counts optimizer updates from 0. Usage: pl_sched_prepare() on the
 * optimizer config before pl_optim_create() (onecycle starts at
 * lr / div_factor with momentum 0.95, as torch's constructor does), then
 * pl_sched_apply(t) before update t. Every peer computes the same value from
 * the same t, so schedules keep peers identical. */
typedef enum pl_sched_kind {
    PL_SCHED_PLATEAU = 0,
    PL_SCHED_CONSTANT = 1,
    PL_SCHED_COSINE = 2,
    PL_SCHED_ONECYCLE = 3
} pl_sched_kind;

typedef struct pl_sched_config {
    pl_sched_kind kind;
    int64_t total_steps;      /* cosine, onecycle: >= 1 */
    double lr;                /* base lr (cosine) / max_lr (onecycle) */
    double min_lr;            /* cosine: eta_min >= 0 */
    double pct_start;         /* onecycle: (0, 1) */
    double div_factor;        /* onecycle: > 0 */
    double final_div_factor;  /* onecycle: > 0 */
    int cycle_momentum;       /* onecycle */
    double base_momentum, max_momentum; /* onecycle, 0 <= base <= max < 1 */
} pl_sched_config;

/* torch's defaults for `kind` at base lr `lr` (total_steps left 0). */
pl_sched_config pl_sched_defaults(pl_sched_kind kind, double lr);
/* "plateau", "constant", "cosine", "onecycle" -> kind; PL_ERR_ARG lists them. */
int pl_sched_kind_parse(const char *name, pl_sched_kind *kind, pl_err *err);
const char *pl_sched_kind_name(pl_sched_kind kind);
/* Validate `s` against the optimizer config and set the optimizer's starting
 * values in *cfg (onecycle: lr and momentum/beta1). */
int pl_sched_prepare(const pl_sched_config *s, pl_optim_config *cfg, pl_err *err);
/* Learning rate and momentum (NAN when the schedule leaves momentum alone)
 * for update t (0-based; t >= total_steps keeps the last value). */
void pl_sched_values(const pl_sched_config *s, int64_t t, double *lr, double *momentum);
/* Set the optimizer's lr (and momentum/beta1) for update t. A no-op for
 * constant and plateau. */
int pl_sched_apply(const pl_sched_config *s, int64_t t, pl_optim *opt, pl_err *err);
/* Momentum for sgd / rmsprop, beta1 for adam / adamw (in [0, 1));
 * PL_ERR_ARG for adagrad or for sgd / rmsprop created without momentum. */
int pl_optim_set_momentum(pl_optim *opt, double momentum, pl_err *err);

#endif
