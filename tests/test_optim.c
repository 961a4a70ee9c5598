/* test_optim.c — unit checks for optimizers, the plateau scheduler and early
 * stopping. Numerical parity with torch.optim is in torch_optim.py; here:
 * names, defaults (torch's documented values), validation messages, state
 * allocation, analytic single steps, the OpenMP path against the serial one,
 * and hand-derived early-stopping / plateau sequences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/optim.h"
#include "test.h"

static const char *const kind_names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad"};

static void test_names(void)
{
    for (int k = 0; k < PL_OPTIM_KIND_COUNT_; k++) {
        pl_optim_kind got = PL_OPTIM_KIND_COUNT_;
        pl_err err = {0};
        PL_CHECK(pl_optim_kind_parse(kind_names[k], &got, &err) == PL_OK, "%s", err.msg);
        PL_CHECK(got == (pl_optim_kind)k, "parse %s gave %d", kind_names[k], (int)got);
        PL_CHECK(strcmp(pl_optim_kind_name((pl_optim_kind)k), kind_names[k]) == 0, "name %d", k);
    }
    pl_optim_kind got;
    pl_err err = {0};
    PL_CHECK(pl_optim_kind_parse("adamx", &got, &err) == PL_ERR_ARG, "adamx accepted");
    PL_CHECK(strstr(err.msg, "adamx") && strstr(err.msg, "rmsprop") && strstr(err.msg, "sgd"),
             "message should name the input and the valid kinds: %s", err.msg);
    PL_CHECK(strcmp(pl_optim_kind_name((pl_optim_kind)42), "?") == 0, "out-of-range name");
}

/* Defaults as documented by torch.optim 1.13 (sgd lr is ours: torch has none). */
static void test_defaults(void)
{
    pl_optim_config c = pl_optim_defaults(PL_OPTIM_SGD);
    PL_CHECK(c.lr == 0.01 && c.momentum == 0 && c.dampening == 0 && !c.nesterov &&
                 c.weight_decay == 0, "sgd defaults");
    c = pl_optim_defaults(PL_OPTIM_ADAM);
    PL_CHECK(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 &&
                 c.weight_decay == 0 && !c.amsgrad, "adam defaults");
    c = pl_optim_defaults(PL_OPTIM_ADAMW);
    PL_CHECK(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 &&
                 c.weight_decay == 1e-2 && !c.amsgrad, "adamw defaults");
    c = pl_optim_defaults(PL_OPTIM_RMSPROP);
    PL_CHECK(c.lr == 1e-2 && c.alpha == 0.99 && c.eps == 1e-8 && c.momentum == 0 &&
                 !c.centered && c.weight_decay == 0, "rmsprop defaults");
    c = pl_optim_defaults(PL_OPTIM_ADAGRAD);
    PL_CHECK(c.lr == 1e-2 && c.lr_decay == 0 && c.initial_accumulator_value == 0 &&
                 c.eps == 1e-10 && c.weight_decay == 0, "adagrad defaults");
    pl_err err = {0};
    PL_CHECK(pl_optim_config_init(&c, 7, &err) == PL_ERR_ARG, "kind 7 accepted");
    PL_CHECK(pl_optim_config_set(&c, "momentun", 0.9, &err) == PL_ERR_ARG &&
                 strstr(err.msg, "momentun") && strstr(err.msg, "momentum"),
             "unknown key: %s", err.msg);
    PL_CHECK(pl_optim_config_init(&c, PL_OPTIM_SGD, &err) == PL_OK &&
                 pl_optim_config_set(&c, "nesterov", 1, &err) == PL_OK && c.nesterov == 1 &&
                 pl_optim_config_set(&c, "momentum", 0.5, &err) == PL_OK && c.momentum == 0.5,
             "config_set");
}

typedef struct bad_case {
    pl_optim_kind kind;
    const char *key;
    double value;
    const char *key2; /* optional second field, NULL if none */
    double value2;
    const char *expect; /* substring the message must contain */
} bad_case;

