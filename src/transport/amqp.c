/* amqp.c — the amqp:// and amqps:// transport: collectives over a RabbitMQ
 * broker (topology in amqp_conn.h, URL in amqp_url.h, user guide in
 * docs/rabbitmq.md).
 *
 * All-reduce patterns (both give bit-identical results on every peer):
 *   scatter  the vector is cut into N owner ranges (rank r owns
 *            [n*r/N, n*(r+1)/N)), each cut into messages of at most chunk=
 *            bytes; every peer sends each piece to its owner, the owner adds
 *            the N contributions in rank order and publishes the (encoded)
 *            result to all others: ~2(N-1)/N of the vector per peer.
 *   fanout   every peer publishes its whole vector (in pieces) to all
 *            others; each adds the N contributions of a piece in rank order.
 * A lossy codec is applied to every contribution, the peer's own included
 * (it adds the decoded bytes it sent), so all peers add identical values.
 * A scatter owner encodes its sum once more (fp16, qsgd) and keeps the
 * decoded values; a top-k sum goes exactly, as a sparse topk payload of its
 * nonzeros (at most N*k) or raw float32, whichever is shorter.
 * An exact call (and codec none) sends raw float32 behind a codec header and
 * adds in plain loops; exact and compressed calls each keep their own plan
 * (pieces, codec state), so interleaving them loses no codec state. On plain
 * TCP raw pieces are published straight from the caller's vector (headers
 * and floats written as body frames with writev, amqp_conn.c), and an owner
 * sums a piece in place and CRCs it in the same pass, so a raw all-reduce
 * makes no user-space copy of what it sends.
 *
 * Messages are matched by (type, step); messages of a later step or of
 * another collective wait in a list, older ones and other runs' are dropped
 * and logged. A message that fails the header or CRC check is rejected and
 * logged but does not fail the call: anyone with access to the vhost can
 * publish, so the genuine message is still awaited (until the peer timeout,
 * which names the silent rank). A message the broker could not route (its
 * receiver's queue is gone) fails the call naming the receiver.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/compress.h"
#include "peerless/wire.h"
#include "transport/amqp_conn.h"
#include "transport/amqp_url.h"
#include "transport/transport_impl.h"

#define HDR PL_WIRE_HEADER_SIZE
#define MAX_PEERS 1024

/* The all-reduce plan of one kind of call (compressed or exact) for vectors
 * of n floats cut into k pieces. Each kind keeps its own, so a codec's state
 * (top-k residual, QSGD call count) survives interleaved exact calls. */
typedef struct ar_plan {
    pl_codec_cfg codec;             /* of every piece; none: raw float32 */
    size_t n, max_elems;
    uint32_t k;
    size_t *poff, *pcnt, *own_off;
    int *powner;                    /* owner rank, or -1 (fanout: everyone) */
    pl_amqp_msg **slot;             /* [k * size + sender] received contributions */
    uint8_t *own;                   /* lossy codecs: own encoded pieces */
    float *acc;                     /* [max_elems] */
    pl_codec *enc_grad, *enc_red;
    pl_wire_dedup *dd_grad, *dd_red;
} ar_plan;

typedef struct amqp_tr {
    pl_amqp_url u;
    pl_amqp_conn c;
    int rank, size, timeout_ms, failed;
    int joining;                    /* handshake: returns are expected */
    char run[128];
    uint64_t run_id;
    pl_transport_log_fn log;
    void *log_ctx;
    pl_xfer_stats scratch;          /* stats outside collectives */
    double *heard;                  /* [size] last time each rank was heard */
    uint32_t *need;                 /* [size] messages still awaited per rank */
    unsigned char *returned;        /* [size] see pl_amqp_conn.returned */
    pl_amqp_msg *later, *later_tail; /* messages for a later call */
    uint64_t done_step[PL_WIRE_TYPE_COUNT_];
    pl_codec_cfg codec;             /* the handle's all-reduce codec */
    uint64_t seed;
    uint8_t *sendbuf;               /* HDR + chunk bytes */
    ar_plan plans[2];               /* [0] compressed (codec), [1] exact (none) */
    ar_plan *p;                     /* the current all-reduce's plan */
} amqp_tr;

static int lossy(const ar_plan *p) { return p->codec.id != PL_CODEC_NONE; }
/* Raw float32 payloads, and top-k sums (a topk payload with any k). */
static const pl_codec_cfg none = {.id = PL_CODEC_NONE}, sparse = {.id = PL_CODEC_TOPK};

/* --- receiving --- */

typedef enum { TAKE, KEEP, DROP } disposition;

/* What to do with message m while waiting for types `mask` at `step`. */
static disposition classify(amqp_tr *t, pl_amqp_msg *m, unsigned mask, uint64_t step,
                            pl_wire_dedup *const *dd, pl_wire_header *h)
{
    pl_err e = {0};
    if (m->len < HDR) {
        pl_tr_log(t->log, t->log_ctx, "rank %d: rejected a %zu-byte message (shorter than the %d-byte "
                  "header)", t->rank, m->len, HDR);
        return DROP;
    }
    if (pl_wire_decode_header(m->body, m->len, h, &e)) {
        pl_tr_log(t->log, t->log_ctx, "rank %d: rejected a message: %s", t->rank, e.msg);
        return DROP;
    }
    if (h->run_id != t->run_id) {
        pl_tr_log(t->log, t->log_ctx, "rank %d: discarded a %s message of another run (run id %016" PRIx64
                  ", sender %u, step %" PRIu64 ")", t->rank, pl_wire_type_name(h->type), h->run_id,
                  h->sender, h->step);
        return DROP;
    }
    unsigned bit = 1u << h->type;
    if (h->sender < (uint32_t)t->size && h->sender != (uint32_t)t->rank)
        t->heard[h->sender] = pl_tr_now();
    if ((mask & bit) && h->step > step)
        return KEEP;
    if (!(mask & bit)) {
        int late = h->type == PL_WIRE_HELLO || h->type == PL_WIRE_HEARTBEAT || h->type == PL_WIRE_BYE ||
                   h->step < t->done_step[h->type];
        if (!late)
            return KEEP;
        pl_tr_log(t->log, t->log_ctx, "rank %d: discarded a stale %s message from rank %u (step %" PRIu64
                  ")", t->rank, pl_wire_type_name(h->type), h->sender, h->step);
        return DROP;
    }
    pl_wire_expect ex = {.run_id = t->run_id, .step = step, .rank = (uint32_t)t->rank,
                         .world_size = (uint32_t)t->size};
    pl_wire_verdict v = pl_wire_check_crc(h, m->len - HDR, m->crc, &ex, dd[h->type], &e);
    if (v == PL_WIRE_ACCEPT)
        return TAKE;
    pl_tr_log(t->log, t->log_ctx, "rank %d: %s a %s message (%s): %s", t->rank,
              v == PL_WIRE_CORRUPT ? "rejected" : "discarded", pl_wire_type_name(h->type),
              pl_wire_verdict_name(v), e.msg);
    return DROP;
}

