/* peer.c — one peer of a P2P data-parallel run: local gradients over its
 * shard, a weighted all-reduce with the other peers each step, identical
 * optimizer updates everywhere. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "peer/peer_internal.h"
#include "peerless/backend.h"
#include "peerless/models.h"
#include "peerless/nn.h"
#include "peerless/optim.h"
#include "peerless/safetensors.h"
#include "peerless/transport.h"

void pl_peer_config_init(pl_peer_config *c)
{
    memset(c, 0, sizeof *c);
    c->size = 1;
    c->run = "peerless";
    c->store_url = "file://runs/store";
    c->model = "lenet5";
    c->dataset = "fashion-mnist";
    c->batch_size = 32;
    c->epochs = 1;
    c->accumulate = 1;
    c->optimizer = "adam";
    c->momentum = -1;
    c->weight_decay = -1;
    c->loss = "cross_entropy";
    c->compression = "none";
    c->seed = 42;
    c->backend = "fast";
    c->peer_timeout_ms = 60000;
    c->lr_patience = 2;
    c->lr_schedule = "plateau";
    c->es_patience = 5;
    c->lr_factor = 0.1;
    c->function_name = "compute_gradient";
    c->function_timeout_s = 300;
}

typedef struct peer {
    const pl_peer_config *cfg;
    pl_store *store;
    pl_transport *tp;
    pl_dataset *train, *val, *test;
    pl_loader *train_ld, *val_ld, *test_ld;
    pl_model *model;
    pl_optim *opt;
    pl_sched_config sched;
    pl_loss_kind loss;
    float *x;
    int32_t *y;
    int c, h, w;
    pl_offload *off;   /* serverless mode */
    pl_dataset **bobj; /* batch objects (cfg->batches > 0), one loader each */
    pl_loader **bld;
    int max_batch;     /* largest batch any source yields */
    float *buf0;       /* buffers at the start of the step */
    float *gacc;       /* gradient sum over the step's batches */
    float *sync;       /* [params + buffers + 2]: the all-reduce vector */
    size_t nsync;
    FILE *metrics, *csv;
    uint64_t step;     /* global step counter (message tag) */
    pl_peer_result res;
} peer;

static void peer_free(peer *p)
{
    for (int b = 0; p->bld && b < p->cfg->batches; b++) {
        pl_loader_destroy(p->bld[b]);
        pl_dataset_destroy(p->bobj[b]);
    }
    free(p->bld);
    free(p->bobj);
    pl_free(p->buf0);
    pl_free(p->gacc);
    pl_offload_destroy(p->off);
    pl_loader_destroy(p->train_ld);
    pl_loader_destroy(p->val_ld);
    pl_loader_destroy(p->test_ld);
    pl_dataset_destroy(p->train);
    pl_dataset_destroy(p->val);
    pl_dataset_destroy(p->test);
    pl_model_destroy(p->model);
    pl_optim_destroy(p->opt);
    pl_transport_close(p->tp);
    pl_store_close(p->store);
    pl_free(p->x);
    free(p->y);
    pl_free(p->sync);
    if (p->metrics)
        fclose(p->metrics);
    if (p->csv)
        fclose(p->csv);
}

