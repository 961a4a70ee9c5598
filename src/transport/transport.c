/* transport.c — URL dispatch to transport backends and shared helpers. */
#include "peerless/transport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peerless/compress.h"
#include "transport/transport_impl.h"

struct pl_transport {
    const pl_transport_vt *vt;
    void *impl;
    int rank, size;
    pl_xfer_stats total;
};

static const pl_transport_vt *const backends[] = {&pl_transport_tcp_vt, &pl_transport_amqp_vt,
                                                  &pl_transport_amqps_vt};

void pl_transport_opts_init(pl_transport_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = 1;
    o->run = "peerless";
    o->peer_timeout_ms = 30000;
    o->connect_timeout_ms = 60000;
    o->codec = "none";
}

const char *pl_transport_codecs(void) { return "none, fp16, qsgd8[:B], qsgd4[:B], topk:R"; }

static int check_opts(const pl_transport_opts *o, pl_err *err)
{
    if (!o->url)
        return pl_err_set(err, PL_ERR_ARG, "transport: no URL given (expected tcp://HOST:PORT,...)");
    if (o->size < 1 || o->rank < 0 || o->rank >= o->size)
        return pl_err_set(err, PL_ERR_ARG, "transport: rank %d of size %d (expected 0 <= rank < size)",
                          o->rank, o->size);
    if (o->peer_timeout_ms <= 0 || o->connect_timeout_ms <= 0)
        return pl_err_set(err, PL_ERR_ARG,
                          "transport: peer timeout %d ms, connect timeout %d ms (expected > 0)",
                          o->peer_timeout_ms, o->connect_timeout_ms);
    pl_codec_cfg cfg;
    if (o->codec && pl_codec_parse(o->codec, &cfg, err))
        return pl_err_wrap(err, PL_ERR_ARG, "transport");
    return PL_OK;
}

int pl_transport_open(const pl_transport_opts *o, pl_transport **out, pl_err *err)
{
    *out = NULL;
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    const char *sep = strstr(o->url, "://");
    for (size_t i = 0; sep && i < sizeof backends / sizeof *backends; i++) {
        const pl_transport_vt *vt = backends[i];
        if (strlen(vt->scheme) != (size_t)(sep - o->url) ||
            strncmp(o->url, vt->scheme, (size_t)(sep - o->url)))
            continue;
        pl_transport *t = calloc(1, sizeof *t);
        if (!t)
            return pl_err_set(err, PL_ERR_NOMEM, "transport: out of memory");
        t->vt = vt;
        t->rank = o->rank;
        t->size = o->size;
        rc = vt->open(o, sep + 3, &t->impl, err);
        if (rc) {
            free(t);
            return rc;
        }
        *out = t;
        return PL_OK;
    }
    return pl_err_set(err, PL_ERR_UNSUPPORTED,
                      "transport URL '%s': unknown scheme (expected tcp://HOST:PORT,...)", o->url);
}

static int finish(pl_transport *t, const pl_xfer_stats *st, pl_xfer_stats *out, int rc)
{
    pl_tr_stats_add(&t->total, st);
    if (out)
        *out = *st;
    return rc;
}

int pl_transport_allreduce_sum(pl_transport *t, float *data, size_t n, uint64_t step,
                               pl_xfer_stats *stats, pl_err *err)
{
    pl_xfer_stats st = {0};
    int rc = t->vt->allreduce_sum(t->impl, data, n, step, 0, &st, err);
    return finish(t, &st, stats, rc);
}

int pl_transport_allreduce_sum_exact(pl_transport *t, float *data, size_t n, uint64_t step,
                                     pl_xfer_stats *stats, pl_err *err)
{
    pl_xfer_stats st = {0};
    int rc = t->vt->allreduce_sum(t->impl, data, n, step, 1, &st, err);
    return finish(t, &st, stats, rc);
}

int pl_transport_broadcast(pl_transport *t, void *buf, size_t len, int root, uint64_t step,
                           pl_err *err)
{
    if (root < 0 || root >= t->size)
        return pl_err_set(err, PL_ERR_ARG, "broadcast: root %d (expected 0..%d)", root, t->size - 1);
    pl_xfer_stats st = {0};
    int rc = t->vt->broadcast(t->impl, buf, len, root, step, &st, err);
    return finish(t, &st, NULL, rc);
}

int pl_transport_barrier(pl_transport *t, uint64_t step, pl_err *err)
{
    pl_xfer_stats st = {0};
    int rc = t->vt->barrier(t->impl, step, &st, err);
    return finish(t, &st, NULL, rc);
}

void pl_transport_stats_total(const pl_transport *t, pl_xfer_stats *out) { *out = t->total; }
int pl_transport_rank(const pl_transport *t) { return t->rank; }
int pl_transport_size(const pl_transport *t) { return t->size; }

void pl_transport_close(pl_transport *t)
{
    if (!t)
        return;
    t->vt->close(t->impl);
    free(t);
}

/* --- helpers --- */

double pl_tr_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void pl_tr_log(pl_transport_log_fn fn, void *ctx, const char *fmt, ...)
{
    char line[PL_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (fn)
        fn(ctx, line);
    else
        fprintf(stderr, "peerless: transport: %s\n", line);
}

void pl_tr_stats_add(pl_xfer_stats *acc, const pl_xfer_stats *s)
{
    acc->bytes_sent += s->bytes_sent;
    acc->bytes_recv += s->bytes_recv;
    acc->msgs_sent += s->msgs_sent;
    acc->msgs_recv += s->msgs_recv;
    acc->bytes_spliced += s->bytes_spliced;
    acc->send_s += s->send_s;
    acc->recv_s += s->recv_s;
    acc->wait_s += s->wait_s;
}