static void keep_later(amqp_tr *t, pl_amqp_msg *m)
{
    m->next = NULL;
    if (t->later_tail)
        t->later_tail->next = m;
    else
        t->later = m;
    t->later_tail = m;
}

/* The first waiting message of `mask` at `step` that passes the checks. */
static pl_amqp_msg *from_later(amqp_tr *t, unsigned mask, uint64_t step, pl_wire_dedup *const *dd,
                               pl_wire_header *h)
{
    pl_amqp_msg *prev = NULL;
    for (pl_amqp_msg *m = t->later; m;) {
        pl_wire_header peek;
        int match = m->len >= HDR && !pl_wire_decode_header(m->body, m->len, &peek, NULL) &&
                    (mask & (1u << peek.type)) && peek.step <= step;
        if (!match) {
            prev = m;
            m = m->next;
            continue;
        }
        pl_amqp_msg *next = m->next;
        if (prev)
            prev->next = next;
        else
            t->later = next;
        if (t->later_tail == m)
            t->later_tail = prev;
        if (classify(t, m, mask, step, dd, h) == TAKE)
            return m;
        pl_amqp_msg_free(m);
        m = next;
    }
    return NULL;
}

static int timeout_error(amqp_tr *t, unsigned mask, uint64_t step, double now, pl_err *err)
{
    char names[256] = "";
    size_t len = 0;
    for (int r = 0; r < t->size && len < sizeof names - 40; r++)
        if (t->need[r] && now >= t->heard[r] + t->timeout_ms * 1e-3)
            len += (size_t)snprintf(names + len, sizeof names - len, "%srank %d (%u message%s missing)",
                                    len ? ", " : "", r, t->need[r], t->need[r] == 1 ? "" : "s");
    const char *what = mask & (1u << PL_WIRE_GRAD) ? "all-reduce"
                       : mask & (1u << PL_WIRE_MODEL) ? "broadcast" : "barrier";
    return pl_err_set(err, PL_ERR_IO, "rank %d, %s step %" PRIu64 ": %s sent nothing for %.1f s (peer "
                      "timeout) via %s", t->rank, what, step, names, t->timeout_ms * 1e-3, t->c.where);
}

static int check_returned(amqp_tr *t, pl_err *err)
{
    if (t->joining || (t->c.returned_rank < 0 && !t->c.nacked))
        return PL_OK;
    if (t->c.nacked)
        return pl_err_set(err, PL_ERR_IO, "rank %d: broker %s refused (nack) %d message(s)", t->rank,
                          t->c.where, t->c.nacked);
    return pl_err_set(err, PL_ERR_IO, "rank %d: a message to rank %d was returned unroutable by %s: "
                      "its queue is gone (rank %d left the run or lost its broker connection)", t->rank,
                      t->c.returned_rank, t->c.where, t->c.returned_rank);
}

/* Wait for the next acceptable message of `mask` at `step` from a rank with
 * need[r] > 0; *out is owned by the caller. */
static int next_msg(amqp_tr *t, unsigned mask, uint64_t step, pl_wire_dedup *const *dd,
                    pl_amqp_msg **out, pl_wire_header *h, pl_err *err)
{
    for (;;) {
        if ((*out = from_later(t, mask, step, dd, h)))
            return PL_OK;
        pl_amqp_msg *m;
        while ((m = pl_amqp_pop(&t->c))) {
            disposition d = classify(t, m, mask, step, dd, h);
            if (d == TAKE) {
                *out = m;
                return PL_OK;
            }
            if (d == KEEP)
                keep_later(t, m);
            else
                pl_amqp_msg_free(m);
        }
        int rc = check_returned(t, err);
        if (rc)
            return rc;
        double now = pl_tr_now(), deadline = now + 3600;
        for (int r = 0; r < t->size; r++)
            if (t->need[r] && t->heard[r] + t->timeout_ms * 1e-3 < deadline)
                deadline = t->heard[r] + t->timeout_ms * 1e-3;
        if (now >= deadline)
            return timeout_error(t, mask, step, now, err);
        rc = pl_amqp_pump(&t->c, deadline, 1, err);
        t->c.st->wait_s += pl_tr_now() - now;
        if (rc < 0)
            return pl_err_wrap(err, rc, "rank %d, step %" PRIu64, t->rank, step);
    }
}

/* --- sending --- */

static int publish(amqp_tr *t, const int *dest, int nd, size_t hlen, const void *tail, size_t tlen,
                   double deadline, pl_err *err)
{
    return tail ? pl_amqp_publish2(&t->c, dest, nd, t->sendbuf, hlen, tail, tlen, deadline, err)
                : pl_amqp_publish(&t->c, dest, nd, t->sendbuf, hlen, err);
}

/* Publish sendbuf[0..hlen) followed by tail[0..tlen) (NULL: nothing) to
 * every rank but this one, or only to `to` if >= 0. */
static int publish_to(amqp_tr *t, int to, size_t hlen, const void *tail, size_t tlen, pl_err *err)
{
    int dest[64], nd = 0, rc = PL_OK;
    double deadline = pl_tr_now() + t->timeout_ms * 1e-3;
    for (int r = 0; !rc && r < t->size; r++) {
        if (r == t->rank || (to >= 0 && r != to))
            continue;
        dest[nd++] = r;
        if (nd == 64 || r == t->size - 1 || to >= 0) {
            rc = publish(t, dest, nd, hlen, tail, tlen, deadline, err);
            nd = 0;
        }
    }
    if (!rc && nd)
        rc = publish(t, dest, nd, hlen, tail, tlen, deadline, err);
    if (!rc)
        rc = pl_amqp_drain(&t->c, err);
    if (!rc)
        rc = check_returned(t, err);
    return rc;
}

