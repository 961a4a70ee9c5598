/* train.c — `peerless train`: single-process training with validation,
 * ReduceLROnPlateau, early stopping, per-epoch metrics and a checkpoint. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "peerless/backend.h"
#include "peerless/data.h"
#include "peerless/models.h"
#include "peerless/optim.h"
#include "peerless/safetensors.h"

typedef struct train_opts {
    const char *model, *dataset, *data_dir, *optimizer, *loss, *schedule, *augment, *checkpoint_in, *checkpoint_out, *metrics, *backend;
    int epochs, batch_size, threads, input_size, lr_patience, es_patience, train_limit;
    double lr, momentum, weight_decay, lr_factor, min_lr, min_delta, val_fraction;
    uint64_t seed;
} train_opts;

typedef struct trainer {
    train_opts o;
    pl_dataset *train_ds, *test_ds;
    uint32_t *idx;
    size_t n_train, n_val;
    pl_loader *train_ld, *val_ld, *test_ld;
    pl_model *model;
    pl_optim *opt;
    pl_sched_config sched;
    pl_loss_kind loss;
    float *x;
    int32_t *y;
    int c, h, w;
    FILE *metrics;
} trainer;

static void trainer_free(trainer *t)
{
    pl_loader_destroy(t->train_ld);
    pl_loader_destroy(t->val_ld);
    pl_loader_destroy(t->test_ld);
    pl_dataset_destroy(t->train_ds);
    pl_dataset_destroy(t->test_ds);
    pl_model_destroy(t->model);
    pl_optim_destroy(t->opt);
    free(t->idx);
    pl_free(t->x);
    free(t->y);
    if (t->metrics)
        fclose(t->metrics);
}

/* Transform for the model: its default input size, 3 channels if it wants RGB. */
static int make_transform(const trainer *t, const pl_model_info *mi, pl_split split, pl_transform *tf, pl_err *err)
{
    pl_dataset_info di = pl_dataset_get_info(t->train_ds);
    int st = pl_models_transform(mi, t->o.dataset, split, di.c, di.h, di.w, t->o.input_size, tf, err);
    if (st || !t->o.augment || split != PL_SPLIT_TRAIN)
        return st;
    if (!strcmp(t->o.augment, "none")) {
        tf->augment = 0;
    } else if (!strcmp(t->o.augment, "flip")) {
        tf->augment = 1;
        tf->crop_pad = 0;
    } else if (!strcmp(t->o.augment, "crop-flip")) {
        tf->augment = 1;
        tf->crop_pad = 4;
    } else {
        return pl_err_set(err, PL_ERR_ARG, "--augment: '%s' invalid, expected none, flip or crop-flip",
                          t->o.augment);
    }
    return PL_OK;
}

static int make_loader(trainer *t, const pl_dataset *ds, const uint32_t *idx, size_t n, int train,
                       const pl_transform *tf, pl_loader **out, pl_err *err)
{
    pl_loader_config lc;
    memset(&lc, 0, sizeof lc);
    lc.batch_size = t->o.batch_size;
    lc.shuffle = train;
    lc.seed = t->o.seed;
    lc.tf = *tf;
    return pl_loader_create(ds, idx, n, &lc, out, err);
}

