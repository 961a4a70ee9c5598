/* tcp_coll.c — collectives of the tcp:// transport over its socket mesh.
 *
 * All-reduce (direct reduce-scatter + all-gather): the vector is split into
 * N chunks, chunk c = [c*n/N, (c+1)*n/N) owned by rank c, and each chunk into
 * segments of seg_bytes. Every peer sends its segments of chunk c to c (RS
 * messages); the owner adds the N contributions of a segment in rank order
 * 0..N-1 as soon as all arrived and sends the result to every peer (AG
 * messages). Each peer thus sends and receives 2(N-1)/N of the vector.
 * Sends and receives progress together in one poll() loop over non-blocking
 * sockets, so no pattern of large messages can deadlock, and reduction of a
 * segment overlaps the transfer of the next ones. Received RS segments wait
 * in a window of TCP_WINDOW slots per peer; a peer whose next segment has no
 * free slot is not read until the reduction catches up (TCP flow control
 * then holds the sender).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "transport/tcp_impl.h"

enum { OP_ALLREDUCE, OP_BROADCAST, OP_BARRIER };

typedef struct op {
    tcp_state *s;
    int kind;
    uint64_t step;
    float *data;          /* all-reduce vector */
    size_t n;
    uint8_t *buf;         /* broadcast buffer */
    size_t len;
    int root;
    size_t seg;           /* elements (floats; bytes for broadcast) per segment */
    size_t slot_bytes;    /* encoded size bound of one segment */
    uint32_t my_nseg, reduced;
    pl_xfer_stats *st;
    pl_err *err;
    uint8_t sink[16384]; /* discarded payloads land here, unread */
} op;

static const char *const op_names[] = {"all-reduce", "broadcast", "barrier"};

static size_t chunk_off(const op *o, int c)
{
    return (size_t)((uint64_t)o->n * (uint64_t)c / (uint64_t)o->s->size);
}
static size_t chunk_len(const op *o, int c) { return chunk_off(o, c + 1) - chunk_off(o, c); }
static uint32_t nseg_of(size_t len, size_t seg) { return (uint32_t)((len + seg - 1) / seg); }

static int fail(op *o, int j, int status, const char *fmt, const char *what)
{
    tcp_peer *p = &o->s->peers[j];
    return pl_err_set(o->err, status, "rank %d, %s step %" PRIu64 ": peer %d (%s) %s%s", o->s->rank,
                      op_names[o->kind], o->step, j, p->addr, fmt, what ? what : "");
}

/* --- send side --- */

static int push(tcp_peer *p, const tcp_tx *m)
{
    if (p->qn == p->qcap) {
        if (p->qhead > 0) {
            memmove(p->q, p->q + p->qhead, (p->qn - p->qhead) * sizeof *p->q);
            p->qn -= p->qhead;
            p->qhead = 0;
        }
        if (p->qn == p->qcap) {
            size_t cap = p->qcap ? 2 * p->qcap : 64;
            tcp_tx *q = realloc(p->q, cap * sizeof *q);
            if (!q)
                return PL_ERR_NOMEM;
            p->q = q;
            p->qcap = cap;
        }
    }
    p->q[p->qn++] = *m;
    return PL_OK;
}

static int queue_msg(op *o, int j, uint8_t type, uint32_t chunk, uint32_t seg, uint64_t off,
                     uint32_t count, const void *src)
{
    tcp_tx m = {.h = {.type = type, .run_id = o->s->run_id, .step = o->step,
                      .sender = (uint32_t)o->s->rank, .chunk = chunk, .seg = seg, .offset = off,
                      .count = count},
                .src = src};
    if (push(&o->s->peers[j], &m))
        return pl_err_set(o->err, PL_ERR_NOMEM, "%s: out of memory queueing messages",
                          op_names[o->kind]);
    return PL_OK;
}