static void address(const amqp_tr *t, pl_wire_header *h, int to)
{
    h->sender = (uint32_t)t->rank;
    h->run_id = t->run_id;
    h->receiver = to >= 0 ? (uint32_t)to : PL_WIRE_BROADCAST;
}

/* Publish sendbuf (header h, payload of len bytes already at sendbuf + HDR)
 * to every rank but this one, or only to `to` if >= 0. */
static int send_msg(amqp_tr *t, pl_wire_header *h, size_t len, int to, pl_err *err)
{
    address(t, h, to);
    int rc = pl_wire_encode_header(h, t->sendbuf + HDR, len, t->sendbuf, HDR, err);
    return rc ? rc : publish_to(t, to, HDR + len, NULL, 0, err);
}

/* Publish raw float32 x[0..cnt) behind header h and a codec-none header, as
 * send_msg. Plain TCP: straight from x (pl_amqp_publish2, no copy); *crc,
 * if given, is the payload's CRC (codec header, then x) computed by the
 * caller. TLS: copied behind the headers in sendbuf. */
static int send_floats(amqp_tr *t, pl_wire_header *h, const float *x, size_t cnt, int to,
                       const uint32_t *crc, pl_err *err)
{
    uint8_t *ch = t->sendbuf + HDR;
    size_t blen = cnt * sizeof *x;
    pl_codec_write_header(&t->p->codec, cnt, ch);
    if (t->c.tls) {
        memcpy(ch + PL_CODEC_HEADER_SIZE, x, blen);
        return send_msg(t, h, PL_CODEC_HEADER_SIZE + blen, to, err);
    }
    uint32_t c = crc ? *crc : pl_wire_crc32c(pl_wire_crc32c(0, ch, PL_CODEC_HEADER_SIZE), x, blen);
    address(t, h, to);
    int rc = pl_wire_encode_header_crc(h, PL_CODEC_HEADER_SIZE + blen, c, t->sendbuf, HDR, err);
    return rc ? rc : publish_to(t, to, HDR + PL_CODEC_HEADER_SIZE, x, blen, err);
}

/* --- call framing --- */

static int begin(amqp_tr *t, pl_xfer_stats *st, const char *what, uint64_t step, pl_err *err)
{
    t->c.st = st ? st : &t->scratch;
    if (t->failed)
        return pl_err_set(err, PL_ERR_IO, "rank %d, %s step %" PRIu64 ": the transport failed in an "
                          "earlier call; close it and open a new one", t->rank, what, step);
    double now = pl_tr_now();
    for (int r = 0; r < t->size; r++) {
        if (t->heard[r] < now)
            t->heard[r] = now;
        t->need[r] = 0;
    }
    return PL_OK;
}

/* Drop waiting messages that can no longer be used. */
static void purge_later(amqp_tr *t)
{
    pl_amqp_msg *keep = NULL, *tail = NULL;
    for (pl_amqp_msg *m = t->later, *next; m; m = next) {
        next = m->next;
        pl_wire_header h;
        if (!pl_wire_decode_header(m->body, m->len, &h, NULL) && h.step >= t->done_step[h.type]) {
            m->next = NULL;
            if (tail)
                tail->next = m;
            else
                keep = m;
            tail = m;
        } else {
            pl_amqp_msg_free(m);
        }
    }
    t->later = keep;
    t->later_tail = tail;
}

/* Wait for the broker's confirms of everything published, then record the
 * step as done for the given types. */
static int end(amqp_tr *t, int rc, unsigned types, uint64_t step, pl_err *err)
{
    double deadline = pl_tr_now() + t->timeout_ms * 1e-3;
    int p;
    while (!rc && t->c.acked < t->c.published) {
        if (pl_tr_now() >= deadline)
            rc = pl_err_set(err, PL_ERR_IO, "rank %d, step %" PRIu64 ": broker %s confirmed %" PRIu64
                            " of %" PRIu64 " messages within the peer timeout", t->rank, step, t->c.where,
                            t->c.acked, t->c.published);
        else if ((p = pl_amqp_pump(&t->c, deadline, 0, err)) < 0)
            rc = p;
    }
    if (!rc)
        rc = check_returned(t, err);
    if (rc) {
        t->failed = 1;
        return rc;
    }
    for (int ty = 0; ty < PL_WIRE_TYPE_COUNT_; ty++)
        if ((types & (1u << ty)) && step > t->done_step[ty])
            t->done_step[ty] = step;
    purge_later(t);
    return PL_OK;
}

/* --- barrier and broadcast --- */

static int barrier_run(void *impl, uint64_t step, pl_xfer_stats *st, pl_err *err)
{
    amqp_tr *t = impl;
    int rc = begin(t, st, "barrier", step, err);
    if (rc)
        return rc;
    pl_wire_dedup *dd[PL_WIRE_TYPE_COUNT_] = {0};
    rc = pl_wire_dedup_create((uint32_t)t->size, 1, &dd[PL_WIRE_BARRIER], err);
    pl_wire_header h = {.type = PL_WIRE_BARRIER, .step = step, .chunk_count = 1};
    if (!rc && t->size > 1)
        rc = send_msg(t, &h, 0, -1, err);
    int left = t->size - 1;
    for (int r = 0; r < t->size; r++)
        t->need[r] = r != t->rank;
    while (!rc && left > 0) {
        pl_amqp_msg *m;
        rc = next_msg(t, 1u << PL_WIRE_BARRIER, step, dd, &m, &h, err);
        if (!rc) {
            t->need[h.sender] = 0;
            left--;
            pl_amqp_msg_free(m);
        }
    }
    pl_wire_dedup_destroy(dd[PL_WIRE_BARRIER]);
    return end(t, rc, 1u << PL_WIRE_BARRIER, step, err);
}

static int bcast_send(amqp_tr *t, const uint8_t *buf, size_t len, uint32_t k, uint64_t step,
                      pl_err *err)
{
    int rc = PL_OK;
    for (uint32_t i = 0; !rc && i < k; i++) {
        size_t off = (size_t)i * t->u.chunk, cnt = len - off < t->u.chunk ? len - off : t->u.chunk;
        if (cnt)
            memcpy(t->sendbuf + HDR, buf + off, cnt);
        pl_wire_header h = {.type = PL_WIRE_MODEL, .step = step, .chunk_index = i, .chunk_count = k,
                            .elem_offset = off, .elem_count = cnt};
        rc = send_msg(t, &h, cnt, -1, err);
    }
    return rc;
}