static int setup_data(trainer *t, const pl_model_info *mi, pl_err *err)
{
    int st = pl_dataset_load(t->o.dataset, t->o.data_dir, PL_SPLIT_TRAIN, &t->train_ds, err);
    if (!st)
        st = pl_dataset_load(t->o.dataset, t->o.data_dir, PL_SPLIT_TEST, &t->test_ds, err);
    if (st)
        return st;
    pl_dataset_info di = pl_dataset_get_info(t->train_ds), ti = pl_dataset_get_info(t->test_ds);
    size_t n = (size_t)di.n;
    if (t->o.train_limit > 0 && (size_t)t->o.train_limit < n)
        n = (size_t)t->o.train_limit;
    if (!(t->idx = malloc((size_t)di.n * sizeof *t->idx)))
        return pl_err_set(err, PL_ERR_NOMEM, "train: out of memory");
    /* Split 90/10 with the run's seed; a limit keeps the first n of the
     * seeded permutation, so a limited run is a random subset. */
    st = pl_data_permutation(t->idx, (size_t)di.n, t->o.seed, err);
    if (!st)
        st = pl_data_split_sizes(n, t->o.val_fraction, &t->n_train, &t->n_val, err);
    if (st)
        return st;
    if (t->n_train == 0)
        return pl_err_set(err, PL_ERR_ARG, "train: no training samples left after the validation split");
    pl_transform tf_train, tf_eval;
    st = make_transform(t, mi, PL_SPLIT_TRAIN, &tf_train, err);
    if (!st)
        st = make_transform(t, mi, PL_SPLIT_TEST, &tf_eval, err);
    if (!st)
        st = make_loader(t, t->train_ds, t->idx, t->n_train, 1, &tf_train, &t->train_ld, err);
    if (!st && t->n_val)
        st = make_loader(t, t->train_ds, t->idx + t->n_train, t->n_val, 0, &tf_eval, &t->val_ld, err);
    uint32_t *all = NULL;
    if (!st && !(all = malloc((size_t)ti.n * sizeof *all)))
        st = pl_err_set(err, PL_ERR_NOMEM, "train: out of memory");
    for (int64_t i = 0; !st && i < ti.n; i++)
        all[i] = (uint32_t)i;
    if (!st)
        st = make_loader(t, t->test_ds, all, (size_t)ti.n, 0, &tf_eval, &t->test_ld, err);
    free(all);
    if (st)
        return st;
    pl_loader_out_shape(t->train_ld, &t->c, &t->h, &t->w);
    size_t per = (size_t)t->o.batch_size * (size_t)t->c * (size_t)t->h * (size_t)t->w;
    t->x = pl_alloc(per * sizeof(float));
    t->y = malloc((size_t)t->o.batch_size * sizeof *t->y);
    if (!t->x || !t->y)
        return pl_err_set(err, PL_ERR_NOMEM, "train: out of memory for a batch of %d", t->o.batch_size);
    return PL_OK;
}

static int flag_seen(const pl_flag *flags, int nflags, const char *name)
{
    for (int i = 0; i < nflags; i++)
        if (!strcmp(flags[i].name, name))
            return flags[i].seen;
    return 0;
}

static int setup_optim(trainer *t, const pl_flag *flags, int nflags, pl_err *err)
{
    pl_optim_kind kind;
    int st = pl_optim_kind_parse(t->o.optimizer, &kind, err);
    if (st)
        return st;
    pl_optim_config cfg = pl_optim_defaults(kind);
    /* The recipe's lr and weight decay belong to its optimizer (flags below
     * still override them). */
    const pl_recipe *r = &pl_models_find(t->o.model)->recipe;
    if (r->optimizer && !flag_seen(flags, nflags, "optimizer")) {
        if (r->lr > 0)
            cfg.lr = r->lr;
        if (r->weight_decay >= 0)
            cfg.weight_decay = r->weight_decay;
    }
    for (int i = 0; i < nflags; i++) {
        if (!flags[i].seen)
            continue;
        if (!strcmp(flags[i].name, "lr"))
            cfg.lr = t->o.lr;
        else if (!strcmp(flags[i].name, "momentum"))
            cfg.momentum = t->o.momentum;
        else if (!strcmp(flags[i].name, "weight-decay"))
            cfg.weight_decay = t->o.weight_decay;
    }
    pl_sched_kind sk;
    if ((st = pl_sched_kind_parse(t->o.schedule, &sk, err)))
        return pl_err_wrap(err, st, "--lr-schedule");
    t->o.lr = cfg.lr;
    t->sched = pl_sched_defaults(sk, cfg.lr);
    t->sched.total_steps = (int64_t)t->o.epochs * (int64_t)pl_loader_num_batches(t->train_ld);
    if ((st = pl_sched_prepare(&t->sched, &cfg, err)))
        return pl_err_wrap(err, st, "--lr-schedule %s", t->o.schedule);
    return pl_optim_create(&t->opt, &cfg, pl_model_params(t->model)->count, err);
}