static int load_data(peer *p, pl_err *err)
{
    const pl_peer_config *c = p->cfg;
    char key[PL_STORE_KEY_MAX];
    int st = pl_shard_load(p->store, pl_peer_key(key, sizeof key, c->run, "train", c->rank, 0), &p->train, err);
    if (st)
        return pl_err_wrap(err, st, "peer %d: loading its shard (run 'peerless split' first?)", c->rank);
    int exists = 0;
    size_t sz;
    st = pl_store_stat(p->store, pl_peer_key(key, sizeof key, c->run, "val", c->rank, 0), &exists, &sz, err);
    if (!st && exists)
        st = pl_shard_load(p->store, key, &p->val, err);
    if (!st)
        st = pl_shard_load(p->store, pl_peer_key(key, sizeof key, c->run, "test", 0, 0), &p->test, err);
    if (!st && c->batches > 0) {
        p->bobj = calloc((size_t)c->batches, sizeof *p->bobj);
        p->bld = calloc((size_t)c->batches, sizeof *p->bld);
        if (!p->bobj || !p->bld)
            return pl_err_set(err, PL_ERR_NOMEM, "peer %d: out of memory", c->rank);
        for (int b = 0; !st && b < c->batches; b++)
            st = pl_shard_load(p->store, pl_peer_key(key, sizeof key, c->run, "batch", c->rank, b), &p->bobj[b], err);
        if (st)
            return pl_err_wrap(err, st, "peer %d: loading batch objects (split with --batches %d?)", c->rank,
                               c->batches);
    }
    if (!st && pl_dataset_get_info(p->train).num_classes != pl_dataset_get_info(p->test).num_classes)
        st = pl_err_set(err, PL_ERR_FORMAT, "peer %d: train and test objects disagree on the number of classes", c->rank);
    return st;
}

static int make_loader(peer *p, const pl_dataset *ds, size_t off, size_t n, pl_split split, int batch_size,
                       int shuffle, pl_loader **out, pl_err *err)
{
    const pl_peer_config *c = p->cfg;
    const pl_model_info *mi = pl_models_find(c->model);
    pl_loader_config lc;
    memset(&lc, 0, sizeof lc);
    pl_dataset_info di = pl_dataset_get_info(ds);
    int st = pl_models_transform(mi, c->dataset, split, di.c, di.h, di.w, c->input_size, &lc.tf, err);
    if (st)
        return st;
    lc.batch_size = batch_size;
    lc.shuffle = shuffle;
    /* Each peer shuffles its own shard: seed and rank give the stream. */
    lc.seed = c->seed * 1000003u + (uint64_t)c->rank;
    uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return pl_err_set(err, PL_ERR_NOMEM, "peer: out of memory");
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)(off + i);
    st = pl_loader_create(ds, idx, n, &lc, out, err);
    free(idx);
    return st;
}

/* Synchronisation steps per epoch: the peer's batches in groups of
 * `accumulate` (all of them for --accumulate epoch). Equal on every peer. */
static size_t steps_per_epoch(const peer *p)
{
    const pl_peer_config *c = p->cfg;
    size_t nb = c->batches > 0 ? (size_t)c->batches : pl_loader_num_batches(p->train_ld);
    size_t per_step = c->accumulate > 0 ? (size_t)c->accumulate : nb;
    return per_step ? (nb + per_step - 1) / per_step : 0;
}