static int bcast_recv(amqp_tr *t, uint8_t *buf, size_t len, int root, uint32_t k, uint64_t step,
                      pl_err *err)
{
    pl_wire_dedup *dd[PL_WIRE_TYPE_COUNT_] = {0};
    int rc = pl_wire_dedup_create((uint32_t)t->size, k, &dd[PL_WIRE_MODEL], err);
    t->need[root] = k;
    while (!rc && t->need[root]) {
        pl_amqp_msg *m;
        pl_wire_header h;
        rc = next_msg(t, 1u << PL_WIRE_MODEL, step, dd, &m, &h, err);
        if (rc)
            break;
        size_t off = (size_t)h.chunk_index * t->u.chunk;
        size_t cnt = len - off < t->u.chunk ? len - off : t->u.chunk;
        if (h.sender != (uint32_t)root || h.chunk_count != k || h.elem_offset != off || h.elem_count != cnt)
            rc = pl_err_set(err, PL_ERR_FORMAT, "rank %d, broadcast step %" PRIu64 ": rank %u sent "
                            "piece %u/%u at byte %" PRIu64 " (+%" PRIu64 "), expected a piece of %zu "
                            "bytes in %u from root %d (same length and chunk= on every peer?)", t->rank,
                            step, h.sender, h.chunk_index, h.chunk_count, h.elem_offset, h.elem_count,
                            len, k, root);
        else {
            memcpy(buf + off, m->body + HDR, cnt);
            t->need[root]--;
        }
        pl_amqp_msg_free(m);
    }
    pl_wire_dedup_destroy(dd[PL_WIRE_MODEL]);
    return rc;
}

static int broadcast_run(void *impl, void *buf, size_t len, int root, uint64_t step,
                         pl_xfer_stats *st, pl_err *err)
{
    amqp_tr *t = impl;
    int rc = begin(t, st, "broadcast", step, err);
    if (rc)
        return rc;
    uint32_t k = len ? (uint32_t)((len + t->u.chunk - 1) / t->u.chunk) : 1;
    if (t->size > 1)
        rc = root == t->rank ? bcast_send(t, buf, len, k, step, err)
                             : bcast_recv(t, buf, len, root, k, step, err);
    return end(t, rc, 1u << PL_WIRE_MODEL, step, err);
}

/* --- all-reduce --- */

static void free_plan(const amqp_tr *t, ar_plan *p)
{
    if (p->slot)
        for (size_t i = 0; i < (size_t)p->k * (size_t)t->size; i++)
            pl_amqp_msg_free(p->slot[i]);
    free(p->slot);
    free(p->poff);
    free(p->pcnt);
    free(p->own_off);
    free(p->powner);
    free(p->own);
    free(p->acc);
    pl_codec_destroy(p->enc_grad);
    pl_codec_destroy(p->enc_red);
    pl_wire_dedup_destroy(p->dd_grad);
    pl_wire_dedup_destroy(p->dd_red);
    pl_codec_cfg codec = p->codec;
    memset(p, 0, sizeof *p);
    p->codec = codec;
}

/* Largest payload of a piece of cnt elements: its encoded contribution, or
 * (top-k, scatter) its sum, sent raw or as a sparse topk payload of at most
 * N*k nonzeros, whichever is shorter. */
static size_t piece_bytes(const amqp_tr *t, const ar_plan *p, size_t cnt)
{
    size_t b = pl_codec_max_bytes(&p->codec, cnt);
    if (p->codec.id != PL_CODEC_TOPK || t->u.pattern == PL_AMQP_FANOUT)
        return b;
    size_t nz = pl_codec_topk_k(&p->codec, cnt) * (size_t)t->size;
    size_t sum = PL_CODEC_HEADER_SIZE + 4 * cnt;
    if (nz < cnt / 2)
        sum = PL_CODEC_HEADER_SIZE + 8 * nz;
    return sum > b ? sum : b;
}

/* Largest element count whose payloads fit in one message. */
static size_t piece_elems(const amqp_tr *t, const ar_plan *p, size_t n)
{
    size_t lo = 1, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (piece_bytes(t, p, mid) <= t->u.chunk)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Cut [lo, hi) into pieces of at most p->max_elems for `owner` (count only
 * when p->poff is NULL). */
static void cut(ar_plan *p, size_t lo, size_t hi, int owner, uint32_t *k)
{
    for (size_t off = lo; off < hi; off += p->max_elems) {
        if (p->poff) {
            p->poff[*k] = off;
            p->pcnt[*k] = hi - off < p->max_elems ? hi - off : p->max_elems;
            p->powner[*k] = owner;
        }
        (*k)++;
    }
}

static void cut_all(const amqp_tr *t, ar_plan *p, size_t n, uint32_t *k)
{
    *k = 0;
    if (t->u.pattern == PL_AMQP_FANOUT)
        cut(p, 0, n, -1, k);
    else
        for (int r = 0; r < t->size; r++)
            cut(p, n * (size_t)r / (size_t)t->size, n * (size_t)(r + 1) / (size_t)t->size, r, k);
}

/* Codecs and dedup maps of a plan whose pieces are cut. */
static int plan_state(amqp_tr *t, ar_plan *p, size_t n, pl_err *err)
{
    uint32_t k = p->k;
    for (uint32_t i = 0; i < k; i++)
        p->own_off[i + 1] = p->own_off[i] + pl_codec_max_bytes(&p->codec, p->pcnt[i]);
    int rc = PL_OK;
    if (lossy(p) && !(p->own = malloc(p->own_off[k])))
        rc = pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory (%zu bytes of encoded pieces)", p->own_off[k]);
    uint64_t seed = t->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(t->rank + 1));
    if (!rc && lossy(p))
        rc = pl_codec_create(&p->codec, n, seed, &p->enc_grad, err);
    if (!rc && lossy(p) && p->codec.id != PL_CODEC_TOPK) /* top-k sums go exactly */
        rc = pl_codec_create(&p->codec, n, seed ^ 0x5bd1e995u, &p->enc_red, err);
    if (!rc)
        rc = pl_wire_dedup_create((uint32_t)t->size, k, &p->dd_grad, err);
    if (!rc)
        rc = pl_wire_dedup_create((uint32_t)t->size, k, &p->dd_red, err);
    return rc;
}