/* Mean loss and accuracy over a loader in eval mode. */
static int evaluate(trainer *t, pl_loader *ld, double *loss, double *acc, pl_err *err)
{
    double sum = 0;
    size_t seen = 0, correct = 0;
    int count;
    pl_loader_set_epoch(ld, 0);
    for (;;) {
        int st = pl_loader_next(ld, t->x, t->y, NULL, &count);
        if (st)
            return pl_err_set(err, st, "reading evaluation batch");
        if (count == 0)
            break;
        float l;
        st = pl_model_forward(t->model, t->x, count, t->h, t->w, PL_MODE_EVAL, err);
        if (!st)
            st = pl_model_loss(t->model, t->y, t->loss, &l, err);
        if (st)
            return st;
        sum += (double)l * count;
        correct += (size_t)pl_model_count_correct(t->model, t->y);
        seen += (size_t)count;
    }
    *loss = seen ? sum / (double)seen : NAN;
    *acc = seen ? (double)correct / (double)seen : NAN;
    return PL_OK;
}

static int train_epoch(trainer *t, int epoch, double *mean_loss, double *images_per_s, pl_err *err)
{
    pl_progress pr;
    char label[32];
    snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, t->o.epochs);
    pl_progress_start(&pr, label, t->n_train);
    pl_loader_set_epoch(t->train_ld, epoch);
    pl_flat *params = pl_model_params(t->model), *grads = pl_model_grads(t->model);
    double sum = 0, start = pl_now();
    size_t seen = 0;
    int count;
    for (;;) {
        int st = pl_loader_next(t->train_ld, t->x, t->y, NULL, &count);
        if (st)
            return pl_err_set(err, st, "reading training batch");
        if (count == 0)
            break;
        float l;
        pl_model_zero_grad(t->model);
        st = pl_model_forward(t->model, t->x, count, t->h, t->w, PL_MODE_TRAIN, err);
        if (!st)
            st = pl_model_loss(t->model, t->y, t->loss, &l, err);
        if (!st)
            st = pl_model_backward(t->model, err);
        if (!st)
            st = pl_sched_apply(&t->sched, pl_optim_steps(t->opt), t->opt, err);
        if (!st)
            st = pl_optim_step(t->opt, params->data, grads->data, params->count, err);
        if (st)
            return pl_err_wrap(err, st, "epoch %d, after %zu samples", epoch + 1, seen);
        sum += (double)l * count;
        seen += (size_t)count;
        pl_progress_update(&pr, seen, sum / (double)seen, (double)seen / (pl_now() - start));
    }
    pl_progress_end(&pr);
    *mean_loss = seen ? sum / (double)seen : NAN;
    *images_per_s = (double)seen / (pl_now() - start);
    return PL_OK;
}

static int write_metrics(trainer *t, cJSON *row, pl_err *err)
{
    if (!t->metrics)
        return PL_OK;
    char *s = cJSON_PrintUnformatted(row);
    if (!s)
        return pl_err_set(err, PL_ERR_NOMEM, "metrics: out of memory");
    int bad = fprintf(t->metrics, "%s\n", s) < 0 || fflush(t->metrics) != 0;
    free(s);
    return bad ? pl_err_set(err, PL_ERR_IO, "metrics file %s: write failed", t->o.metrics) : PL_OK;
}

static int save_checkpoint(trainer *t, int epochs_done, pl_err *err)
{
    pl_st_writer *w = NULL;
    char buf[32];
    int st = pl_st_writer_create(&w, err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_params(t->model), err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_buffers(t->model), err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "model", t->o.model, err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "dataset", t->o.dataset, err);
    snprintf(buf, sizeof buf, "%d", epochs_done);
    if (!st)
        st = pl_st_writer_set_metadata(w, "epochs", buf, err);
    snprintf(buf, sizeof buf, "%dx%dx%d", t->c, t->h, t->w);
    if (!st)
        st = pl_st_writer_set_metadata(w, "input", buf, err);
    if (!st)
        st = pl_st_writer_write(w, t->o.checkpoint_out, err);
    pl_st_writer_destroy(w);
    return st;
}

static cJSON *epoch_row(int epoch, double train_loss, double val_loss, double test_loss, double test_acc,
                        double lr, double seconds, double ips)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "epoch", epoch);
    cJSON_AddNumberToObject(r, "train_loss", train_loss);
    if (isfinite(val_loss))
        cJSON_AddNumberToObject(r, "val_loss", val_loss);
    else
        cJSON_AddNullToObject(r, "val_loss");
    cJSON_AddNumberToObject(r, "test_loss", test_loss);
    cJSON_AddNumberToObject(r, "test_accuracy", test_acc);
    cJSON_AddNumberToObject(r, "lr", lr);
    cJSON_AddNumberToObject(r, "seconds", seconds);
    cJSON_AddNumberToObject(r, "images_per_s", ips);
    return r;
}

