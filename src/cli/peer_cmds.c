/* peer_cmds.c — `peerless split` and `peerless peer`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "peerless/models.h"
#include "peerless/nn.h"
#include "peerless/optim.h"
#include "peerless/peer.h"
#include "peerless/store.h"

int pl_cmd_split(int argc, char **argv)
{
    pl_split_config c;
    memset(&c, 0, sizeof c);
    c.dataset = "fashion-mnist";
    c.run = "peerless";
    c.size = 1;
    c.seed = 42;
    c.val_fraction = 0.1;
    const char *store_url = "file://runs/store", *endpoint = NULL, *model = NULL;
    pl_flag flags[] = {
        {"size", PL_FLAG_INT, &c.size, 1, 4096, "N", "number of peers (shards)", 0},
        {"dataset", PL_FLAG_STR, &c.dataset, 0, -1, "NAME", "fashion-mnist (default), mnist, cifar10, synthetic", 0},
        {"data-dir", PL_FLAG_STR, &c.data_dir, 0, -1, "DIR", "dataset directory (default: the dataset's place)", 0},
        {"batches", PL_FLAG_INT, &c.batches, 0, 1 << 20, "B", "also write B batch objects per peer (serverless)", 0},
        {"store", PL_FLAG_STR, &store_url, 0, -1, "URL", "object store: file://DIR (default file://runs/store) or s3://BUCKET/PREFIX", 0},
        {"s3-endpoint", PL_FLAG_STR, &endpoint, 0, -1, "URL", "S3-compatible endpoint (default: AWS)", 0},
        {"run", PL_FLAG_STR, &c.run, 0, -1, "NAME", "run name: prefix of every object (default peerless)", 0},
        {"seed", PL_FLAG_U64, &c.seed, 0, -1, "N", "shuffle seed (default 42)", 0},
        {"val-fraction", PL_FLAG_DOUBLE, &c.val_fraction, 0, 0.9, "X", "validation share of each shard (default 0.1)", 0},
        {"model", PL_FLAG_STR, &model, 0, -1, "NAME", "accepted for compatibility (--model_str); peers apply the model's transforms", 0},
    };
    int n = (int)(sizeof flags / sizeof flags[0]), help = 0;
    pl_err err = {0, ""};
    int st = pl_args_parse("split", flags, n, argc, argv, &help, &err);
    if (!st && help) {
        pl_args_usage("split", "Partition a dataset into per-peer objects in the object store.", flags, n);
        return 0;
    }
    pl_store *s = NULL;
    pl_store_opts so;
    memset(&so, 0, sizeof so);
    so.s3_endpoint = endpoint;
    char report[512] = "";
    if (!st)
        st = pl_store_open(store_url, &so, &s, &err);
    if (!st)
        st = pl_split_write(s, &c, report, sizeof report, &err);
    pl_store_close(s);
    if (st) {
        fprintf(stderr, "peerless split: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", report);
    return 0;
}

/* A JSON number, or null when not finite. Returns buf. */
const char *pl_json_num(char *buf, size_t len, double v)
{
    if (isfinite(v))
        snprintf(buf, len, "%.6g", v);
    else
        snprintf(buf, len, "null");
    return buf;
}