static int make_plan(amqp_tr *t, ar_plan *p, size_t n, pl_err *err)
{
    if (p->n == n)
        return PL_OK;
    free_plan(t, p);
    if (piece_bytes(t, p, 1) > t->u.chunk)
        return pl_err_set(err, PL_ERR_ARG, "amqp: chunk=%zu bytes cannot hold one encoded element",
                          t->u.chunk);
    p->max_elems = piece_elems(t, p, n);
    uint32_t k;
    cut_all(t, p, n, &k);
    p->poff = calloc(k, sizeof *p->poff);
    p->pcnt = calloc(k, sizeof *p->pcnt);
    p->own_off = calloc(k + 1, sizeof *p->own_off);
    p->powner = calloc(k, sizeof *p->powner);
    p->slot = calloc((size_t)k * (size_t)t->size, sizeof *p->slot);
    p->acc = malloc(p->max_elems * sizeof *p->acc);
    if (!p->poff || !p->pcnt || !p->own_off || !p->powner || !p->slot || !p->acc) {
        free_plan(t, p);
        return pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory planning an all-reduce of %zu floats", n);
    }
    cut_all(t, p, n, &p->k);
    int rc = plan_state(t, p, n, err);
    if (rc) {
        free_plan(t, p);
        return rc;
    }
    p->n = n;
    return PL_OK;
}

/* Encode piece i of x into sendbuf + HDR through `enc` (lossy codecs only;
 * raw float32 pieces go through send_floats and reduce_raw, in plain loops:
 * with several peers per core, idle OpenMP workers spinning after every
 * small parallel region of the codec functions starve the broker); GRAD
 * pieces are kept as our own contribution. */
static int encode_piece(amqp_tr *t, pl_codec *enc, const float *x, uint32_t i, size_t *len, pl_err *err)
{
    ar_plan *p = t->p;
    uint8_t *out = t->sendbuf + HDR;
    int rc = pl_codec_encode(enc, x, p->pcnt[i], p->poff[i], out, t->u.chunk, len, err);
    if (!rc && enc == p->enc_grad)
        memcpy(p->own + p->own_off[i], out, *len);
    return rc;
}

/* The cnt floats of a raw payload (message header already checked), or NULL
 * with err naming what was expected. */
static const float *raw_floats(const pl_amqp_msg *m, size_t cnt, pl_err *err)
{
    size_t len = m->len - HDR;
    uint8_t want[PL_CODEC_HEADER_SIZE];
    pl_codec_write_header(&none, cnt, want);
    if (len == PL_CODEC_HEADER_SIZE + cnt * sizeof(float) && !memcmp(m->body + HDR, want, sizeof want))
        return (const float *)(const void *)(m->body + HDR + PL_CODEC_HEADER_SIZE);
    pl_err_set(err, PL_ERR_FORMAT, "a %zu-byte payload, expected a float32 codec header for %zu elements "
               "and %zu bytes", len, cnt, PL_CODEC_HEADER_SIZE + cnt * sizeof(float));
    return NULL;
}

/* acc += (or =, for rank 0) rank r's decoded contribution to piece i
 * (lossy codecs; raw pieces: reduce_raw). */
static int add_contribution(amqp_tr *t, uint32_t i, int r, pl_err *err)
{
    ar_plan *p = t->p;
    size_t cnt = p->pcnt[i];
    pl_amqp_msg *m = r == t->rank ? NULL : p->slot[(size_t)i * (size_t)t->size + (size_t)r];
    const uint8_t *b = m ? m->body + HDR : p->own + p->own_off[i];
    size_t len = m ? m->len - HDR : p->own_off[i + 1] - p->own_off[i];
    return r == 0 ? pl_codec_decode(&p->codec, b, len, p->acc, cnt, err)
                  : pl_codec_decode_add(&p->codec, b, len, p->acc, cnt, err);
}

/* acc = decoded contributions of piece i added in rank order 0..N-1. */
static int reduce_piece(amqp_tr *t, uint32_t i, uint64_t step, pl_err *err)
{
    int rc = PL_OK;
    for (int r = 0; !rc && r < t->size; r++)
        if ((rc = add_contribution(t, i, r, err)))
            pl_err_wrap(err, rc, "rank %d, all-reduce step %" PRIu64 ": piece %u from rank %d", t->rank,
                        step, i, r);
    for (int r = 0; r < t->size; r++) {
        pl_amqp_msg_free(t->p->slot[(size_t)i * (size_t)t->size + (size_t)r]);
        t->p->slot[(size_t)i * (size_t)t->size + (size_t)r] = NULL;
    }
    return rc;
}

#define SUM_BLOCK 4096 /* floats summed per block (16 KiB: stays in L1) */

/* Raw float32 piece i: x = data + poff[i] becomes the contributions added in
 * rank order ((x0 + x1) + x2) + ... (as reduce_piece), in place block by
 * block (this rank's block of x is read before the block is written), with
 * no accumulator copy; each finished block is CRC'd while in L1 into *crc
 * (NULL: no CRC), giving the REDUCED payload's CRC without another pass. */
static int reduce_raw(amqp_tr *t, float *data, uint32_t i, uint64_t step, uint32_t *crc, pl_err *err)
{
    ar_plan *p = t->p;
    size_t cnt = p->pcnt[i], n = (size_t)t->size;
    float *x = data + p->poff[i];
    const float *src[t->size];
    int rc = PL_OK;
    for (int r = 0; !rc && r < t->size; r++) {
        const pl_amqp_msg *m = r == t->rank ? NULL : p->slot[(size_t)i * n + (size_t)r];
        src[r] = m ? raw_floats(m, cnt, err) : x;
        if (!src[r])
            rc = pl_err_wrap(err, PL_ERR_FORMAT, "rank %d, all-reduce step %" PRIu64 ": piece %u from rank %d",
                             t->rank, step, i, r);
    }
    for (size_t b = 0; !rc && b < cnt; b += SUM_BLOCK) {
        float blk[SUM_BLOCK];
        size_t m = cnt - b < SUM_BLOCK ? cnt - b : SUM_BLOCK;
        const float *x0 = src[0] + b, *x1 = src[t->size > 1] + b;
        if (t->size > 1)
            for (size_t j = 0; j < m; j++)
                blk[j] = x0[j] + x1[j];
        else
            memcpy(blk, x0, m * sizeof *blk);
        for (int r = 2; r < t->size; r++) {
            const float *z = src[r] + b;
            for (size_t j = 0; j < m; j++)
                blk[j] += z[j];
        }
        memcpy(x + b, blk, m * sizeof *blk);
        if (crc)
            *crc = pl_wire_crc32c(*crc, blk, m * sizeof *blk);
    }
    for (size_t r = 0; r < n; r++) {
        pl_amqp_msg_free(p->slot[(size_t)i * n + r]);
        p->slot[(size_t)i * n + r] = NULL;
    }
    return rc;
}