/* The model's recipe fills what the user left out: optimizer and schedule
 * only when --optimizer is not given (lr and weight decay follow in
 * setup_optim), the batch size unless --batch-size is given. */
static void apply_recipe(trainer *t, const pl_model_info *mi, const pl_flag *flags, int nflags)
{
    const pl_recipe *r = &mi->recipe;
    if (r->batch_size > 0 && !flag_seen(flags, nflags, "batch-size"))
        t->o.batch_size = r->batch_size;
    if (!r->optimizer || flag_seen(flags, nflags, "optimizer"))
        return;
    t->o.optimizer = r->optimizer;
    if (r->schedule && !flag_seen(flags, nflags, "lr-schedule"))
        t->o.schedule = r->schedule;
}

static int run_training(trainer *t, const pl_flag *flags, int nflags, pl_err *err)
{
    const pl_model_info *mi = pl_models_find(t->o.model);
    if (!mi)
        return pl_err_set(err, PL_ERR_NOTFOUND, "unknown model '%s' (available: %s)", t->o.model, pl_models_list());
    apply_recipe(t, mi, flags, nflags);
    const pl_backend *be = pl_backend_by_name(t->o.backend);
    if (!be)
        return pl_err_set(err, PL_ERR_ARG, "unknown backend '%s' (expected fast or ref)", t->o.backend);
    int st = pl_loss_parse(t->o.loss, &t->loss, err);
    if (!st)
        st = setup_data(t, mi, err);
    if (st)
        return st;
    pl_dataset_info di = pl_dataset_get_info(t->train_ds);
    st = pl_models_build(t->o.model, be, t->c, t->h, t->w, di.num_classes, t->o.seed, &t->model, err);
    if (!st && t->o.checkpoint_in) {
        pl_flat *flats[2] = {pl_model_params(t->model), pl_model_buffers(t->model)};
        st = pl_st_load_flats_file(t->o.checkpoint_in, flats, 2, 1, NULL, err);
        if (st)
            st = pl_err_wrap(err, st, "--init %s", t->o.checkpoint_in);
    }
    if (!st)
        st = setup_optim(t, flags, nflags, err);
    if (st)
        return st;
    if (t->o.metrics && !(t->metrics = fopen(t->o.metrics, "w")))
        return pl_err_set(err, PL_ERR_IO, "cannot open metrics file %s for writing", t->o.metrics);
    const pl_optim_config *oc = pl_optim_config_of(t->opt);
    fprintf(stderr, "peerless train: %s on %s (%zu train / %zu val / %lld test, input %dx%dx%d), %s lr %g "
            "weight decay %g, %s schedule, batch %d, %d threads, backend %s\n",
            t->o.model, t->o.dataset, t->n_train, t->n_val, (long long)pl_dataset_get_info(t->test_ds).n, t->c,
            t->h, t->w, t->o.optimizer, t->o.lr, oc->weight_decay, t->o.schedule, t->o.batch_size,
            pl_backend_threads(), be->name);

    pl_plateau plateau;
    pl_plateau_config pc = pl_plateau_defaults();
    pc.factor = t->o.lr_factor;
    pc.patience = t->o.lr_patience;
    pc.min_lr = t->o.min_lr;
    pl_early_stop es;
    st = pl_plateau_init(&plateau, &pc, t->o.lr, err);
    if (!st)
        st = pl_early_stop_init(&es, t->o.es_patience, t->o.min_delta, err);
    if (st)
        return st;

    double start = pl_now(), test_loss = NAN, test_acc = NAN, val_loss = NAN, val_acc = NAN;
    int epoch = 0, stopped = 0;
    while (epoch < t->o.epochs && !stopped) {
        double e0 = pl_now(), train_loss = NAN, ips = 0;
        double lr = pl_optim_lr(t->opt);
        st = train_epoch(t, epoch, &train_loss, &ips, err);
        if (!st && t->val_ld)
            st = evaluate(t, t->val_ld, &val_loss, &val_acc, err);
        if (!st)
            st = evaluate(t, t->test_ld, &test_loss, &test_acc, err);
        if (st)
            return st;
        epoch++;
        cJSON *row = epoch_row(epoch, train_loss, val_loss, test_loss, test_acc, lr, pl_now() - e0, ips);
        st = row ? write_metrics(t, row, err) : pl_err_set(err, PL_ERR_NOMEM, "metrics: out of memory");
        cJSON_Delete(row);
        if (st)
            return st;
        fprintf(stderr, "epoch %d: train_loss %.4f val_loss %.4f test_loss %.4f test_accuracy %.4f lr %g (%.1fs)\n",
                epoch, train_loss, val_loss, test_loss, test_acc, lr, pl_now() - e0);
        if (t->val_ld && t->sched.kind == PL_SCHED_PLATEAU) {
            int reduced = 0;
            double new_lr = pl_plateau_step(&plateau, val_loss, &reduced);
            if (reduced) {
                fprintf(stderr, "reducing learning rate to %g (validation loss plateaued)\n", new_lr);
                if ((st = pl_optim_set_lr(t->opt, new_lr, err)))
                    return st;
            }
        }
        if (t->val_ld) {
            if (pl_early_stop_step(&es, val_loss, NULL)) {
                fprintf(stderr, "early stopping: no validation improvement for %d epochs\n", es.patience);
                stopped = 1;
            }
        }
    }
    if (t->o.checkpoint_out && (st = save_checkpoint(t, epoch, err)))
        return st;
    cJSON *sum = cJSON_CreateObject();
    if (!sum)
        return pl_err_set(err, PL_ERR_NOMEM, "summary: out of memory");
    cJSON_AddStringToObject(sum, "model", t->o.model);
    cJSON_AddStringToObject(sum, "dataset", t->o.dataset);
    cJSON_AddNumberToObject(sum, "epochs", epoch);
    cJSON_AddBoolToObject(sum, "early_stopped", stopped);
    cJSON_AddNumberToObject(sum, "test_accuracy", test_acc);
    cJSON_AddNumberToObject(sum, "test_loss", test_loss);
    if (isfinite(val_loss))
        cJSON_AddNumberToObject(sum, "val_loss", val_loss);
    cJSON_AddNumberToObject(sum, "lr", pl_optim_lr(t->opt));
    cJSON_AddNumberToObject(sum, "seconds", pl_now() - start);
    char chk[32];
    snprintf(chk, sizeof chk, "%016llx", (unsigned long long)pl_model_checksum(t->model));
    cJSON_AddStringToObject(sum, "model_checksum", chk);
    char *s = cJSON_PrintUnformatted(sum);
    cJSON_Delete(sum);
    if (!s)
        return pl_err_set(err, PL_ERR_NOMEM, "summary: out of memory");
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    return PL_OK;
}