/* Seed of the codec for one (step, sender, chunk, segment): deterministic. */
static uint64_t seg_seed(const op *o, uint32_t chunk, uint32_t seg)
{
    uint64_t x = o->s->seed ^ (o->step * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)o->s->rank << 48) ^
                 ((uint64_t)chunk << 32) ^ seg;
    x ^= x >> 31;
    return x * 0xbf58476d1ce4e5b9ull;
}

/* Finalise the head message: encode its payload if needed, CRC, header. */
static void prepare(op *o, tcp_peer *p, tcp_tx *m)
{
    const pl_tr_codec *c = o->s->codec;
    if (m->h.type == TCP_MSG_RS && c->id != 0) {
        m->plen = c->encode(m->src, m->h.count, p->enc, seg_seed(o, m->h.chunk, m->h.seg));
        m->payload = p->enc;
        m->h.codec = c->id;
        m->h.payload_crc = tcp_crc32c(0, m->payload, m->plen);
    } else if (m->h.type == TCP_MSG_AG) {
        m->plen = m->h.payload_len; /* header pre-computed by the owner, shared */
        m->payload = m->src;
    } else {
        m->payload = m->src;
        m->plen = m->h.type == TCP_MSG_BARRIER ? 0 : (size_t)m->h.count * (o->kind == OP_BROADCAST ? 1 : 4);
        m->h.codec = 0;
        m->h.payload_crc = tcp_crc32c(0, m->payload, m->plen);
    }
    m->h.payload_len = (uint32_t)m->plen;
    tcp_hdr_encode(&m->h, m->hdr);
    m->ready = 1;
}

static int do_send(op *o, int j)
{
    tcp_peer *p = &o->s->peers[j];
    while (p->qhead < p->qn) {
        tcp_tx *m = &p->q[p->qhead];
        if (!m->ready)
            prepare(o, p, m);
        struct iovec iov[2];
        int k = 0;
        if (m->sent < TCP_HDR_BYTES)
            iov[k++] = (struct iovec){m->hdr + m->sent, TCP_HDR_BYTES - m->sent};
        size_t pdone = m->sent > TCP_HDR_BYTES ? m->sent - TCP_HDR_BYTES : 0;
        if (m->plen > pdone)
            iov[k++] = (struct iovec){(void *)(m->payload + pdone), m->plen - pdone};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        double t0 = pl_tr_now();
        ssize_t r = sendmsg(p->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        o->st->send_s += pl_tr_now() - t0;
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return PL_OK;
            return fail(o, j, PL_ERR_IO, "connection failed while sending: ", strerror(errno));
        }
        o->st->bytes_sent += (uint64_t)r;
        p->last = pl_tr_now();
        m->sent += (size_t)r;
        if (m->sent < TCP_HDR_BYTES + m->plen)
            return PL_OK;
        o->st->msgs_sent++;
        p->qhead++;
    }
    p->qhead = p->qn = 0;
    return PL_OK;
}

/* --- all-reduce: reduction of my chunk --- */

static uint8_t *slot(const op *o, int j, uint32_t seg)
{
    return o->s->slots + ((size_t)j * TCP_WINDOW + seg % TCP_WINDOW) * o->slot_bytes;
}

/* Sum segment `sg` of my chunk in rank order 0..N-1 into data, then queue
 * it (encoded once, one shared header) to every peer. */