/* Piece i has every contribution: reduce it; scatter: publish the result. */
static int complete_piece(amqp_tr *t, float *data, uint32_t i, uint64_t step, pl_err *err)
{
    ar_plan *p = t->p;
    pl_wire_header h = {.type = PL_WIRE_REDUCED, .codec = (uint8_t)p->codec.id, .step = step,
                        .chunk_index = i, .chunk_count = p->k, .elem_offset = p->poff[i],
                        .elem_count = p->pcnt[i]};
    int publish = t->u.pattern != PL_AMQP_FANOUT && t->size > 1;
    if (!lossy(p)) {
        uint8_t ch[PL_CODEC_HEADER_SIZE];
        pl_codec_write_header(&p->codec, p->pcnt[i], ch);
        uint32_t crc = pl_wire_crc32c(0, ch, sizeof ch);
        int rc = reduce_raw(t, data, i, step, publish ? &crc : NULL, err);
        return rc || !publish ? rc : send_floats(t, &h, data + p->poff[i], p->pcnt[i], -1, &crc, err);
    }
    int rc = reduce_piece(t, i, step, err);
    float *x = data + p->poff[i];
    if (rc || !publish) {
        if (!rc)
            memcpy(x, p->acc, p->pcnt[i] * sizeof *x);
        return rc;
    }
    size_t len, cnt = p->pcnt[i];
    if (p->codec.id == PL_CODEC_TOPK) { /* the sum exactly: sparse or raw, the shorter */
        uint8_t *out = t->sendbuf + HDR;
        if (pl_codec_sparse_bytes(p->acc, cnt) < pl_codec_max_bytes(&none, cnt)) {
            rc = pl_codec_encode_sparse(p->acc, cnt, out, t->u.chunk, &len, err);
            if (!rc) /* hold exactly what the others decode */
                rc = pl_codec_decode(&sparse, out, len, x, cnt, err);
        } else {
            h.codec = PL_CODEC_NONE;
            len = pl_codec_max_bytes(&none, cnt);
            pl_codec_write_header(&none, cnt, out);
            memcpy(out + PL_CODEC_HEADER_SIZE, p->acc, cnt * sizeof *x);
            memcpy(x, p->acc, cnt * sizeof *x);
        }
    } else {
        rc = encode_piece(t, p->enc_red, p->acc, i, &len, err);
        if (!rc)
            rc = pl_codec_decode(&p->codec, t->sendbuf + HDR, len, x, cnt, err);
    }
    return rc ? rc : send_msg(t, &h, len, -1, err);
}

static int send_contributions(amqp_tr *t, float *data, uint64_t step, uint32_t *mine, pl_err *err)
{
    ar_plan *p = t->p;
    int rc = PL_OK;
    *mine = 0;
    for (uint32_t i = 0; !rc && i < p->k; i++) {
        int owner = p->powner[i];
        size_t len;
        if (owner == t->rank || owner < 0)
            (*mine)++;
        if (owner == t->rank && !lossy(p))
            continue;
        pl_wire_header h = {.type = PL_WIRE_GRAD, .codec = (uint8_t)p->codec.id, .step = step,
                            .chunk_index = i, .chunk_count = p->k, .elem_offset = p->poff[i],
                            .elem_count = p->pcnt[i]};
        if (!lossy(p)) { /* straight from data, no copy */
            rc = send_floats(t, &h, data + p->poff[i], p->pcnt[i], owner, NULL, err);
            continue;
        }
        rc = encode_piece(t, p->enc_grad, data + p->poff[i], i, &len, err);
        if (!rc && owner != t->rank)
            rc = send_msg(t, &h, len, owner, err);
    }
    return rc;
}

/* A checked message of a genuine peer that does not fit the plan. */
static int misfit(amqp_tr *t, const pl_wire_header *h, uint64_t step, pl_err *err)
{
    const ar_plan *p = t->p;
    uint32_t i = h->chunk_index;
    return pl_err_set(err, PL_ERR_FORMAT, "rank %d, all-reduce step %" PRIu64 ": rank %u sent %s piece %u/%u "
                      "(elements %" PRIu64 "+%" PRIu64 ", codec %s), expected piece %u of %u with codec %s "
                      "for %s (same length, codec, pattern, chunk= and exact/compressed call on every "
                      "peer?)", t->rank, step, h->sender, pl_wire_type_name(h->type), i, h->chunk_count,
                      h->elem_offset, h->elem_count, pl_codec_name(h->codec), i, p->k,
                      pl_codec_name(p->codec.id), i < p->k && p->powner[i] >= 0 ? "its owner" : "every peer");
}

/* A result piece from its owner: decode (or copy) it into data. */
static int take_result(amqp_tr *t, float *data, const pl_amqp_msg *m, uint32_t i, uint32_t s,
                       int raw_sum, uint64_t step, pl_err *err)
{
    ar_plan *p = t->p;
    int rc = PL_OK;
    if (lossy(p) && !raw_sum) {
        const pl_codec_cfg *want = p->codec.id == PL_CODEC_TOPK ? &sparse : &p->codec; /* any k */
        rc = pl_codec_decode(want, m->body + HDR, m->len - HDR, data + p->poff[i], p->pcnt[i], err);
    } else {
        const float *x = raw_floats(m, p->pcnt[i], err);
        if (x)
            memcpy(data + p->poff[i], x, p->pcnt[i] * sizeof *x);
        else
            rc = PL_ERR_FORMAT;
    }
    if (rc)
        pl_err_wrap(err, rc, "rank %d, all-reduce step %" PRIu64 ": result piece %u from rank %u", t->rank,
                    step, i, s);
    return rc;
}