static int setup(peer *p, pl_err *err)
{
    const pl_peer_config *c = p->cfg;
    const pl_model_info *mi = pl_models_find(c->model);
    if (!mi)
        return pl_err_set(err, PL_ERR_NOTFOUND, "unknown model '%s' (available: %s)", c->model, pl_models_list());
    const pl_backend *be = pl_backend_by_name(c->backend);
    if (!be)
        return pl_err_set(err, PL_ERR_ARG, "unknown backend '%s' (expected fast or ref)", c->backend);
    pl_store_opts so;
    memset(&so, 0, sizeof so);
    so.s3_endpoint = c->s3_endpoint;
    int st = pl_loss_parse(c->loss, &p->loss, err);
    if (!st)
        st = pl_store_open(c->store_url, &so, &p->store, err);
    if (!st)
        st = load_data(p, err);
    if (st)
        return st;
    /* Every peer evaluates an equal slice of the test set; sums are reduced. */
    size_t nt = (size_t)pl_dataset_get_info(p->test).n, toff = nt * (size_t)c->rank / (size_t)c->size;
    size_t tend = nt * (size_t)(c->rank + 1) / (size_t)c->size;
    p->max_batch = c->batch_size;
    st = make_loader(p, p->train, 0, (size_t)pl_dataset_get_info(p->train).n, PL_SPLIT_TRAIN, c->batch_size, 1,
                     &p->train_ld, err);
    if (!st && p->val)
        st = make_loader(p, p->val, 0, (size_t)pl_dataset_get_info(p->val).n, PL_SPLIT_TEST, c->batch_size, 0,
                         &p->val_ld, err);
    if (!st)
        st = make_loader(p, p->test, toff, tend - toff, PL_SPLIT_TEST, c->batch_size, 0, &p->test_ld, err);
    /* Batch objects are used whole and in order, with the eval transform
     * (no augmentation), exactly as the functions see them. */
    for (int b = 0; !st && b < c->batches; b++) {
        int nb = (int)pl_dataset_get_info(p->bobj[b]).n;
        if (nb > p->max_batch)
            p->max_batch = nb;
        st = make_loader(p, p->bobj[b], 0, (size_t)nb, PL_SPLIT_TEST, nb, 0, &p->bld[b], err);
    }
    if (st)
        return st;
    pl_loader_out_shape(p->train_ld, &p->c, &p->h, &p->w);
    st = pl_models_build(c->model, be, p->c, p->h, p->w, pl_dataset_get_info(p->train).num_classes, c->seed,
                         &p->model, err);
    if (st)
        return st;
    pl_optim_kind kind;
    st = pl_optim_kind_parse(c->optimizer, &kind, err);
    if (st)
        return st;
    pl_optim_config oc = pl_optim_defaults(kind);
    if (c->lr > 0)
        oc.lr = c->lr;
    if (c->momentum >= 0)
        oc.momentum = c->momentum;
    if (c->weight_decay >= 0)
        oc.weight_decay = c->weight_decay;
    pl_sched_kind sk;
    if ((st = pl_sched_kind_parse(c->lr_schedule, &sk, err)))
        return pl_err_wrap(err, st, "--lr-schedule");
    p->sched = pl_sched_defaults(sk, oc.lr);
    p->sched.total_steps = (int64_t)c->epochs * (int64_t)steps_per_epoch(p);
    if ((st = pl_sched_prepare(&p->sched, &oc, err)))
        return pl_err_wrap(err, st, "--lr-schedule %s", c->lr_schedule);
    st = pl_optim_create(&p->opt, &oc, pl_model_params(p->model)->count, err);
    if (st)
        return st;
    size_t per = (size_t)p->max_batch * (size_t)p->c * (size_t)p->h * (size_t)p->w;
    p->nsync = pl_model_params(p->model)->count + pl_model_buffers(p->model)->count + 2;
    p->x = pl_alloc(per * sizeof(float));
    p->y = malloc((size_t)p->max_batch * sizeof *p->y);
    p->sync = pl_alloc(p->nsync * sizeof(float));
    p->buf0 = pl_alloc((pl_model_buffers(p->model)->count + 1) * sizeof(float));
    p->gacc = pl_alloc(pl_model_grads(p->model)->count * sizeof(float));
    if (!p->x || !p->y || !p->sync || !p->buf0 || !p->gacc)
        return pl_err_set(err, PL_ERR_NOMEM, "peer %d: out of memory for batch and exchange buffers", c->rank);
    return PL_OK;
}

static int connect_peers(peer *p, pl_err *err)
{
    const pl_peer_config *c = p->cfg;
    pl_transport_opts to;
    pl_transport_opts_init(&to);
    to.url = c->transport_url;
    to.rank = c->rank;
    to.size = c->size;
    to.run = c->run;
    to.peer_timeout_ms = c->peer_timeout_ms;
    to.codec = c->compression;
    to.seed = c->seed;
    int st = pl_transport_open(&to, &p->tp, err);
    if (st)
        return st;
    /* Start from rank 0's exact weights and buffers. */
    pl_flat *pa = pl_model_params(p->model), *bu = pl_model_buffers(p->model);
    st = pl_transport_broadcast(p->tp, pa->data, pa->count * sizeof(float), 0, p->step, err);
    if (!st && bu->count)
        st = pl_transport_broadcast(p->tp, bu->data, bu->count * sizeof(float), 0, p->step, err);
    p->step++;
    return st;
}