static void test_invalid(void)
{
    const bad_case cases[] = {
        {PL_OPTIM_SGD, "lr", -0.1, NULL, 0, "lr"},
        {PL_OPTIM_ADAM, "lr", NAN, NULL, 0, "lr"},
        {PL_OPTIM_SGD, "momentum", -0.5, NULL, 0, "momentum"},
        {PL_OPTIM_SGD, "nesterov", 1, NULL, 0, "nesterov"},
        {PL_OPTIM_SGD, "nesterov", 1, "momentum", 0.9, "nesterov"},
        {PL_OPTIM_ADAM, "beta1", 1.0, NULL, 0, "beta1"},
        {PL_OPTIM_ADAMW, "beta2", -0.1, NULL, 0, "beta2"},
        {PL_OPTIM_ADAM, "eps", 0.0, NULL, 0, "eps"},
        {PL_OPTIM_ADAMW, "weight_decay", -1e-2, NULL, 0, "weight_decay"},
        {PL_OPTIM_RMSPROP, "alpha", 1.5, NULL, 0, "alpha"},
        {PL_OPTIM_RMSPROP, "eps", -1e-8, NULL, 0, "eps"},
        {PL_OPTIM_ADAGRAD, "lr_decay", -1, NULL, 0, "lr_decay"},
        {PL_OPTIM_ADAGRAD, "initial_accumulator_value", -0.1, NULL, 0,
         "initial_accumulator_value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *b = &cases[i];
        pl_optim_config c = pl_optim_defaults(b->kind);
        pl_err err = {0};
        pl_optim_config_set(&c, b->key, b->value, NULL);
        /* nesterov needs dampening 0: the second nesterov case sets momentum but
         * adds dampening, so only the dampening is wrong. */
        if (b->key2) {
            pl_optim_config_set(&c, b->key2, b->value2, NULL);
            pl_optim_config_set(&c, "dampening", 0.1, NULL);
        }
        pl_optim *opt = (pl_optim *)&err; /* must be reset to NULL on failure */
        int rc = pl_optim_create(&opt, &c, 10, &err);
        PL_CHECK(rc == PL_ERR_ARG, "case %zu (%s %s=%g) accepted", i, kind_names[b->kind],
                 b->key, b->value);
        PL_CHECK(opt == NULL, "case %zu: *out not NULL on failure", i);
        PL_CHECK(strstr(err.msg, b->expect) && strstr(err.msg, kind_names[b->kind]),
                 "case %zu: message should name %s and %s: %s", i, kind_names[b->kind],
                 b->expect, err.msg);
    }
}

static void check_state(pl_optim *opt, const char *what, int count, const char *const *names,
                        float init, size_t n)
{
    PL_CHECK(pl_optim_state_count(opt) == count, "%s: %d state vectors, want %d", what,
             pl_optim_state_count(opt), count);
    PL_CHECK(pl_optim_size(opt) == n && pl_optim_steps(opt) == 0, "%s: size/steps", what);
    for (int i = 0; i < count && i < pl_optim_state_count(opt); i++) {
        const char *name = pl_optim_state_name(opt, i);
        PL_CHECK(name && strcmp(name, names[i]) == 0, "%s: state %d is %s, want %s", what, i,
                 name ? name : "NULL", names[i]);
        float *s = pl_optim_state_data(opt, i);
        PL_CHECK(s == pl_optim_state_find(opt, names[i]), "%s: find %s", what, names[i]);
        size_t bad = 0;
        for (size_t j = 0; j < n; j++) /* reading all n also proves the size under ASan */
            bad += s[j] != init;
        PL_CHECK(bad == 0, "%s: %zu of %zu elements of %s not %g", what, bad, n, names[i], init);
    }
    PL_CHECK(pl_optim_state_data(opt, count) == NULL && pl_optim_state_name(opt, -1) == NULL,
             "%s: out-of-range state index", what);
}

typedef struct state_case {
    pl_optim_kind kind;
    const char *opts[3]; /* flags switched on (value 1 or 0.9 for momentum) */
    int count;
    const char *names[3];
    float init;
} state_case;

static void test_state(void)
{
    const state_case cases[] = {
        {PL_OPTIM_SGD, {NULL}, 0, {NULL}, 0},
        {PL_OPTIM_SGD, {"momentum"}, 1, {"momentum_buffer"}, 0},
        {PL_OPTIM_ADAM, {NULL}, 2, {"exp_avg", "exp_avg_sq"}, 0},
        {PL_OPTIM_ADAMW, {"amsgrad"}, 3, {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, 0},
        {PL_OPTIM_RMSPROP, {NULL}, 1, {"square_avg"}, 0},
        {PL_OPTIM_RMSPROP, {"momentum", "centered"}, 3,
         {"square_avg", "momentum_buffer", "grad_avg"}, 0},
        {PL_OPTIM_RMSPROP, {"centered"}, 2, {"square_avg", "grad_avg"}, 0},
        {PL_OPTIM_ADAGRAD, {"initial_accumulator_value"}, 1, {"sum"}, 0.25f},
    };
    const size_t n = 4099;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const state_case *sc = &cases[i];
        pl_optim_config c = pl_optim_defaults(sc->kind);
        for (int k = 0; k < 3 && sc->opts[k]; k++) {
            double v = strcmp(sc->opts[k], "momentum") == 0 ? 0.9
                       : strcmp(sc->opts[k], "initial_accumulator_value") == 0 ? 0.25 : 1;
            pl_optim_config_set(&c, sc->opts[k], v, NULL);
        }
        pl_optim *opt = NULL;
        pl_err err = {0};
        PL_CHECK(pl_optim_create(&opt, &c, n, &err) == PL_OK, "state case %zu: %s", i, err.msg);
        if (opt)
            check_state(opt, kind_names[sc->kind], sc->count, sc->names, sc->init, n);
        pl_optim_destroy(opt);
    }
    pl_optim_destroy(NULL);
}

/* Plain SGD is p - lr*g; the first Adam step moves each parameter by
 * lr * g/(|g| + eps') ~= lr * sign(g) (bias corrections cancel). */
static void test_analytic_steps(void)
{
    float p[4] = {1.0f, -2.0f, 0.5f, 3.0f}, g[4] = {0.5f, -0.25f, 2.0f, -4.0f};
    float p0[4];
    memcpy(p0, p, sizeof p);
    pl_optim_config c = pl_optim_defaults(PL_OPTIM_SGD);
    c.lr = 0.5;
    pl_optim *opt = NULL;
    pl_err err = {0};
    PL_CHECK(pl_optim_create(&opt, &c, 4, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_optim_step(opt, p, g, 4, &err) == PL_OK, "%s", err.msg);
    for (int i = 0; i < 4; i++)
        PL_CHECK_NEAR(p[i], p0[i] - 0.5 * g[i], 1e-7, "sgd step");
    PL_CHECK(pl_optim_step(opt, p, g, 3, &err) == PL_ERR_SHAPE && strstr(err.msg, "3"),
             "wrong n accepted: %s", err.msg);
    PL_CHECK(pl_optim_step(opt, p, NULL, 4, &err) == PL_ERR_ARG && strstr(err.msg, "grads"),
             "NULL grads accepted: %s", err.msg);
    PL_CHECK(pl_optim_set_lr(opt, -1, &err) == PL_ERR_ARG && pl_optim_lr(opt) == 0.5,
             "negative lr accepted");
    PL_CHECK(pl_optim_set_steps(opt, -3, &err) == PL_ERR_ARG, "negative steps accepted");
    PL_CHECK(pl_optim_steps(opt) == 1, "steps after one good and two rejected steps");
    pl_optim_destroy(opt);

    memcpy(p, p0, sizeof p);
    c = pl_optim_defaults(PL_OPTIM_ADAM);
    PL_CHECK(pl_optim_create(&opt, &c, 4, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_optim_step(opt, p, g, 4, &err) == PL_OK, "%s", err.msg);
    for (int i = 0; i < 4; i++)
        PL_CHECK_NEAR(p[i], p0[i] - 1e-3 * (g[i] > 0 ? 1 : -1), 1e-6, "adam first step");
    pl_optim_destroy(opt);
}

/* The OpenMP path (large n) must give bit-identical results to the serial
 * path (small n) on the same prefix: the update is purely elementwise. */
static void test_parallel_matches_serial(void)
{
    const size_t big = 100003, small = 1000;
    float *p = malloc(big * sizeof *p), *g = malloc(big * sizeof *g);
    float ps[1000], gs[1000];
    PL_CHECK(p && g, "alloc");
    if (!p || !g)
        goto done;
    for (int k = 0; k < PL_OPTIM_KIND_COUNT_; k++) {
        pl_optim_config c = pl_optim_defaults((pl_optim_kind)k);
        c.momentum = 0.9;
        pl_optim *ob = NULL, *os = NULL;
        pl_err err = {0};
        PL_CHECK(pl_optim_create(&ob, &c, big, &err) == PL_OK, "%s", err.msg);
        PL_CHECK(pl_optim_create(&os, &c, small, &err) == PL_OK, "%s", err.msg);
        pl_test_fill(p, big, 11, -1, 1);
        memcpy(ps, p, sizeof ps);
        for (unsigned s = 0; s < 5 && ob && os; s++) {
            pl_test_fill(g, big, 100 + s, -1, 1);
            memcpy(gs, g, sizeof gs);
            pl_optim_step(ob, p, g, big, &err);
            pl_optim_step(os, ps, gs, small, &err);
        }
        PL_CHECK(memcmp(p, ps, sizeof ps) == 0, "%s: parallel and serial updates differ",
                 kind_names[k]);
        pl_optim_destroy(ob);
        pl_optim_destroy(os);
    }
done:
    free(p);
    free(g);
}

/* patience 3, min_delta 0.1; expected values derived by hand from the rule
 * "improved iff loss < best - min_delta". */
static void test_early_stop(void)
{
    const double loss[] = {1.0, 0.95, 0.85, 0.8, 0.9, 0.7, NAN, 0.69, 0.68, 0.1};
    const int counter[] = {0, 1, 0, 1, 2, 0, 1, 2, 3, 0};
    const double best[] = {1.0, 1.0, 0.85, 0.85, 0.85, 0.7, 0.7, 0.7, 0.7, 0.1};
    const int stop[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
    pl_early_stop es;
    pl_err err = {0};
    PL_CHECK(pl_early_stop_init(&es, 3, 0.1, &err) == PL_OK, "%s", err.msg);
    for (int i = 0; i < 10; i++) {
        int improved = -1;
        int st = pl_early_stop_step(&es, loss[i], &improved);
        PL_CHECK(st == stop[i] && es.counter == counter[i] && es.best == best[i] &&
                     improved == (counter[i] == 0),
                 "step %d: stop %d counter %d best %g improved %d", i, st, es.counter, es.best,
                 improved);
    }
    PL_CHECK(pl_early_stop_init(&es, 0, 0.1, &err) == PL_ERR_ARG && strstr(err.msg, "patience"),
             "patience 0: %s", err.msg);
    PL_CHECK(pl_early_stop_init(&es, 2, -1, &err) == PL_ERR_ARG && strstr(err.msg, "min_delta"),
             "min_delta -1: %s", err.msg);
}

/* Hand-derived from torch's rule: patience 1, cooldown 1, factor 0.5. */
static void test_plateau(void)
{
    pl_plateau_config c = pl_plateau_defaults();
    PL_CHECK(c.factor == 0.1 && c.patience == 10 && c.threshold == 1e-4 && !c.threshold_abs &&
                 c.cooldown == 0 && c.min_lr == 0 && c.eps == 1e-8, "plateau defaults");
    c.patience = 1;
    c.cooldown = 1;
    c.factor = 0.5;
    pl_plateau s;
    pl_err err = {0};
    PL_CHECK(pl_plateau_init(&s, &c, 1.0, &err) == PL_OK, "%s", err.msg);
    const double metric[] = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5};
    const double lr[] = {1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25};
    for (int i = 0; i < 8; i++) {
        int red = -1;
        double got = pl_plateau_step(&s, metric[i], &red);
        PL_CHECK(got == lr[i] && red == (i == 2 || i == 5), "step %d: lr %g reduced %d", i, got,
                 red);
    }
    c.factor = 1.0;
    PL_CHECK(pl_plateau_init(&s, &c, 1.0, &err) == PL_ERR_ARG && strstr(err.msg, "factor"),
             "factor 1: %s", err.msg);
}

int main(void)
{
    test_names();
    test_defaults();
    test_invalid();
    test_state();
    test_analytic_steps();
    test_parallel_matches_serial();
    test_early_stop();
    test_plateau();
    PL_TEST_MAIN();
}