static int accept_piece(amqp_tr *t, float *data, pl_amqp_msg *m, const pl_wire_header *h,
                        uint64_t step, uint32_t *left, pl_err *err)
{
    ar_plan *p = t->p;
    uint32_t i = h->chunk_index, s = h->sender;
    int raw_sum = h->type == PL_WIRE_REDUCED && p->codec.id == PL_CODEC_TOPK && h->codec == PL_CODEC_NONE;
    int fits = h->chunk_count == p->k && i < p->k && h->elem_offset == p->poff[i] &&
               h->elem_count == p->pcnt[i] && (h->codec == (uint8_t)p->codec.id || raw_sum);
    int owner = fits ? p->powner[i] : -2;
    if (h->type == PL_WIRE_GRAD && fits && (owner == t->rank || owner == -1)) {
        p->slot[(size_t)i * (size_t)t->size + s] = m;
        t->need[s]--;
        for (int r = 0; r < t->size; r++)
            if (r != t->rank && !p->slot[(size_t)i * (size_t)t->size + (size_t)r])
                return PL_OK;
        (*left)--;
        return complete_piece(t, data, i, step, err);
    }
    int rc;
    if (h->type == PL_WIRE_REDUCED && fits && owner == (int)s) {
        rc = take_result(t, data, m, i, s, raw_sum, step, err);
        t->need[s]--;
    } else {
        rc = misfit(t, h, step, err);
    }
    pl_amqp_msg_free(m);
    return rc;
}

static int reduce_all(amqp_tr *t, float *data, uint64_t step, pl_err *err)
{
    ar_plan *p = t->p;
    uint32_t mine;
    pl_wire_dedup_reset(p->dd_grad);
    pl_wire_dedup_reset(p->dd_red);
    int rc = send_contributions(t, data, step, &mine, err);
    for (int r = 0; r < t->size; r++) {
        uint32_t theirs = 0;
        for (uint32_t i = 0; t->u.pattern == PL_AMQP_SCATTER && i < p->k; i++)
            theirs += p->powner[i] == r;
        t->need[r] = r == t->rank ? 0 : mine + theirs;
    }
    pl_wire_dedup *dd[PL_WIRE_TYPE_COUNT_] = {0};
    dd[PL_WIRE_GRAD] = p->dd_grad;
    dd[PL_WIRE_REDUCED] = p->dd_red;
    unsigned mask = (1u << PL_WIRE_GRAD) | (1u << PL_WIRE_REDUCED);
    uint32_t left = mine;
    for (uint32_t i = 0; !rc && t->size == 1 && i < p->k; i++)
        rc = complete_piece(t, data, i, step, err);
    for (;;) {
        int waiting = 0;
        for (int r = 0; r < t->size; r++)
            waiting |= t->need[r] != 0;
        if (rc || !waiting)
            break;
        pl_amqp_msg *m;
        pl_wire_header h;
        rc = next_msg(t, mask, step, dd, &m, &h, err);
        if (!rc)
            rc = accept_piece(t, data, m, &h, step, &left, err);
    }
    return rc;
}

static int allreduce_run(void *impl, float *data, size_t n, uint64_t step, int exact,
                         pl_xfer_stats *st, pl_err *err)
{
    amqp_tr *t = impl;
    int rc = begin(t, st, "all-reduce", step, err);
    if (rc)
        return rc;
    t->p = &t->plans[exact ? 1 : 0];
    if (n > PL_CODEC_MAX_N)
        rc = pl_err_set(err, PL_ERR_ARG, "amqp all-reduce: %zu floats (at most %zu)", n, PL_CODEC_MAX_N);
    if (!rc && n > 0)
        rc = make_plan(t, t->p, n, err);
    if (!rc && n > 0)
        rc = reduce_all(t, data, step, err);
    if (rc && t->p->slot)
        for (size_t i = 0; i < (size_t)t->p->k * (size_t)t->size; i++) {
            pl_amqp_msg_free(t->p->slot[i]);
            t->p->slot[i] = NULL;
        }
    return end(t, rc, (1u << PL_WIRE_GRAD) | (1u << PL_WIRE_REDUCED), step, err);
}

/* --- the collectives: stats pointers live only for the call --- */

static int amqp_allreduce(void *impl, float *data, size_t n, uint64_t step, int exact,
                          pl_xfer_stats *st, pl_err *err)
{
    amqp_tr *t = impl;
    int rc = allreduce_run(t, data, n, step, exact, st, err);
    t->c.st = &t->c.idle_st; /* the caller's stats end with the call */
    return rc;
}

static int amqp_broadcast(void *impl, void *buf, size_t len, int root, uint64_t step,
                          pl_xfer_stats *st, pl_err *err)
{
    amqp_tr *t = impl;
    int rc = broadcast_run(t, buf, len, root, step, st, err);
    t->c.st = &t->c.idle_st; /* the caller's stats end with the call */
    return rc;
}

static int amqp_barrier(void *impl, uint64_t step, pl_xfer_stats *st, pl_err *err)
{
    amqp_tr *t = impl;
    int rc = barrier_run(t, step, st, err);
    t->c.st = &t->c.idle_st; /* the caller's stats end with the call */
    return rc;
}

/* --- open / close --- */

static void amqp_close(void *impl)
{
    amqp_tr *t = impl;
    if (!t)
        return;
    for (pl_amqp_msg *m = t->later, *n; m; m = n) {
        n = m->next;
        pl_amqp_msg_free(m);
    }
    free_plan(t, &t->plans[0]);
    free_plan(t, &t->plans[1]);
    pl_amqp_conn_close(&t->c);
    free(t->heard);
    free(t->need);
    free(t->returned);
    free(t->sendbuf);
    free(t);
}

static int send_hello(amqp_tr *t, int r, uint64_t *tag, pl_err *err)
{
    int len = snprintf((char *)t->sendbuf + HDR, 64, "size=%d", t->size);
    pl_wire_header h = {.type = PL_WIRE_HELLO, .chunk_count = 1};
    t->returned[r] = 0;
    int rc = send_msg(t, &h, (size_t)len, r, err);
    *tag = t->c.published;
    return rc;
}