/* Sum `vals` over all peers (small vectors: losses, counts). */
static int reduce_small(peer *p, float *vals, size_t n, pl_err *err)
{
    return pl_transport_allreduce_sum_exact(p->tp, vals, n, p->step++, NULL, err);
}

/* Loss sum, correct count and samples of a loader, reduced over peers. */
static int evaluate(peer *p, pl_loader *ld, double *loss, double *acc, pl_err *err)
{
    float acc3[3] = {0, 0, 0};
    int count;
    if (ld) {
        pl_loader_set_epoch(ld, 0);
        for (;;) {
            int st = pl_loader_next(ld, p->x, p->y, NULL, &count);
            if (st)
                return pl_err_set(err, st, "peer %d: reading an evaluation batch", p->cfg->rank);
            if (!count)
                break;
            float l;
            st = pl_model_forward(p->model, p->x, count, p->h, p->w, PL_MODE_EVAL, err);
            if (!st)
                st = pl_model_loss(p->model, p->y, p->loss, &l, err);
            if (st)
                return st;
            acc3[0] += l * (float)count;
            acc3[1] += (float)pl_model_count_correct(p->model, p->y);
            acc3[2] += (float)count;
        }
    }
    int st = reduce_small(p, acc3, 3, err);
    if (st)
        return st;
    *loss = acc3[2] > 0 ? acc3[0] / acc3[2] : NAN;
    *acc = acc3[2] > 0 ? acc3[1] / acc3[2] : NAN;
    return PL_OK;
}


/* Next training batch `b` of the step: from the shard loader, or batch
 * object `first + b`. *count is 0 when the source is exhausted. */
static int next_batch(peer *p, int first, int b, int *count, pl_err *err)
{
    int st;
    if (p->cfg->batches > 0) {
        if (first + b >= p->cfg->batches) {
            *count = 0;
            return PL_OK;
        }
        pl_loader_set_epoch(p->bld[first + b], 0);
        st = pl_loader_next(p->bld[first + b], p->x, p->y, NULL, count);
    } else {
        st = pl_loader_next(p->train_ld, p->x, p->y, NULL, count);
    }
    return st ? pl_err_set(err, st, "peer %d: reading a training batch", p->cfg->rank) : PL_OK;
}

/* Local part of a step: the gradient of the SUMMED loss over up to `k`
 * batches (k <= 0: to the end of the epoch) added into the model's
 * gradients, and the sample-weighted sum of each batch's updated batch-norm
 * buffers into p->sync. Every batch starts from the step's buffers and
 * draws dropout from (seed, step, rank, batch) — the arithmetic a function
 * does for one batch (docs/serverless.md), so both architectures agree: each
 * batch's gradient is computed on its own and added to the step's sum in
 * batch order, as the serverless peer adds the functions' results. */
static int local_gradients(peer *p, int first, int k, int *samples, double *loss_sum, pl_err *err)
{
    pl_flat *bu = pl_model_buffers(p->model), *gr = pl_model_grads(p->model);
    float *bacc = p->sync + gr->count;
    *samples = 0;
    *loss_sum = 0;
    memset(p->gacc, 0, gr->count * sizeof(float));
    memcpy(p->buf0, bu->data, bu->count * sizeof(float));
    memset(bacc, 0, bu->count * sizeof(float));
    for (int b = 0; k <= 0 || b < k; b++) {
        int count;
        int st = next_batch(p, first, b, &count, err);
        if (st)
            return st;
        if (!count)
            break;
        float l;
        pl_model_zero_grad(p->model);
        memcpy(bu->data, p->buf0, bu->count * sizeof(float));
        uint64_t stream = ((uint64_t)p->res.steps << 32) ^ ((uint64_t)p->cfg->rank << 20) ^ (uint64_t)(first + b);
        pl_model_seed_dropout(p->model, p->cfg->seed, stream);
        st = pl_model_forward(p->model, p->x, count, p->h, p->w, PL_MODE_TRAIN, err);
        if (!st)
            st = pl_model_loss_scaled(p->model, p->y, p->loss, (float)count, &l, err);
        if (!st)
            st = pl_model_backward(p->model, err);
        if (st)
            return st;
        for (size_t i = 0; i < gr->count; i++)
            p->gacc[i] += gr->data[i];
        for (size_t i = 0; i < bu->count; i++)
            bacc[i] += bu->data[i] * (float)count;
        *samples += count;
        *loss_sum += (double)l * count;
    }
    memcpy(gr->data, p->gacc, gr->count * sizeof(float));
    return PL_OK;
}