/* The flags shared by `peer` and `run`, filling a peer config. */
int pl_peer_flags(pl_peer_config *c, pl_flag *out, int cap, const char **evaluation, const char **accumulate,
                  const char **mode, const char **functions)
{
    pl_flag f[] = {
        {"mode", PL_FLAG_STR, mode, 0, -1, "MODE", "p2p (default) or serverless (functions compute the batches)", 0},
        {"faas-url", PL_FLAG_STR, &c->faas_url, 0, -1, "URL", "serverless: the function platform (http://HOST:PORT)", 0},
        {"function-name", PL_FLAG_STR, &c->function_name, 0, -1, "NAME", "serverless: the gradient function (default compute_gradient)", 0},
        {"max-concurrency", PL_FLAG_INT, &c->max_concurrency, 0, 100000, "C", "serverless: Map MaxConcurrency (0 = unlimited)", 0},
        {"function-timeout", PL_FLAG_INT, &c->function_timeout_s, 1, 900, "S", "serverless: per-invocation timeout (default 300)", 0},
        {"functions", PL_FLAG_STR, functions, 0, -1, "local|aws", "serverless: the local platform (default) or AWS Lambda", 0},
        {"aws-endpoint", PL_FLAG_STR, &c->aws_endpoint, 0, -1, "URL", "serverless on aws: endpoint override for Lambda and Step Functions (e.g. a local platform)", 0},
        {"state-machine-arn", PL_FLAG_STR, &c->state_machine_arn, 0, -1, "ARN", "serverless on aws: run steps on Step Functions", 0},
        {"model", PL_FLAG_STR, &c->model, 0, -1, "NAME", "model (also --model_str; default lenet5)", 0},
        {"model-str", PL_FLAG_STR, &c->model, 0, -1, "NAME", "same as --model (the original's spelling)", 0},
        {"dataset", PL_FLAG_STR, &c->dataset, 0, -1, "NAME", "dataset the shards came from (default fashion-mnist)", 0},
        {"batch-size", PL_FLAG_INT, &c->batch_size, 1, 65536, "N", "mini-batch size per peer (default 32)", 0},
        {"epochs", PL_FLAG_INT, &c->epochs, 1, 100000, "N", "epochs (default 1)", 0},
        {"accumulate", PL_FLAG_STR, accumulate, 0, -1, "K|epoch", "local batches per synchronisation; epoch = the original's schedule (default 1)", 0},
        {"batches", PL_FLAG_INT, &c->batches, 0, 1 << 20, "B", "train on the split's B batch objects per peer (serverless layout)", 0},
        {"optimizer", PL_FLAG_STR, &c->optimizer, 0, -1, "NAME", "sgd, adam (default), adamw, rmsprop, adagrad", 0},
        {"lr", PL_FLAG_DOUBLE, &c->lr, 0, 10, "X", "learning rate (default: the optimizer's)", 0},
        {"momentum", PL_FLAG_DOUBLE, &c->momentum, 0, 1, "X", "momentum (sgd, rmsprop)", 0},
        {"weight-decay", PL_FLAG_DOUBLE, &c->weight_decay, 0, 1, "X", "weight decay", 0},
        {"loss", PL_FLAG_STR, &c->loss, 0, -1, "NAME", "cross_entropy (default) or nll", 0},
        {"compression", PL_FLAG_STR, &c->compression, 0, -1, "CODEC", "none (default), fp16, qsgd8[:B], qsgd4[:B], topk:RATIO", 0},
        {"evaluation", PL_FLAG_STR, evaluation, 0, -1, "true|false", "record per-step metrics (default true)", 0},
        {"seed", PL_FLAG_U64, &c->seed, 0, -1, "N", "seed (default 42)", 0},
        {"threads", PL_FLAG_INT, &c->threads, 0, 1024, "N", "compute threads (default: all cores)", 0},
        {"backend", PL_FLAG_STR, &c->backend, 0, -1, "NAME", "fast (default) or ref", 0},
        {"input-size", PL_FLAG_INT, &c->input_size, 0, 4096, "N", "resize inputs to NxN (default: the model's)", 0},
        {"run", PL_FLAG_STR, &c->run, 0, -1, "NAME", "run name (store prefix; default peerless)", 0},
        {"store", PL_FLAG_STR, &c->store_url, 0, -1, "URL", "object store holding the shards", 0},
        {"s3-endpoint", PL_FLAG_STR, &c->s3_endpoint, 0, -1, "URL", "S3-compatible endpoint", 0},
        {"peer-timeout", PL_FLAG_INT, &c->peer_timeout_ms, 100, 86400000, "MS", "fail if a peer is silent this long (default 60000)", 0},
        {"lr-schedule", PL_FLAG_STR, &c->lr_schedule, 0, -1, "NAME", "plateau (default), constant, cosine or onecycle (per step, as torch)", 0},
        {"lr-patience", PL_FLAG_INT, &c->lr_patience, 0, 100000, "N", "ReduceLROnPlateau patience (default 2)", 0},
        {"lr-factor", PL_FLAG_DOUBLE, &c->lr_factor, 0, 0.999, "X", "ReduceLROnPlateau factor (default 0.1)", 0},
        {"patience", PL_FLAG_INT, &c->es_patience, 1, 100000, "N", "early-stopping patience (default 5)", 0},
        {"min-delta", PL_FLAG_DOUBLE, &c->min_delta, 0, 1e9, "X", "early-stopping minimum improvement", 0},
    };
    int n = (int)(sizeof f / sizeof f[0]);
    if (n > cap)
        return -1;
    memcpy(out, f, sizeof f);
    return n;
}

int pl_peer_check_names(const pl_peer_config *c, pl_err *err)
{
    pl_optim_kind ok;
    pl_sched_kind sk;
    pl_loss_kind lk;
    if (!pl_models_find(c->model))
        return pl_err_set(err, PL_ERR_ARG, "--model: unknown model '%s' (available: %s)", c->model, pl_models_list());
    int st = pl_optim_kind_parse(c->optimizer, &ok, err);
    if (st)
        return pl_err_wrap(err, st, "--optimizer");
    if ((st = pl_loss_parse(c->loss, &lk, err)))
        return pl_err_wrap(err, st, "--loss");
    if ((st = pl_sched_kind_parse(c->lr_schedule, &sk, err)))
        return pl_err_wrap(err, st, "--lr-schedule");
    return PL_OK;
}

/* Parse "K" or "epoch" into the config's accumulate (0 = epoch). */
int pl_peer_parse_functions(const char *v, pl_peer_config *c, pl_err *err)
{
    if (!strcmp(v, "local") || !strcmp(v, "aws")) {
        c->functions_aws = !strcmp(v, "aws");
        return PL_OK;
    }
    return pl_err_set(err, PL_ERR_ARG, "--functions expects local or aws, got '%s'", v);
}