static int take_hello(amqp_tr *t, pl_amqp_msg *m, const pl_wire_header *h, unsigned char *heard,
                      pl_err *err)
{
    char want[32];
    int wl = snprintf(want, sizeof want, "size=%d", t->size);
    int ok = m->len - HDR == (size_t)wl && !memcmp(m->body + HDR, want, (size_t)wl);
    int rc = ok ? PL_OK
                : pl_err_set(err, PL_ERR_ARG, "rank %d: rank %u of run '%s' announced '%.*s', expected "
                             "'%s' (peers started with different --size?)", t->rank, h->sender, t->run,
                             (int)(m->len - HDR < 40 ? m->len - HDR : 40), (const char *)m->body + HDR, want);
    heard[h->sender] = 1;
    pl_amqp_msg_free(m);
    return rc;
}

/* Every peer announces itself to every other (mandatory publish: returned
 * while the receiver's queue does not exist yet, then resent) and waits
 * for all announcements, so no later message can be lost. */
static int handshake(amqp_tr *t, int connect_ms, pl_err *err)
{
    size_t sz = (size_t)t->size;
    uint64_t *tag = calloc(sz, sizeof *tag);
    unsigned char *routed = calloc(sz, 1), *heard = calloc(sz, 1);
    pl_wire_dedup *dd[PL_WIRE_TYPE_COUNT_] = {0};
    int rc = !tag || !routed || !heard ? pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory") : PL_OK;
    double start = pl_tr_now(), deadline = start + connect_ms * 1e-3, resend = start;
    routed[t->rank] = heard[t->rank] = 1;
    for (int done = 0; !rc && !done;) {
        double now = pl_tr_now();
        for (int r = 0; !rc && r < t->size && now >= resend; r++)
            if (!routed[r] && (!tag[r] || t->returned[r]))
                rc = send_hello(t, r, &tag[r], err);
        if (now >= resend)
            resend = now + 0.1;
        t->c.returned_rank = -1;
        if (!rc)
            rc = pl_amqp_pump(&t->c, resend < deadline ? resend : deadline, 1, err);
        rc = rc < 0 ? rc : PL_OK;
        pl_amqp_msg *m;
        pl_wire_header h;
        while (!rc && (m = pl_amqp_pop(&t->c))) {
            disposition d = classify(t, m, 1u << PL_WIRE_HELLO, 0, dd, &h);
            if (d == TAKE)
                rc = take_hello(t, m, &h, heard, err);
            else if (d == KEEP && h.type != PL_WIRE_HELLO)
                keep_later(t, m);
            else
                pl_amqp_msg_free(m);
        }
        done = 1;
        for (int r = 0; r < t->size; r++) {
            if (!routed[r] && tag[r] && t->c.acked >= tag[r] && !t->returned[r])
                routed[r] = 1;
            done &= routed[r] && heard[r];
        }
        if (!rc && !done && pl_tr_now() >= deadline) {
            char names[256] = "";
            size_t len = 0;
            for (int r = 0; r < t->size && len < sizeof names - 16; r++)
                if (!routed[r] || !heard[r])
                    len += (size_t)snprintf(names + len, sizeof names - len, "%s%d", len ? ", " : "", r);
            rc = pl_err_set(err, PL_ERR_IO, "rank %d: run '%s' on %s: rank%s %s did not join within the "
                            "connect timeout (%.1f s)", t->rank, t->run, t->c.where,
                            strchr(names, ',') ? "s" : "", names, connect_ms * 1e-3);
        }
    }
    t->c.returned_rank = -1;
    t->c.nacked = 0;
    free(tag);
    free(routed);
    free(heard);
    return rc;
}

static int amqp_open_common(const pl_transport_opts *o, const char *addr, int tls, void **impl,
                            pl_err *err)
{
    amqp_tr *t = calloc(1, sizeof *t);
    if (!t)
        return pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory");
    t->c.st = &t->scratch;
    t->rank = o->rank;
    t->size = o->size;
    t->timeout_ms = o->peer_timeout_ms;
    t->log = o->log;
    t->log_ctx = o->log_ctx;
    t->seed = o->seed;
    snprintf(t->run, sizeof t->run, "%s", o->run ? o->run : "peerless");
    t->run_id = pl_wire_run_id(t->run);
    int rc = pl_amqp_url_parse(addr, tls, &t->u, err);
    if (!rc && o->size > MAX_PEERS)
        rc = pl_err_set(err, PL_ERR_ARG, "amqp: %d peers (at most %d)", o->size, MAX_PEERS);
    if (!rc)
        rc = pl_codec_parse(o->codec && *o->codec ? o->codec : "none", &t->codec, err);
    t->plans[0].codec = t->codec;
    t->plans[1].codec = (pl_codec_cfg){.id = PL_CODEC_NONE};
    t->heard = calloc((size_t)t->size, sizeof *t->heard);
    t->need = calloc((size_t)t->size, sizeof *t->need);
    t->returned = calloc((size_t)t->size, 1);
    t->sendbuf = malloc(HDR + t->u.chunk + 64);
    if (!rc && (!t->heard || !t->need || !t->returned || !t->sendbuf))
        rc = pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory");
    int connect_ms = t->u.connect_timeout_s ? t->u.connect_timeout_s * 1000 : o->connect_timeout_ms;
    if (!rc)
        rc = pl_amqp_conn_open(&t->c, &t->u, t->run, t->rank, t->timeout_ms * 1e-3,
                               pl_tr_now() + connect_ms * 1e-3, err);
    t->c.st = &t->scratch;
    t->c.returned = t->returned;
    t->c.nranks = t->size;
    t->joining = 1;
    if (!rc)
        rc = handshake(t, connect_ms, err);
    t->joining = 0;
    if (rc) {
        amqp_close(t);
        return rc;
    }
    *impl = t;
    return PL_OK;
}

static int amqp_open(const pl_transport_opts *o, const char *addr, void **impl, pl_err *err)
{
    return amqp_open_common(o, addr, 0, impl, err);
}

static int amqps_open(const pl_transport_opts *o, const char *addr, void **impl, pl_err *err)
{
    return amqp_open_common(o, addr, 1, impl, err);
}

const pl_transport_vt pl_transport_amqp_vt = {"amqp", amqp_open, amqp_allreduce, amqp_broadcast,
                                              amqp_barrier, amqp_close};
const pl_transport_vt pl_transport_amqps_vt = {"amqps", amqps_open, amqp_allreduce, amqp_broadcast,
                                               amqp_barrier, amqp_close};