static int reduce_segment(op *o, uint32_t sg)
{
    tcp_state *s = o->s;
    size_t off = chunk_off(o, s->rank) + (size_t)sg * o->seg;
    size_t cnt = chunk_len(o, s->rank) - (size_t)sg * o->seg;
    cnt = cnt < o->seg ? cnt : o->seg;
    float *acc = s->acc;
    for (int r = 0; r < s->size; r++) {
        const float *src = o->data + off;
        if (r != s->rank && s->codec->id == 0) {
            src = (const float *)slot(o, r, sg);
        } else if (r != s->rank) {
            int rc = s->codec->decode(slot(o, r, sg), s->codec->max_bytes(cnt), s->tmp, cnt, o->err);
            if (rc)
                return fail(o, r, rc, "sent an undecodable contribution: ", o->err->msg);
            src = s->tmp;
        }
        if (r == 0)
            memcpy(acc, src, cnt * sizeof *acc);
        else
            for (size_t i = 0; i < cnt; i++)
                acc[i] += src[i];
    }
    tcp_hdr h = {.type = TCP_MSG_AG, .run_id = s->run_id, .step = o->step,
                 .sender = (uint32_t)s->rank, .chunk = (uint32_t)s->rank, .seg = sg,
                 .offset = off, .count = (uint32_t)cnt};
    const void *payload = o->data + off;
    size_t plen = cnt * 4;
    if (s->codec->id != 0) {
        uint8_t *enc = s->agenc + (size_t)sg * o->slot_bytes;
        plen = s->codec->encode(acc, cnt, enc, seg_seed(o, h.chunk, sg));
        s->codec->decode(enc, plen, o->data + off, cnt, NULL); /* hold what others decode */
        payload = enc;
        h.codec = s->codec->id;
    } else {
        memcpy(o->data + off, acc, cnt * sizeof *acc);
    }
    h.payload_len = (uint32_t)plen;
    h.payload_crc = tcp_crc32c(0, payload, plen);
    for (int j = 0; j < s->size; j++) {
        if (j == s->rank)
            continue;
        tcp_tx m = {.h = h, .src = payload};
        if (push(&s->peers[j], &m))
            return pl_err_set(o->err, PL_ERR_NOMEM, "all-reduce: out of memory queueing messages");
    }
    return PL_OK;
}

static int reduce_ready(op *o)
{
    while (o->reduced < o->my_nseg && o->s->arrived[o->reduced] == (uint32_t)o->s->size - 1) {
        int rc = reduce_segment(o, o->reduced);
        if (rc)
            return rc;
        o->reduced++;
    }
    return PL_OK;
}

/* --- receive side --- */

static int expecting(const tcp_peer *p)
{
    return p->exp_rs || p->exp_ag || p->exp_bc || p->exp_bar || p->have_hdr;
}

/* Check an all-reduce header against the geometry; set the destination. */
static int accept_ar(op *o, int j, tcp_peer *p)
{
    const tcp_hdr *h = &p->h;
    tcp_state *s = o->s;
    int rs = h->type == TCP_MSG_RS;
    int owner = rs ? s->rank : j;
    uint32_t want_seg = rs ? p->next_rs : p->next_ag;
    if ((!rs && h->type != TCP_MSG_AG) || (rs ? !p->exp_rs : !p->exp_ag))
        return fail(o, j, PL_ERR_FORMAT, "sent an unexpected message: ", tcp_msg_name(h->type));
    size_t off = chunk_off(o, owner) + (size_t)want_seg * o->seg;
    size_t cnt = chunk_len(o, owner) - (size_t)want_seg * o->seg;
    cnt = cnt < o->seg ? cnt : o->seg;
    if (h->chunk != (uint32_t)owner || h->seg != want_seg || h->offset != off || h->count != cnt ||
        h->codec != s->codec->id || h->payload_len != s->codec->max_bytes(cnt))
        return fail(o, j, PL_ERR_FORMAT,
                    "sent a segment that does not fit the vector (wrong n, chunking or codec): ",
                    tcp_msg_name(h->type));
    if (rs) {
        p->blocked = want_seg >= o->reduced + TCP_WINDOW;
        p->dst = p->blocked ? NULL : slot(o, j, want_seg);
    } else {
        p->dst = s->codec->id ? p->rxenc : (uint8_t *)(o->data + off);
    }
    return PL_OK;
}