typedef struct step_stats {
    double compute_s, sync_s, loss;
    int samples;
    pl_xfer_stats xfer;
} step_stats;

/* One synchronised step: [grad sums | buffers * n | n | loss sum] summed over
 * peers, then divided by the total n; every peer applies the same update. */
static int sync_step(peer *p, int samples, double loss_sum, step_stats *ss, pl_err *err)
{
    pl_flat *pa = pl_model_params(p->model), *gr = pl_model_grads(p->model), *bu = pl_model_buffers(p->model);
    memcpy(p->sync, gr->data, gr->count * sizeof(float));
    p->sync[p->nsync - 2] = (float)samples;
    p->sync[p->nsync - 1] = (float)loss_sum;
    double t0 = pl_clock_s();
    int st = pl_transport_allreduce_sum(p->tp, p->sync, gr->count, p->step++, &ss->xfer, err);
    if (!st) /* counts, losses and buffers travel exact, never through a lossy codec */
        st = pl_transport_allreduce_sum_exact(p->tp, p->sync + gr->count, bu->count + 2, p->step++, NULL, err);
    ss->sync_s = pl_clock_s() - t0;
    if (st)
        return pl_err_wrap(err, st, "peer %d: step %d synchronisation", p->cfg->rank, p->res.steps + 1);
    float total = p->sync[p->nsync - 2];
    if (!(total > 0))
        return pl_err_set(err, PL_ERR_NUMERIC, "peer %d: step with %g samples in total", p->cfg->rank, (double)total);
    float inv = 1.0f / total;
    for (size_t i = 0; i < gr->count; i++)
        gr->data[i] = p->sync[i] * inv;
    for (size_t i = 0; i < bu->count; i++)
        bu->data[i] = p->sync[gr->count + i] * inv;
    ss->loss = p->sync[p->nsync - 1] / total;
    ss->samples = (int)total;
    int st2 = pl_sched_apply(&p->sched, pl_optim_steps(p->opt), p->opt, err);
    if (st2)
        return st2;
    return pl_optim_step(p->opt, pa->data, gr->data, pa->count, err);
}

static const char *const csv_cols =
    "rank,epoch,step,samples,loss,val_loss,test_accuracy,lr,compute_s,sync_s,send_s,recv_s,wait_s,"
    "bytes_sent,bytes_recv,rss_mb,cpu_s,model_checksum";