int pl_peer_parse_mode(const char *v, pl_peer_config *c, pl_err *err)
{
    if (!strcmp(v, "p2p"))
        c->serverless = 0;
    else if (!strcmp(v, "serverless"))
        c->serverless = 1;
    else
        return pl_err_set(err, PL_ERR_ARG, "--mode expects p2p or serverless, got '%s'", v);
    return PL_OK;
}

int pl_peer_parse_accumulate(const char *v, pl_peer_config *c, pl_err *err)
{
    if (!v)
        return PL_OK;
    if (!strcmp(v, "epoch")) {
        c->accumulate = 0;
        return PL_OK;
    }
    char *end;
    long k = strtol(v, &end, 10);
    if (*end || k < 1 || k > 1000000)
        return pl_err_set(err, PL_ERR_ARG, "--accumulate expects a positive integer or 'epoch', got '%s'", v);
    c->accumulate = (int)k;
    return PL_OK;
}

int pl_cmd_peer(int argc, char **argv)
{
    pl_peer_config c;
    pl_peer_config_init(&c);
    const char *evaluation = "true", *accumulate = NULL, *metrics = NULL, *csv = NULL, *mode = "p2p";
    const char *functions = "local";
    pl_flag flags[48];
    int n = pl_peer_flags(&c, flags, 40, &evaluation, &accumulate, &mode, &functions);
    pl_flag extra[] = {
        {"size", PL_FLAG_INT, &c.size, 1, 4096, "N", "number of peers", 0},
        {"rank", PL_FLAG_INT, &c.rank, 0, 4095, "R", "this peer's rank in [0, size)", 0},
        {"transport", PL_FLAG_STR, &c.transport_url, 0, -1, "URL", "tcp://HOST:PORT,HOST:PORT,... (entry i = rank i)", 0},
        {"metrics", PL_FLAG_STR, &metrics, 0, -1, "FILE", "per-step metrics, JSON lines", 0},
        {"csv", PL_FLAG_STR, &csv, 0, -1, "FILE", "per-step metrics, CSV", 0},
        {"progress", PL_FLAG_BOOL, &c.progress, 0, -1, NULL, "print @progress lines on stderr (for the launcher)", 0},
    };
    memcpy(flags + n, extra, sizeof extra);
    n += (int)(sizeof extra / sizeof extra[0]);
    int help = 0;
    pl_err err = {0, ""};
    int st = pl_args_parse("peer", flags, n, argc, argv, &help, &err);
    if (!st && help) {
        pl_args_usage("peer", "Run one peer of a P2P training run; prints one JSON result line on stdout.", flags, n);
        return 0;
    }
    if (!st)
        st = pl_peer_parse_accumulate(accumulate, &c, &err);
    if (!st)
        st = pl_peer_check_names(&c, &err);
    if (!st)
        st = pl_peer_parse_mode(mode, &c, &err);
    if (!st)
        st = pl_peer_parse_functions(functions, &c, &err);
    if (!st && strcmp(evaluation, "true") && strcmp(evaluation, "false") && strcmp(evaluation, "True") &&
        strcmp(evaluation, "False"))
        st = pl_err_set(&err, PL_ERR_ARG, "--evaluation expects true or false, got '%s'", evaluation);
    int eval_on = !st && (evaluation[0] == 't' || evaluation[0] == 'T');
    c.metrics_path = eval_on ? metrics : NULL;
    c.csv_path = eval_on ? csv : NULL;
    pl_peer_result r;
    memset(&r, 0, sizeof r);
    if (!st)
        st = pl_peer_run(&c, &r, &err);
    if (st) {
        fprintf(stderr, "peerless peer %d: %s\n", c.rank, err.msg);
        return 1;
    }
    char chk[20], acc[32], tl[32], vl[32];
    snprintf(chk, sizeof chk, "%016llx", (unsigned long long)r.model_checksum);
    printf("{\"rank\":%d,\"epochs\":%d,\"steps\":%d,\"early_stopped\":%s,\"test_accuracy\":%s,\"test_loss\":%s,"
           "\"val_loss\":%s,\"seconds\":%.3f,\"compute_s\":%.3f,\"sync_s\":%.3f,\"bytes_sent\":%llu,"
           "\"bytes_recv\":%llu,\"model_checksum\":\"%s\"}\n",
           c.rank, r.epochs, r.steps, r.early_stopped ? "true" : "false", pl_json_num(acc, sizeof acc, r.test_accuracy),
           pl_json_num(tl, sizeof tl, r.test_loss), pl_json_num(vl, sizeof vl, r.val_loss), r.seconds, r.compute_s,
           r.sync_s, (unsigned long long)r.bytes_sent, (unsigned long long)r.bytes_recv, chk);
    return 0;
}