static int accept_other(op *o, int j, tcp_peer *p)
{
    const tcp_hdr *h = &p->h;
    if (h->type == TCP_MSG_BARRIER && o->kind == OP_BARRIER && p->exp_bar && h->payload_len == 0)
        return PL_OK;
    if (h->type == TCP_MSG_BCAST && o->kind == OP_BROADCAST && p->exp_bc && j == o->root) {
        size_t off = (size_t)p->next_bc * o->seg;
        size_t cnt = o->len - off < o->seg ? o->len - off : o->seg;
        if (h->seg != p->next_bc || h->offset != off || h->count != cnt || h->payload_len != cnt)
            return fail(o, j, PL_ERR_FORMAT, "sent a broadcast segment that does not fit ",
                        "(different length?)");
        p->dst = o->buf + off;
        return PL_OK;
    }
    return fail(o, j, PL_ERR_FORMAT, "sent an unexpected message: ", tcp_msg_name(h->type));
}

static int on_header(op *o, int j, tcp_peer *p)
{
    pl_err e = {0};
    if (tcp_hdr_decode(p->hbuf, &p->h, &e))
        return fail(o, j, PL_ERR_FORMAT, "sent garbage: ", e.msg);
    p->have_hdr = 1;
    p->pgot = 0;
    p->draining = 0;
    p->dst = NULL;
    const tcp_hdr *h = &p->h;
    if (h->run_id != o->s->run_id || h->step < o->step) {
        pl_tr_log(o->s->log, o->s->log_ctx,
                  "rank %d: discarded %s from peer %d (%s): %s (step %" PRIu64 ", current %" PRIu64 ")",
                  o->s->rank, tcp_msg_name(h->type), j, p->addr,
                  h->run_id != o->s->run_id ? "another run" : "older step", h->step, o->step);
        p->draining = 1;
        return PL_OK;
    }
    if (h->sender != (uint32_t)j || h->step > o->step)
        return fail(o, j, PL_ERR_FORMAT, "is out of step: ", h->sender != (uint32_t)j
                        ? "message claims another sender" : "message of a later step");
    return o->kind == OP_ALLREDUCE && h->type != TCP_MSG_BARRIER && h->type != TCP_MSG_BCAST
               ? accept_ar(o, j, p)
               : accept_other(o, j, p);
}

/* A complete payload arrived in p->dst: check its CRC, then apply it. */
static int on_payload(op *o, int j, tcp_peer *p)
{
    const tcp_hdr *h = &p->h;
    p->have_hdr = 0;
    p->hgot = 0;
    if (p->draining)
        return PL_OK;
    o->st->msgs_recv++;
    if (h->payload_len && tcp_crc32c(0, p->dst, h->payload_len) != h->payload_crc)
        return fail(o, j, PL_ERR_FORMAT, "sent a corrupted payload (CRC mismatch), rejected: ",
                    tcp_msg_name(h->type));
    if (h->type == TCP_MSG_RS) {
        p->exp_rs--;
        p->next_rs++;
        o->s->arrived[h->seg]++;
        return reduce_ready(o);
    }
    if (h->type == TCP_MSG_AG) {
        p->exp_ag--;
        p->next_ag++;
        if (o->s->codec->id) {
            int rc = o->s->codec->decode(p->dst, h->payload_len, o->data + h->offset, h->count, o->err);
            if (rc)
                return fail(o, j, rc, "sent an undecodable result: ", o->err->msg);
        }
        return PL_OK;
    }
    if (h->type == TCP_MSG_BCAST) {
        p->exp_bc--;
        p->next_bc++;
    } else {
        p->exp_bar--;
    }
    return PL_OK;
}