static void write_row(peer *p, int epoch, const step_stats *ss, double val_loss, double test_acc)
{
    const pl_peer_config *c = p->cfg;
    char chk[20];
    snprintf(chk, sizeof chk, "%016llx", (unsigned long long)pl_model_checksum(p->model));
    double rss = pl_proc_rss_mb(), cpu = pl_proc_cpu_s(), lr = pl_optim_lr(p->opt);
    char vl[32] = "null", ta[32] = "null";
    if (isfinite(val_loss))
        snprintf(vl, sizeof vl, "%.6g", val_loss);
    if (isfinite(test_acc))
        snprintf(ta, sizeof ta, "%.6g", test_acc);
    if (p->metrics)
        fprintf(p->metrics,
                "{\"rank\":%d,\"epoch\":%d,\"step\":%d,\"samples\":%d,\"loss\":%.6g,\"val_loss\":%s,"
                "\"test_accuracy\":%s,\"lr\":%.6g,\"compute_s\":%.6f,\"sync_s\":%.6f,\"send_s\":%.6f,"
                "\"recv_s\":%.6f,\"wait_s\":%.6f,\"bytes_sent\":%llu,\"bytes_recv\":%llu,\"rss_mb\":%.1f,"
                "\"cpu_s\":%.3f,\"model_checksum\":\"%s\"}\n",
                c->rank, epoch, p->res.steps, ss->samples, ss->loss, vl, ta, lr, ss->compute_s, ss->sync_s,
                ss->xfer.send_s, ss->xfer.recv_s, ss->xfer.wait_s, (unsigned long long)ss->xfer.bytes_sent,
                (unsigned long long)ss->xfer.bytes_recv, rss, cpu, chk);
    if (p->csv)
        fprintf(p->csv, "%d,%d,%d,%d,%.6g,%s,%s,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%llu,%llu,%.1f,%.3f,%s\n", c->rank,
                epoch, p->res.steps, ss->samples, ss->loss, isfinite(val_loss) ? vl : "", isfinite(test_acc) ? ta : "",
                lr, ss->compute_s, ss->sync_s, ss->xfer.send_s, ss->xfer.recv_s, ss->xfer.wait_s,
                (unsigned long long)ss->xfer.bytes_sent, (unsigned long long)ss->xfer.bytes_recv, rss, cpu, chk);
}

/* One epoch; returns 1 in *stop when early stopping fires. */
static int run_epoch(peer *p, int epoch, pl_plateau *plateau, pl_early_stop *es, int *stop, pl_err *err)
{
    const pl_peer_config *c = p->cfg;
    pl_loader_set_epoch(p->train_ld, epoch);
    size_t nb = c->batches > 0 ? (size_t)c->batches : pl_loader_num_batches(p->train_ld);
    size_t per_step = c->accumulate > 0 ? (size_t)c->accumulate : nb;
    size_t steps = steps_per_epoch(p);
    for (size_t s = 0; s < steps; s++) {
        step_stats ss;
        memset(&ss, 0, sizeof ss);
        int samples;
        double loss_sum, t0 = pl_clock_s();
        int st = c->serverless
                     ? pl_offload_step(p->off, p->model, p->res.steps, (int)(s * per_step), (int)per_step,
                                       p->sync + pl_model_grads(p->model)->count, &samples, &loss_sum, err)
                     : local_gradients(p, (int)(s * per_step), (int)per_step, &samples, &loss_sum, err);
        ss.compute_s = pl_clock_s() - t0;
        if (!st)
            st = sync_step(p, samples, loss_sum, &ss, err);
        if (st)
            return st;
        p->res.steps++;
        p->res.compute_s += ss.compute_s;
        p->res.sync_s += ss.sync_s;
        double val_loss = NAN, val_acc, test_loss = NAN, test_acc = NAN;
        if (s + 1 == steps) {
            if ((st = evaluate(p, p->val_ld, &val_loss, &val_acc, err)) ||
                (st = evaluate(p, p->test_ld, &test_loss, &test_acc, err)))
                return st;
            p->res.val_loss = val_loss;
            p->res.test_loss = test_loss;
            p->res.test_accuracy = test_acc;
        }
        write_row(p, epoch + 1, &ss, val_loss, test_acc);
        if (c->progress)
            fprintf(stderr, "@progress {\"rank\":%d,\"epoch\":%d,\"step\":%zu,\"steps\":%zu,\"loss\":%.6g}\n", c->rank,
                    epoch + 1, s + 1, steps, ss.loss);
        if (s + 1 == steps && isfinite(val_loss)) {
            int reduced = 0;
            double lr = p->sched.kind == PL_SCHED_PLATEAU ? pl_plateau_step(plateau, val_loss, &reduced) : 0;
            if (reduced && (st = pl_optim_set_lr(p->opt, lr, err)))
                return st;
            *stop = pl_early_stop_step(es, val_loss, NULL);
        }
    }
    return PL_OK;
}