int pl_cmd_train(int argc, char **argv)
{
    trainer t;
    memset(&t, 0, sizeof t);
    train_opts *o = &t.o;
    o->model = "lenet5";
    o->dataset = "fashion-mnist";
    o->optimizer = "adam";
    o->schedule = "plateau";
    o->loss = "cross_entropy";
    o->backend = "fast";
    o->epochs = 3;
    o->batch_size = 32;
    o->lr = 0.001;
    o->lr_factor = 0.1;
    o->lr_patience = 2;
    o->es_patience = 5;
    o->val_fraction = 0.1;
    o->seed = 42;
    pl_flag flags[] = {
        {"model", PL_FLAG_STR, &o->model, 0, -1, "NAME", "mlp, lenet5 (default), vgg11, squeezenet1_1, mobilenet_v3_small, resnet18", 0},
        {"dataset", PL_FLAG_STR, &o->dataset, 0, -1, "NAME", "fashion-mnist (default), mnist, cifar10, synthetic", 0},
        {"data-dir", PL_FLAG_STR, &o->data_dir, 0, -1, "DIR", "dataset directory (default: the dataset's standard place)", 0},
        {"epochs", PL_FLAG_INT, &o->epochs, 1, 100000, "N", "epochs to train (default 3)", 0},
        {"batch-size", PL_FLAG_INT, &o->batch_size, 1, 65536, "N", "mini-batch size (default: the model's recipe, else 32)", 0},
        {"lr", PL_FLAG_DOUBLE, &o->lr, 0, 10, "X", "learning rate (default: the optimizer's; adam 0.001)", 0},
        {"momentum", PL_FLAG_DOUBLE, &o->momentum, 0, 1, "X", "momentum for sgd / rmsprop (default 0)", 0},
        {"weight-decay", PL_FLAG_DOUBLE, &o->weight_decay, 0, 1, "X", "weight decay (default: the optimizer's)", 0},
        {"optimizer", PL_FLAG_STR, &o->optimizer, 0, -1, "NAME", "sgd, adam, adamw, rmsprop, adagrad (default: the model's recipe, else adam)", 0},
        {"loss", PL_FLAG_STR, &o->loss, 0, -1, "NAME", "cross_entropy (default) or nll", 0},
        {"seed", PL_FLAG_U64, &o->seed, 0, -1, "N", "seed for init, split, shuffling, augmentation (default 42)", 0},
        {"threads", PL_FLAG_INT, &o->threads, 0, 1024, "N", "compute threads (default: all cores)", 0},
        {"backend", PL_FLAG_STR, &o->backend, 0, -1, "NAME", "compute backend: fast (default) or ref", 0},
        {"input-size", PL_FLAG_INT, &o->input_size, 0, 4096, "N", "resize inputs to NxN (default: the model's)", 0},
        {"augment", PL_FLAG_STR, &o->augment, 0, -1, "KIND", "training augmentation: none, flip, crop-flip (pad 4) (default: the dataset's: crop-flip for cifar10, else none)", 0},
        {"val-fraction", PL_FLAG_DOUBLE, &o->val_fraction, 0, 0.9, "X", "validation share of the training set (default 0.1)", 0},
        {"lr-schedule", PL_FLAG_STR, &o->schedule, 0, -1, "NAME", "plateau (ReduceLROnPlateau), constant, cosine or onecycle (per step, as torch); default: the model's recipe, else plateau", 0},
        {"lr-patience", PL_FLAG_INT, &o->lr_patience, 0, 100000, "N", "ReduceLROnPlateau patience in epochs (default 2)", 0},
        {"lr-factor", PL_FLAG_DOUBLE, &o->lr_factor, 0, 0.999, "X", "ReduceLROnPlateau factor (default 0.1)", 0},
        {"min-lr", PL_FLAG_DOUBLE, &o->min_lr, 0, 10, "X", "ReduceLROnPlateau minimum lr (default 0)", 0},
        {"patience", PL_FLAG_INT, &o->es_patience, 1, 100000, "N", "early-stopping patience in epochs (default 5)", 0},
        {"min-delta", PL_FLAG_DOUBLE, &o->min_delta, 0, 1e9, "X", "early-stopping minimum improvement (default 0)", 0},
        {"train-limit", PL_FLAG_INT, &o->train_limit, 0, 1 << 30, "N", "use only N training images (quick runs)", 0},
        {"init", PL_FLAG_STR, &o->checkpoint_in, 0, -1, "FILE", "start from the parameters+buffers of a checkpoint (strict)", 0},
        {"checkpoint-out", PL_FLAG_STR, &o->checkpoint_out, 0, -1, "FILE", "write final parameters+buffers (safetensors)", 0},
        {"metrics", PL_FLAG_STR, &o->metrics, 0, -1, "FILE", "write one JSON object per epoch (JSON lines)", 0},
    };
    int nflags = (int)(sizeof flags / sizeof flags[0]);
    int help = 0;
    pl_err err = {0, ""};
    int st = pl_args_parse("train", flags, nflags, argc, argv, &help, &err);
    if (!st && help) {
        pl_args_usage("train", "Train a model in one process; prints one JSON summary line on stdout.", flags, nflags);
        return 0;
    }
    if (!st) {
        pl_backend_set_threads(o->threads);
        st = run_training(&t, flags, nflags, &err);
    }
    trainer_free(&t);
    if (st) {
        fprintf(stderr, "peerless train: %s\n", err.msg[0] ? err.msg : pl_status_str(st));
        return 1;
    }
    return 0;
}