/* Read what is available from peer j: headers and payloads. */
static int do_recv(op *o, int j)
{
    tcp_peer *p = &o->s->peers[j];
    while (expecting(p) && !p->blocked) {
        uint8_t *dst;
        size_t want;
        if (!p->have_hdr) {
            dst = p->hbuf + p->hgot;
            want = TCP_HDR_BYTES - p->hgot;
        } else {
            want = p->h.payload_len - p->pgot;
            dst = p->draining ? o->sink : p->dst + p->pgot;
            want = p->draining && want > sizeof o->sink ? sizeof o->sink : want;
        }
        ssize_t r = want ? recv(p->fd, dst, want, MSG_DONTWAIT) : 0;
        if (want && r == 0)
            return fail(o, j, PL_ERR_IO, "closed the connection", NULL);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return PL_OK;
        if (r < 0)
            return fail(o, j, PL_ERR_IO, "connection failed: ", strerror(errno));
        o->st->bytes_recv += (uint64_t)r;
        p->last = pl_tr_now();
        int rc = PL_OK;
        if (!p->have_hdr) {
            p->hgot += (size_t)r;
            if (p->hgot == TCP_HDR_BYTES)
                rc = on_header(o, j, p);
        } else {
            p->pgot += (size_t)r;
        }
        if (!rc && p->have_hdr && !p->blocked && p->pgot == p->h.payload_len)
            rc = on_payload(o, j, p);
        if (rc)
            return rc;
    }
    return PL_OK;
}

/* After a reduction, peers waiting for a free slot may continue. */
static void unblock(op *o)
{
    for (int j = 0; j < o->s->size; j++) {
        tcp_peer *p = &o->s->peers[j];
        if (p->blocked && p->next_rs < o->reduced + TCP_WINDOW) {
            p->blocked = 0;
            p->dst = slot(o, j, p->next_rs);
        }
    }
}

/* --- the event loop --- */

static int finished(const op *o)
{
    for (int j = 0; j < o->s->size; j++) {
        const tcp_peer *p = &o->s->peers[j];
        if (j != o->s->rank && (expecting(p) || p->qhead < p->qn))
            return 0;
    }
    return o->kind != OP_ALLREDUCE || o->reduced == o->my_nseg;
}

/* Name the peer that has been silent longest past the timeout, if any. */
static int check_timeouts(op *o, const struct pollfd *pf, double now, int *wait_ms)
{
    double limit = o->s->timeout_ms / 1e3, oldest = now;
    int who = -1;
    *wait_ms = o->s->timeout_ms;
    for (int j = 0; j < o->s->size; j++) {
        if (pf[j].fd < 0)
            continue;
        double left = o->s->peers[j].last + limit - now;
        if (left <= 0 && o->s->peers[j].last < oldest) {
            oldest = o->s->peers[j].last;
            who = j;
        }
        int ms = left <= 0 ? 0 : (int)(left * 1e3) + 1;
        *wait_ms = ms < *wait_ms ? ms : *wait_ms;
    }
    if (who < 0)
        return PL_OK;
    const tcp_peer *p = &o->s->peers[who];
    const char *what = p->qhead < p->qn && !(pf[who].events & POLLIN) ? "did not read our data"
                       : p->exp_rs ? "did not send its contribution"
                       : p->exp_ag ? "did not send its reduced chunk"
                       : p->exp_bc ? "did not send the broadcast data"
                                   : "did not reach the barrier";
    char why[160];
    snprintf(why, sizeof why, "%s within %d ms (peer timeout)", what, o->s->timeout_ms);
    return fail(o, who, PL_ERR_IO, why, NULL);
}