static int save_checkpoint(peer *p, pl_err *err)
{
    char key[PL_STORE_KEY_MAX];
    pl_st_writer *w = NULL;
    void *blob = NULL;
    size_t len = 0;
    int st = pl_st_writer_create(&w, err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_params(p->model), err);
    if (!st)
        st = pl_st_writer_add_flat(w, pl_model_buffers(p->model), err);
    if (!st)
        st = pl_st_writer_set_metadata(w, "model", p->cfg->model, err);
    if (!st)
        st = pl_st_writer_to_memory(w, &blob, &len, err);
    if (!st)
        st = pl_store_put(p->store, pl_peer_key(key, sizeof key, p->cfg->run, "checkpoint", p->cfg->rank, 0), blob,
                          len, err);
    free(blob);
    pl_st_writer_destroy(w);
    return st;
}

static int open_outputs(peer *p, pl_err *err)
{
    const pl_peer_config *c = p->cfg;
    if (c->metrics_path && !(p->metrics = fopen(c->metrics_path, "w")))
        return pl_err_set(err, PL_ERR_IO, "peer %d: cannot open metrics file %s", c->rank, c->metrics_path);
    if (c->csv_path && !(p->csv = fopen(c->csv_path, "w")))
        return pl_err_set(err, PL_ERR_IO, "peer %d: cannot open CSV file %s", c->rank, c->csv_path);
    if (p->csv)
        fprintf(p->csv, "%s\n", csv_cols);
    return PL_OK;
}

static int validate(const pl_peer_config *c, pl_err *err)
{
    if (c->size < 1 || c->rank < 0 || c->rank >= c->size)
        return pl_err_set(err, PL_ERR_ARG, "rank %d must be in [0, size %d)", c->rank, c->size);
    if (!c->transport_url)
        return pl_err_set(err, PL_ERR_ARG, "no transport URL (--transport tcp://HOST:PORT,...)");
    if (c->serverless && c->batches < 1)
        return pl_err_set(err, PL_ERR_ARG, "serverless mode needs batch objects (--batches B, split with --batches B)");
    if (c->epochs < 1 || c->batch_size < 1 || c->accumulate < 0)
        return pl_err_set(err, PL_ERR_ARG, "epochs, batch size must be >= 1 and accumulate >= 0");
    return PL_OK;
}

int pl_peer_run(const pl_peer_config *cfg, pl_peer_result *res, pl_err *err)
{
    peer p;
    memset(&p, 0, sizeof p);
    p.cfg = cfg;
    double start = pl_clock_s();
    pl_backend_set_threads(cfg->threads);
    int st = validate(cfg, err);
    if (!st)
        st = setup(&p, err);
    if (!st)
        st = open_outputs(&p, err);
    if (!st && cfg->serverless)
        st = pl_offload_create(cfg, p.store, cfg->accumulate > 0 ? cfg->accumulate : cfg->batches, &p.off, err);
    if (!st)
        st = connect_peers(&p, err);
    pl_plateau plateau;
    pl_early_stop es;
    pl_plateau_config pc = pl_plateau_defaults();
    pc.factor = cfg->lr_factor;
    pc.patience = cfg->lr_patience;
    pc.min_lr = cfg->min_lr;
    if (!st)
        st = pl_plateau_init(&plateau, &pc, pl_optim_lr(p.opt), err);
    if (!st)
        st = pl_early_stop_init(&es, cfg->es_patience, cfg->min_delta, err);
    int stop = 0, epoch = 0;
    for (; !st && epoch < cfg->epochs && !stop; epoch++)
        st = run_epoch(&p, epoch, &plateau, &es, &stop, err);
    if (!st)
        st = save_checkpoint(&p, err);
    if (!st) {
        pl_xfer_stats tot;
        pl_transport_stats_total(p.tp, &tot);
        p.res.epochs = epoch;
        p.res.early_stopped = stop;
        p.res.bytes_sent = tot.bytes_sent;
        p.res.bytes_recv = tot.bytes_recv;
        p.res.model_checksum = pl_model_checksum(p.model);
        p.res.seconds = pl_clock_s() - start;
        *res = p.res;
    }
    peer_free(&p);
    return st;
}