static int run_loop_(op *o)
{
    tcp_state *s = o->s;
    struct pollfd pf[s->size];
    double start = pl_tr_now();
    for (int j = 0; j < s->size; j++)
        s->peers[j].last = start;
    int rc = o->kind == OP_ALLREDUCE ? reduce_ready(o) : PL_OK;
    while (!rc && !finished(o)) {
        unblock(o);
        for (int j = 0; j < s->size; j++) {
            tcp_peer *p = &s->peers[j];
            short ev = (short)((j != s->rank && p->qhead < p->qn ? POLLOUT : 0) |
                               (j != s->rank && expecting(p) && !p->blocked ? POLLIN : 0));
            pf[j] = (struct pollfd){ev ? p->fd : -1, ev, 0};
        }
        int wait_ms;
        rc = check_timeouts(o, pf, pl_tr_now(), &wait_ms);
        if (rc)
            break;
        double t0 = pl_tr_now();
        int nready = poll(pf, (nfds_t)s->size, wait_ms);
        o->st->wait_s += pl_tr_now() - t0;
        if (nready < 0 && errno != EINTR)
            return pl_err_set(o->err, PL_ERR_IO, "%s: poll failed: %s", op_names[o->kind],
                              strerror(errno));
        for (int j = 0; !rc && nready > 0 && j < s->size; j++) {
            if (pf[j].revents & (POLLIN | POLLHUP | POLLERR)) {
                double t1 = pl_tr_now();
                rc = pf[j].events & POLLIN ? do_recv(o, j) : PL_OK;
                o->st->recv_s += pl_tr_now() - t1;
            }
            if (!rc && pf[j].revents & (POLLOUT | POLLERR))
                rc = do_send(o, j);
        }
    }
    return rc;
}

/* A failure can leave a stream mid-message, so the handle refuses further
 * collectives (the caller closes it and, later, rejoins). */
static int run_loop(op *o)
{
    int rc = run_loop_(o);
    o->s->broken = rc != PL_OK;
    return rc;
}

/* Reset per-call expectations and queues. */
static int begin(op *o)
{
    if (o->s->broken)
        return pl_err_set(o->err, PL_ERR_IO,
                          "rank %d, %s step %" PRIu64 ": the transport failed in an earlier call; "
                          "close it and open a new one", o->s->rank, op_names[o->kind], o->step);
    for (int j = 0; j < o->s->size; j++) {
        tcp_peer *p = &o->s->peers[j];
        p->qhead = p->qn = 0;
        p->exp_rs = p->exp_ag = p->exp_bc = p->exp_bar = 0;
        p->next_rs = p->next_ag = p->next_bc = 0;
        p->blocked = 0;
    }
    return PL_OK;
}

static int grow(void **p, size_t *cap, size_t bytes)
{
    if (bytes <= *cap)
        return 0;
    void *q = realloc(*p, bytes);
    if (!q)
        return -1;
    *p = q;
    *cap = bytes;
    return 0;
}

/* Workspace of an all-reduce: RS slots, arrival counts, codec buffers. */
static int ar_workspace(op *o)
{
    tcp_state *s = o->s;
    size_t nsl = (size_t)s->size * TCP_WINDOW * o->slot_bytes;
    size_t acc = o->seg * sizeof(float);
    size_t ag = s->codec->id ? (size_t)o->my_nseg * o->slot_bytes : 0;
    int bad = grow((void **)&s->slots, &s->slots_cap, nsl) ||
              grow((void **)&s->arrived, &s->arrived_cap, (o->my_nseg + 1) * sizeof(uint32_t)) ||
              grow((void **)&s->agenc, &s->agenc_cap, ag + 1);
    if (!bad && acc > s->acc_cap) {
        free(s->acc);
        free(s->tmp);
        s->acc = malloc(acc);
        s->tmp = malloc(acc);
        s->acc_cap = s->acc && s->tmp ? acc : 0;
        bad = !s->acc_cap;
    }
    for (int j = 0; !bad && s->codec->id && j < s->size; j++) {
        if (o->slot_bytes > s->enc_cap) {
            free(s->peers[j].enc);
            free(s->peers[j].rxenc);
            s->peers[j].enc = malloc(o->slot_bytes);
            s->peers[j].rxenc = malloc(o->slot_bytes);
            bad = !s->peers[j].enc || !s->peers[j].rxenc;
        }
    }
    if (!bad && s->codec->id)
        s->enc_cap = o->slot_bytes > s->enc_cap ? o->slot_bytes : s->enc_cap;
    if (bad)
        return pl_err_set(o->err, PL_ERR_NOMEM, "all-reduce of %zu floats: out of memory for %zu-byte buffers",
                          o->n, nsl);
    memset(s->arrived, 0, (o->my_nseg + 1) * sizeof(uint32_t));
    return PL_OK;
}

int tcp_allreduce(void *impl, float *data, size_t n, uint64_t step, pl_xfer_stats *st, pl_err *err)
{
    tcp_state *s = impl;
    pl_err scratch = {0};
    op o = {.s = s, .kind = OP_ALLREDUCE, .step = step, .data = data, .n = n, .st = st,
            .err = err ? err : &scratch, .seg = s->seg_bytes / 4};
    if (s->size == 1 || n == 0)
        return PL_OK;
    if (n / (size_t)s->size > (size_t)UINT32_MAX * o.seg)
        return pl_err_set(err, PL_ERR_ARG, "all-reduce of %zu floats: too large", n);
    o.slot_bytes = s->codec->max_bytes(o.seg);
    o.my_nseg = nseg_of(chunk_len(&o, s->rank), o.seg);
    int rc = begin(&o);
    rc = rc ? rc : ar_workspace(&o);
    if (rc)
        return rc;
    for (int j = 0; j < s->size; j++) {
        if (j == s->rank)
            continue;
        size_t off = chunk_off(&o, j), len = chunk_len(&o, j);
        uint32_t ns = nseg_of(len, o.seg);
        s->peers[j].exp_rs = o.my_nseg;
        s->peers[j].exp_ag = ns;
        for (uint32_t g = 0; !rc && g < ns; g++) {
            size_t cnt = len - (size_t)g * o.seg < o.seg ? len - (size_t)g * o.seg : o.seg;
            rc = queue_msg(&o, j, TCP_MSG_RS, (uint32_t)j, g, off + (size_t)g * o.seg,
                           (uint32_t)cnt, data + off + (size_t)g * o.seg);
        }
    }
    return rc ? rc : run_loop(&o);
}

int tcp_broadcast(void *impl, void *buf, size_t len, int root, uint64_t step, pl_xfer_stats *st,
                  pl_err *err)
{
    tcp_state *s = impl;
    pl_err scratch = {0};
    op o = {.s = s, .kind = OP_BROADCAST, .step = step, .buf = buf, .len = len, .root = root,
            .st = st, .err = err ? err : &scratch, .seg = s->seg_bytes};
    if (s->size == 1 || len == 0)
        return PL_OK;
    uint32_t ns = nseg_of(len, o.seg);
    int rc = begin(&o);
    if (s->rank != root)
        s->peers[root].exp_bc = ns;
    for (int j = 0; s->rank == root && j < s->size; j++)
        for (uint32_t g = 0; j != root && !rc && g < ns; g++) {
            size_t off = (size_t)g * o.seg;
            rc = queue_msg(&o, j, TCP_MSG_BCAST, 0, g, off,
                           (uint32_t)(len - off < o.seg ? len - off : o.seg), o.buf + off);
        }
    return rc ? rc : run_loop(&o);
}

int tcp_barrier(void *impl, uint64_t step, pl_xfer_stats *st, pl_err *err)
{
    tcp_state *s = impl;
    pl_err scratch = {0};
    op o = {.s = s, .kind = OP_BARRIER, .step = step, .st = st, .err = err ? err : &scratch};
    int rc = begin(&o);
    for (int j = 0; j < s->size && !rc; j++) {
        if (j == s->rank)
            continue;
        s->peers[j].exp_bar = 1;
        rc = queue_msg(&o, j, TCP_MSG_BARRIER, 0, 0, 0, 0, NULL);
    }
    return rc ? rc : run_loop(&o);
}

void tcp_free_workspace(tcp_state *s)
{
    free(s->slots);
    free(s->arrived);
    free(s->agenc);
    free(s->acc);
    free(s->tmp);
}
