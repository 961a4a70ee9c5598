/* tcp_coll.c — collectives of the tcp:// transport over its socket mesh.
 *
 * All-reduce (direct reduce-scatter + all-gather): the vector is split into
 * N chunks, chunk c = [c*n/N, (c+1)*n/N) owned by rank c, and each chunk into
 * segments of seg_bytes; on the wire a segment is one "chunk" of the vector
 * (chunk index = its position among all segments). Every peer sends its
 * segments of chunk c to c (GRAD messages); the owner adds the N
 * contributions of a segment in rank order 0..N-1 as soon as all arrived and
 * sends the result to every peer (REDUCED messages). Each peer thus sends
 * and receives 2(N-1)/N of the vector.
 *
 * Copies: raw float32 messages are sent with one sendmsg of [wire header,
 * codec header, the caller's floats] (no copy into a send buffer); REDUCED
 * segments are received straight into the caller's vector, their CRC-32C
 * computed piece by piece right after each recv(); a raw GRAD segment is
 * received into a slot and its CRC checked just before the segment is
 * reduced: that pass brings the N-1 slots into L2 for the sum, where a
 * check right after recv() read them from memory a second time (measured:
 * ~5 % of the CPU time at VGG11 size; docs/performance.md). A segment that
 * fails the check is never summed. The owner's sum of a segment runs in
 * 16 KiB blocks that are written back and CRC'd while still in L1, giving
 * the REDUCED payload's CRC without another pass.
 *
 * Late CRCs: a GRAD body spliced into the socket (tcp.c decides when) is
 * not read by its sender at all, so a CRC in its header would cost a pass
 * over cold memory for nothing else. Such a segment goes with
 * PL_WIRE_F_LATE_CRC and CRC 0; the owner computes the CRC of what it
 * received (the pass that precedes the sum) and keeps it. The sender
 * computes the same CRC from its vector when the owner's REDUCED segment
 * for that range arrives, just before the recv() overwrites those floats:
 * the pass brings the lines that recv() is about to write into cache, so
 * it replaces a read the copy would make anyway (measured: ~9 % less CPU
 * per call at ResNet-18 size, N=4 on 2 cores). Only for owners' chunks of
 * at least TCP_LATE_MIN bytes: the two extra messages at the end of the
 * call cost more than they save on small vectors. After the owner's last
 * REDUCED segment the sender sends it one CHECK with these CRCs; the owner
 * compares them, and once every late contribution to its chunk matched it
 * sends VERIFIED to every peer (its last REDUCED carries PL_WIRE_F_VERIFY
 * to announce that). No peer returns before it has VERIFIED from every
 * owner that announced it, so a corrupted contribution still fails the
 * call everywhere, now after the sum instead of before it; and a sender
 * that gave up early (whose caller may then reuse the spliced pages)
 * never vouches for them.
 *
 * Sends and receives progress together in one poll() loop over non-blocking
 * sockets, so no pattern of large messages can deadlock, and reduction of a
 * segment overlaps the transfer of the next ones. Received GRAD segments
 * wait in a window of TCP_WINDOW slots per peer; a peer whose next segment
 * has no free slot is not read until the reduction catches up (TCP flow
 * control then holds the sender).
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <unistd.h>

#include "transport/tcp_impl.h"

enum { OP_ALLREDUCE, OP_BROADCAST, OP_BARRIER };

#define SUM_BLOCK 4096 /* floats summed per block (16 KiB: stays in L1) */

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
    size_t slot_bytes;    /* GRAD payload bound of one segment */
    size_t ag_bytes;      /* REDUCED payload bound of one segment */
    uint32_t my_nseg, reduced, nchunks;
    const pl_codec_cfg *codec;    /* of this call's GRAD messages (exact: none) */
    const pl_codec_cfg *ag_codec; /* of this call's REDUCED messages */
    tcp_codecs *cs;       /* codec state for this n (NULL: codec none) */
    int sparse_ag;        /* top-k: a REDUCED segment may be a sparse topk payload */
    pl_xfer_stats *st;
    pl_err *err;
    uint8_t sink[16384]; /* discarded payloads land here, unread */
} op;

static const char *const op_names[] = {"all-reduce", "broadcast", "barrier"};
/* Decoding a top-k sum: a topk payload with any k (pl_codec_encode_sparse). */
static const pl_codec_cfg sparse_sum = {.id = PL_CODEC_TOPK};

static size_t chunk_off(const op *o, int c)
{
    return (size_t)((uint64_t)o->n * (uint64_t)c / (uint64_t)o->s->size);
}
static size_t chunk_len(const op *o, int c) { return chunk_off(o, c + 1) - chunk_off(o, c); }
static uint32_t nseg_of(size_t len, size_t seg) { return (uint32_t)((len + seg - 1) / seg); }

/* Element range of segment g of owner c's chunk. */
static size_t seg_off(const op *o, int c, uint32_t g) { return chunk_off(o, c) + (size_t)g * o->seg; }
static size_t seg_len(const op *o, int c, uint32_t g)
{
    size_t left = chunk_len(o, c) - (size_t)g * o->seg;
    return left < o->seg ? left : o->seg;
}

static int fail(op *o, int j, int status, const char *fmt, const char *what)
{
    tcp_peer *p = &o->s->peers[j];
    return pl_err_set(o->err, status, "rank %d, %s step %" PRIu64 ": peer %d (%s) %s%s", o->s->rank,
                      op_names[o->kind], o->step, j, p->addr, fmt, what ? what : "");
}

/* --- send side --- */

static int push(op *o, int j, const tcp_tx *m)
{
    tcp_peer *p = &o->s->peers[j];
    if (p->qn == p->qcap) {
        size_t cap = p->qcap ? 2 * p->qcap : 64;
        tcp_tx *q = realloc(p->q, cap * sizeof *q);
        if (!q)
            return pl_err_set(o->err, PL_ERR_NOMEM, "%s: out of memory queueing messages",
                              op_names[o->kind]);
        p->q = q;
        p->qcap = cap;
    }
    p->q[p->qn++] = *m;
    return PL_OK;
}

/* A header for peer j of this op's step; the caller sets the rest. */
static pl_wire_header header_to(const op *o, int j, uint8_t type)
{
    return (pl_wire_header){.type = type, .sender = (uint32_t)o->s->rank, .run_id = o->s->run_id,
                            .step = o->step, .receiver = (uint32_t)j, .chunk_count = 1};
}

/* Encode the head GRAD message for peer j: raw (codec header in the prefix,
 * the caller's floats as body) or through peer j's codec into p->enc. */
static int prepare_grad(op *o, int j, tcp_tx *m)
{
    size_t cnt = (size_t)m->h.elem_count;
    uint8_t *ch = m->prefix + PL_WIRE_HEADER_SIZE;
    tcp_peer *p = &o->s->peers[j];
    if (!o->cs) {
        pl_codec_write_header(o->codec, cnt, ch);
        m->plen = TCP_PREFIX_MAX;
        m->body = m->src;
        m->blen = cnt * sizeof(float);
        if (p->pipe[0] >= 0 && m->blen >= TCP_SPLICE_MIN && /* spliced: its CRC comes late */
            chunk_len(o, j) * sizeof(float) >= TCP_LATE_MIN) {
            m->h.flags |= PL_WIRE_F_LATE_CRC;
            m->crc = 0;
            o->s->lflag[m->h.chunk_index] = 1;
            p->late_out++;
            return PL_OK;
        }
        m->crc = pl_wire_crc32c(pl_wire_crc32c(0, ch, PL_CODEC_HEADER_SIZE), m->body, m->blen);
        return PL_OK;
    }
    size_t written = 0;
    int rc = pl_codec_encode(o->cs->to[j], m->src, cnt, (size_t)m->h.elem_offset, p->enc,
                             o->slot_bytes, &written, o->err);
    if (rc)
        return pl_err_wrap(o->err, rc, "rank %d, all-reduce step %" PRIu64 ": encoding for peer %d",
                           o->s->rank, o->step, j);
    m->h.codec = (uint8_t)o->codec->id;
    m->plen = PL_WIRE_HEADER_SIZE;
    m->body = p->enc;
    m->blen = written;
    m->crc = pl_wire_crc32c(0, p->enc, written);
    return PL_OK;
}

/* Finalise the head message: encode its payload if needed, then the header
 * with the payload's length and CRC. */
static int prepare(op *o, int j, tcp_tx *m)
{
    int rc = PL_OK;
    if (m->h.type == PL_WIRE_GRAD) {
        rc = prepare_grad(o, j, m);
    } else if (m->h.type != PL_WIRE_REDUCED) { /* MODEL, CHECK, BARRIER, VERIFIED: raw bytes */
        m->plen = PL_WIRE_HEADER_SIZE;
        m->body = m->src;
        m->blen = m->h.type == PL_WIRE_MODEL   ? (size_t)m->h.elem_count
                  : m->h.type == PL_WIRE_CHECK ? 4 * (size_t)m->h.elem_count
                                               : 0;
        m->crc = pl_wire_crc32c(0, m->body, m->blen);
    }
    if (!rc)
        rc = pl_wire_encode_header_crc(&m->h, m->plen - PL_WIRE_HEADER_SIZE + m->blen, m->crc,
                                       m->prefix, PL_WIRE_HEADER_SIZE, o->err);
    m->ready = !rc;
    return rc;
}

/* Move more of m's body to peer j's socket through the peer's pipe:
 * vmsplice references the caller's pages instead of copying them and
 * splice hands them to TCP, so the sender does not copy the bytes at all
 * (on loopback the receiver's recv() copies straight from our pages).
 * Safe without waiting for the receiver: a GRAD segment's floats are
 * overwritten only by the owner's REDUCED segment, which the owner sends
 * after it has read ours, and we return only after receiving that.
 * Returns bytes moved to the socket (0: the pipe could not be filled and
 * splicing is now off for this peer), or -1 with errno. */
static ssize_t splice_body(op *o, int j, tcp_tx *m)
{
    tcp_peer *p = &o->s->peers[j];
    if (!p->in_pipe) {
        struct iovec v = {(void *)(m->body + m->piped), m->blen - m->piped};
        ssize_t n = vmsplice(p->pipe[1], &v, 1, SPLICE_F_NONBLOCK);
        if (n <= 0) { /* e.g. vmsplice forbidden by a seccomp filter: copy instead */
            pl_tr_log(o->s->log, o->s->log_ctx, "rank %d: peer %d: vmsplice failed (%s); "
                      "sending with copies", o->s->rank, j, n < 0 ? strerror(errno) : "no bytes");
            close(p->pipe[0]);
            close(p->pipe[1]);
            p->pipe[0] = p->pipe[1] = -1;
            return 0;
        }
        m->piped += (size_t)n;
        p->in_pipe = (size_t)n;
    }
    ssize_t r = splice(p->pipe[0], NULL, p->fd, NULL, p->in_pipe,
                       SPLICE_F_NONBLOCK | (m->piped < m->blen ? SPLICE_F_MORE : 0));
    if (r == 0) { /* cannot happen with bytes in the pipe; never spin on it */
        errno = EIO;
        return -1;
    }
    if (r > 0)
        p->in_pipe -= (size_t)r;
    return r;
}

/* Send peer j's queued messages until its socket is full or, with `one`,
 * until one message is complete; *more = 1 if the socket may take more. */
static int send_some(op *o, int j, int one, int *more)
{
    tcp_peer *p = &o->s->peers[j];
    *more = 0;
    while (p->qhead < p->qn) {
        tcp_tx *m = &p->q[p->qhead];
        int rc = m->ready ? PL_OK : prepare(o, j, m);
        if (rc)
            return rc;
        int zc = p->pipe[0] >= 0 && m->h.type == PL_WIRE_GRAD && !o->cs &&
                 m->blen >= TCP_SPLICE_MIN;
        double t0 = pl_tr_now();
        ssize_t r;
        int spliced = zc && m->sent >= m->plen;
        if (spliced) {
            r = splice_body(o, j, m);
            if (r == 0)
                continue; /* splicing just turned off: send the rest with sendmsg */
        } else {
            struct iovec iov[2];
            int k = 0;
            if (m->sent < m->plen)
                iov[k++] = (struct iovec){m->prefix + m->sent, m->plen - m->sent};
            size_t bdone = m->sent > m->plen ? m->sent - m->plen : 0;
            if (!zc && m->blen > bdone)
                iov[k++] = (struct iovec){(void *)(m->body + bdone), m->blen - bdone};
            struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)k};
            r = sendmsg(p->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT | (zc ? MSG_MORE : 0));
        }
        o->st->send_s += pl_tr_now() - t0;
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return PL_OK;
            return fail(o, j, PL_ERR_IO, "connection failed while sending: ", strerror(errno));
        }
        o->st->bytes_sent += (uint64_t)r;
        if (spliced)
            o->st->bytes_spliced += (uint64_t)r;
        p->last = pl_tr_now();
        m->sent += (size_t)r;
        if (m->sent < m->plen + m->blen) {
            if (zc && !p->in_pipe)
                continue; /* the prefix, or all the pipe held, went: socket may take more */
            return PL_OK;
        }
        o->st->msgs_sent++;
        p->qhead++;
        if (one && p->qhead < p->qn) {
            *more = 1;
            return PL_OK;
        }
    }
    p->qhead = p->qn = 0;
    return PL_OK;
}

/* Send to every peer with ready[j] set, one message each in turn (starting
 * after this rank), until every socket is full or every queue empty. Round
 * robin keeps the owners fed at the same pace: filling one peer's socket
 * before the next (peers in rank order) made the highest rank receive its
 * contributions last and finish last, an all-reduce's critical path. */
static int send_ready(op *o, unsigned char *ready)
{
    int n = o->s->size, any = 1, rc = PL_OK;
    while (!rc && any) {
        any = 0;
        for (int k = 1; !rc && k < n; k++) {
            int j = (o->s->rank + k) % n, more;
            if (!ready[j])
                continue;
            rc = send_some(o, j, 1, &more);
            ready[j] = (unsigned char)more;
            any |= more;
        }
    }
    return rc;
}

/* --- all-reduce: reduction of my chunk --- */

static uint8_t *slot(const op *o, int j, uint32_t seg)
{
    return o->s->slots + ((size_t)j * TCP_WINDOW + seg % TCP_WINDOW) * o->slot_bytes;
}

/* Raw floats of rank r's contribution to my segment sg. */
static const float *raw_src(const op *o, int r, uint32_t sg, size_t off)
{
    if (r == o->s->rank)
        return o->data + off;
    return (const float *)(slot(o, r, sg) + PL_CODEC_HEADER_SIZE);
}

/* out[0..n) = ((src[0] + src[1]) + src[2]) + ... (rank order, N >= 2), block
 * by block, each block CRC'd while in L1; returns the CRC continued from
 * crc. out may be one of the sources (a block is read before written). */
static uint32_t sum_rank_order(float *out, const float *const *src, int nsrc, size_t n,
                               uint32_t crc)
{
    float blk[SUM_BLOCK];
    for (size_t b = 0; b < n; b += SUM_BLOCK) {
        size_t m = n - b < SUM_BLOCK ? n - b : SUM_BLOCK;
        const float *x = src[0] + b, *y = src[1] + b;
        for (size_t i = 0; i < m; i++)
            blk[i] = x[i] + y[i];
        for (int r = 2; r < nsrc; r++) {
            const float *z = src[r] + b;
            for (size_t i = 0; i < m; i++)
                blk[i] += z[i];
        }
        memcpy(out + b, blk, m * sizeof *blk);
        crc = pl_wire_crc32c(crc, blk, m * sizeof *blk);
    }
    return crc;
}

/* With a codec: acc = the decoded contributions added in rank order, mine
 * encoded through my own stream like the others (so a top-k sum is sparse
 * and every contribution gets the same treatment). */
static int sum_decoded(op *o, uint32_t sg, size_t off, size_t cnt)
{
    tcp_state *s = o->s;
    size_t bytes = pl_codec_max_bytes(o->codec, cnt), written = 0;
    uint8_t *mine = s->peers[s->rank].enc;
    int rc = pl_codec_encode(o->cs->to[s->rank], o->data + off, cnt, off, mine, o->slot_bytes,
                             &written, o->err);
    if (rc)
        return pl_err_wrap(o->err, rc, "rank %d, all-reduce step %" PRIu64 ": encoding my own "
                           "contribution", s->rank, o->step);
    for (int r = 0; r < s->size; r++) {
        rc = (r == 0 ? pl_codec_decode : pl_codec_decode_add)(
            o->codec, r == s->rank ? mine : slot(o, r, sg), bytes, s->acc, cnt, o->err);
        if (rc)
            return fail(o, r, rc, "sent an undecodable contribution: ", o->err->msg);
    }
    return PL_OK;
}

/* Sum segment sg of my chunk into data; set m (a REDUCED template) to the
 * payload every peer will receive. */
static int reduce_into(op *o, uint32_t sg, size_t off, size_t cnt, tcp_tx *m)
{
    tcp_state *s = o->s;
    uint8_t *ch = m->prefix + PL_WIRE_HEADER_SIZE;
    if (!o->cs) {
        const float *src[s->size];
        for (int r = 0; r < s->size; r++) {
            src[r] = raw_src(o, r, sg, off);
            if (r == s->rank)
                continue;
            uint32_t c = pl_wire_crc32c(0, slot(o, r, sg), PL_CODEC_HEADER_SIZE + cnt * sizeof(float));
            size_t k = (size_t)r * o->my_nseg + sg;
            if (s->rflag[k])
                s->rcrc[k] = c; /* compared when r's CHECK comes */
            else if (c != s->peers[r].slot_crc[sg % TCP_WINDOW])
                return fail(o, r, PL_ERR_FORMAT, "sent a corrupted payload, rejected: ",
                            "grad segment: payload CRC-32C mismatch");
        }
        pl_codec_write_header(o->ag_codec, cnt, ch);
        m->crc = sum_rank_order(o->data + off, src, s->size, cnt,
                                pl_wire_crc32c(0, ch, PL_CODEC_HEADER_SIZE));
        m->plen = TCP_PREFIX_MAX;
        m->body = (const uint8_t *)(o->data + off);
        m->blen = cnt * sizeof(float);
        return PL_OK;
    }
    int rc = sum_decoded(o, sg, off, cnt);
    if (rc)
        return rc;
    size_t sparse = o->sparse_ag ? pl_codec_sparse_bytes(s->acc, cnt) : 0;
    if (sparse && sparse < pl_codec_max_bytes(o->ag_codec, cnt)) {
        uint8_t *enc = s->agenc + (size_t)sg * o->ag_bytes;
        size_t written = 0;
        rc = pl_codec_encode_sparse(s->acc, cnt, enc, o->ag_bytes, &written, o->err);
        if (!rc) /* hold exactly what the others decode */
            rc = pl_codec_decode(&sparse_sum, enc, written, o->data + off, cnt, o->err);
        if (rc)
            return pl_err_wrap(o->err, rc, "rank %d, all-reduce step %" PRIu64 ": encoding the sum",
                               s->rank, o->step);
        m->h.codec = PL_CODEC_TOPK;
        m->plen = PL_WIRE_HEADER_SIZE;
        m->body = enc;
        m->blen = written;
        m->crc = pl_wire_crc32c(0, enc, written);
        return PL_OK;
    }
    if (o->ag_codec->id == PL_CODEC_NONE) {
        memcpy(o->data + off, s->acc, cnt * sizeof(float));
        pl_codec_write_header(o->ag_codec, cnt, ch);
        m->plen = TCP_PREFIX_MAX;
        m->body = (const uint8_t *)(o->data + off);
        m->blen = cnt * sizeof(float);
        m->crc = pl_wire_crc32c(pl_wire_crc32c(0, ch, PL_CODEC_HEADER_SIZE), m->body, m->blen);
        return PL_OK;
    }
    uint8_t *enc = s->agenc + (size_t)sg * o->ag_bytes;
    size_t written = 0;
    rc = pl_codec_encode(o->cs->ag, s->acc, cnt, off, enc, o->ag_bytes, &written, o->err);
    if (!rc) /* hold exactly what the others decode */
        rc = pl_codec_decode(o->ag_codec, enc, written, o->data + off, cnt, o->err);
    if (rc)
        return pl_err_wrap(o->err, rc, "rank %d, all-reduce step %" PRIu64 ": encoding the sum",
                           s->rank, o->step);
    m->h.codec = (uint8_t)o->ag_codec->id;
    m->plen = PL_WIRE_HEADER_SIZE;
    m->body = enc;
    m->blen = written;
    m->crc = pl_wire_crc32c(0, enc, written);
    return PL_OK;
}

/* Reduce segment sg of my chunk and queue the result to every peer. */
static int reduce_segment(op *o, uint32_t sg)
{
    tcp_state *s = o->s;
    size_t off = seg_off(o, s->rank, sg), cnt = seg_len(o, s->rank, sg);
    tcp_tx m = {.h = header_to(o, 0, PL_WIRE_REDUCED)};
    m.h.chunk_index = s->first_seg[s->rank] + sg;
    m.h.chunk_count = o->nchunks;
    m.h.elem_offset = off;
    m.h.elem_count = cnt;
    for (int j = 0; sg + 1 == o->my_nseg && j < s->size; j++)
        if (s->peers[j].late_in) /* every contribution is in: late CRCs still to check */
            m.h.flags = PL_WIRE_F_VERIFY;
    int rc = reduce_into(o, sg, off, cnt, &m);
    for (int j = 0; !rc && j < s->size; j++) {
        if (j == s->rank)
            continue;
        m.h.receiver = (uint32_t)j;
        rc = push(o, j, &m);
    }
    return rc;
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
    return p->exp_rs || p->exp_ag || p->exp_bc || p->exp_bar || p->exp_check || p->exp_ver ||
           p->have_hdr;
}

/* Check an all-reduce header against the geometry; set the destination. */
static int accept_ar(op *o, int j, tcp_peer *p)
{
    const pl_wire_header *h = &p->h;
    tcp_state *s = o->s;
    int rs = h->type == PL_WIRE_GRAD;
    int owner = rs ? s->rank : j;
    uint32_t g = rs ? p->next_rs : p->next_ag;
    if ((!rs && h->type != PL_WIRE_REDUCED) || (rs ? !p->exp_rs : !p->exp_ag))
        return fail(o, j, PL_ERR_FORMAT, "sent an unexpected message: ", pl_wire_type_name(h->type));
    const pl_codec_cfg *cfg = rs ? o->codec : o->ag_codec;
    size_t off = seg_off(o, owner, g), cnt = seg_len(o, owner, g);
    size_t dense = pl_codec_max_bytes(cfg, cnt), len = (size_t)h->payload_len;
    /* top-k sums: a sparse topk payload shorter than the raw one */
    int sparse = !rs && o->sparse_ag && h->codec == PL_CODEC_TOPK && len >= PL_CODEC_HEADER_SIZE &&
                 len < dense && (len - PL_CODEC_HEADER_SIZE) % 8 == 0;
    if (h->chunk_index != s->first_seg[owner] + g || h->chunk_count != o->nchunks ||
        h->elem_offset != off || h->elem_count != cnt ||
        (!sparse && (h->codec != cfg->id || len != dense)))
        return fail(o, j, PL_ERR_FORMAT,
                    "sent a segment that does not fit the vector (wrong n, chunking or codec): ",
                    pl_wire_type_name(h->type));
    if (rs && (h->flags & PL_WIRE_F_LATE_CRC)) {
        if (o->cs)
            return fail(o, j, PL_ERR_FORMAT, "sent a compressed contribution without its CRC", NULL);
        s->rflag[(size_t)j * o->my_nseg + g] = 1;
        p->late_in++;
        p->exp_check = 1;
    }
    if (!rs && (h->flags & PL_WIRE_F_VERIFY))
        p->exp_ver = 1;
    if (rs) {
        p->defer_crc = !o->cs;
        p->blocked = g >= o->reduced + TCP_WINDOW;
        p->dst = p->blocked ? NULL : slot(o, j, g);
    } else if (cfg->id == PL_CODEC_NONE && !sparse) {
        if (s->lflag[h->chunk_index]) { /* my contribution, still unchanged: its late CRC */
            uint8_t ch[PL_CODEC_HEADER_SIZE];
            pl_codec_write_header(o->codec, cnt, ch);
            s->lcrc[h->chunk_index] = htole32(pl_wire_crc32c(pl_wire_crc32c(0, ch, sizeof ch),
                                                             o->data + off, cnt * sizeof(float)));
        }
        p->pre = p->cbuf;
        p->pre_len = PL_CODEC_HEADER_SIZE;
        p->dst = (uint8_t *)(o->data + off);
    } else {
        p->dst = p->rxenc;
    }
    return PL_OK;
}

static int accept_other(op *o, int j, tcp_peer *p)
{
    const pl_wire_header *h = &p->h;
    if (h->type == PL_WIRE_BARRIER && o->kind == OP_BARRIER && p->exp_bar && h->payload_len == 0)
        return PL_OK;
    if (h->type == PL_WIRE_CHECK && p->exp_check && h->elem_count == o->my_nseg &&
        h->payload_len == 4 * (uint64_t)o->my_nseg) {
        p->dst = (uint8_t *)(o->s->ckin + (size_t)j * o->my_nseg);
        return PL_OK;
    }
    if (h->type == PL_WIRE_VERIFIED && p->exp_ver && h->payload_len == 0)
        return PL_OK;
    if (h->type == PL_WIRE_MODEL && o->kind == OP_BROADCAST && p->exp_bc && j == o->root) {
        size_t off = (size_t)p->next_bc * o->seg;
        size_t cnt = o->len - off < o->seg ? o->len - off : o->seg;
        if (h->chunk_index != p->next_bc || h->chunk_count != nseg_of(o->len, o->seg) ||
            h->elem_offset != off || h->elem_count != cnt || h->payload_len != cnt)
            return fail(o, j, PL_ERR_FORMAT, "sent a broadcast segment that does not fit ",
                        "(different length?)");
        p->dst = o->buf + off;
        return PL_OK;
    }
    return fail(o, j, PL_ERR_FORMAT, "sent an unexpected message: ", pl_wire_type_name(h->type));
}

static pl_wire_expect expect_of(const op *o)
{
    return (pl_wire_expect){.run_id = o->s->run_id, .step = o->step, .rank = (uint32_t)o->s->rank,
                            .world_size = (uint32_t)o->s->size};
}

static int on_header(op *o, int j, tcp_peer *p)
{
    pl_err e = {0};
    if (pl_wire_decode_header(p->hbuf, sizeof p->hbuf, &p->h, &e))
        return fail(o, j, PL_ERR_FORMAT, "sent garbage: ", e.msg);
    p->have_hdr = 1;
    p->pgot = p->pre_len = 0;
    p->crc = 0;
    p->draining = p->defer_crc = 0;
    p->pre = p->dst = NULL;
    pl_wire_expect ex = expect_of(o);
    pl_wire_verdict v = pl_wire_check_crc(&p->h, p->h.payload_len, p->h.payload_crc, &ex, NULL, &e);
    if (v == PL_WIRE_STALE || v == PL_WIRE_FOREIGN) {
        pl_tr_log(o->s->log, o->s->log_ctx, "rank %d: discarded a message from peer %d (%s): %s",
                  o->s->rank, j, p->addr, e.msg);
        p->draining = 1;
        return PL_OK;
    }
    if (v != PL_WIRE_ACCEPT)
        return fail(o, j, PL_ERR_FORMAT, "is out of step: ", e.msg);
    if (p->h.sender != (uint32_t)j)
        return fail(o, j, PL_ERR_FORMAT, "is out of step: ", "its message claims another sender");
    return o->kind == OP_ALLREDUCE && (p->h.type == PL_WIRE_GRAD || p->h.type == PL_WIRE_REDUCED)
               ? accept_ar(o, j, p)
               : accept_other(o, j, p);
}

/* A complete REDUCED payload arrived: check the raw codec header or decode. */
static int finish_reduced(op *o, int j, tcp_peer *p)
{
    size_t cnt = (size_t)p->h.elem_count;
    if (p->h.codec == PL_CODEC_TOPK && o->sparse_ag) {
        int rc = pl_codec_decode(&sparse_sum, p->dst, (size_t)p->h.payload_len,
                                 o->data + p->h.elem_offset, cnt, o->err);
        return rc ? fail(o, j, rc, "sent an undecodable result: ", o->err->msg) : PL_OK;
    }
    if (o->ag_codec->id == PL_CODEC_NONE) {
        uint8_t want[PL_CODEC_HEADER_SIZE];
        pl_codec_write_header(o->ag_codec, cnt, want);
        if (memcmp(want, p->cbuf, sizeof want))
            return fail(o, j, PL_ERR_FORMAT, "sent a reduced segment with a bad codec header",
                        NULL);
        return PL_OK;
    }
    int rc = pl_codec_decode(o->ag_codec, p->dst, (size_t)p->h.payload_len,
                             o->data + p->h.elem_offset, cnt, o->err);
    return rc ? fail(o, j, rc, "sent an undecodable result: ", o->err->msg) : PL_OK;
}

/* A complete raw GRAD payload: its codec header must be the expected one. */
static int check_raw_grad(op *o, int j, tcp_peer *p)
{
    uint8_t want[PL_CODEC_HEADER_SIZE];
    pl_codec_write_header(o->codec, (size_t)p->h.elem_count, want);
    if (memcmp(want, p->dst, sizeof want))
        return fail(o, j, PL_ERR_FORMAT, "sent a contribution with a bad codec header", NULL);
    return PL_OK;
}

/* Peer j's late CRCs of the segments it sent me: compare with those of
 * what I received (computed before the sum); when every late contribution
 * matched, tell every peer that my chunk is good. */
static int check_late(op *o, int j, tcp_peer *p)
{
    tcp_state *s = o->s;
    p->exp_check = 0;
    if (o->reduced < o->my_nseg)
        return fail(o, j, PL_ERR_FORMAT, "is out of step: ", "it sent its late CRCs before my result");
    for (uint32_t g = 0; g < o->my_nseg; g++) {
        size_t k = (size_t)j * o->my_nseg + g;
        if (s->rflag[k] && le32toh(s->ckin[k]) != s->rcrc[k])
            return fail(o, j, PL_ERR_FORMAT, "sent a corrupted payload, rejected: ",
                        "grad segment: late CRC-32C mismatch");
    }
    p->checked = 1;
    for (int i = 0; i < s->size; i++)
        if (s->peers[i].late_in && !s->peers[i].checked)
            return PL_OK;
    int rc = PL_OK;
    for (int i = 0; !rc && i < s->size; i++)
        if (i != s->rank) {
            tcp_tx m = {.h = header_to(o, i, PL_WIRE_VERIFIED)};
            rc = push(o, i, &m);
        }
    return rc;
}

/* A complete payload arrived: check its CRC, then apply it. */
static int on_payload(op *o, int j, tcp_peer *p)
{
    const pl_wire_header *h = &p->h;
    p->have_hdr = 0;
    p->hgot = 0;
    if (p->draining)
        return PL_OK;
    o->st->msgs_recv++;
    pl_err e = {0};
    pl_wire_expect ex = expect_of(o);
    if (pl_wire_check_crc(h, p->pgot, p->defer_crc ? h->payload_crc : p->crc, &ex, NULL, &e) !=
        PL_WIRE_ACCEPT)
        return fail(o, j, PL_ERR_FORMAT, "sent a corrupted payload, rejected: ", e.msg);
    if (p->defer_crc)
        p->slot_crc[(h->chunk_index - o->s->first_seg[o->s->rank]) % TCP_WINDOW] = h->payload_crc;
    if (h->type == PL_WIRE_GRAD) {
        int rc = o->cs ? PL_OK : check_raw_grad(o, j, p);
        if (rc)
            return rc;
        p->exp_rs--;
        p->next_rs++;
        o->s->arrived[h->chunk_index - o->s->first_seg[o->s->rank]]++;
        return reduce_ready(o);
    }
    if (h->type == PL_WIRE_REDUCED) {
        p->exp_ag--;
        p->next_ag++;
        int rc = finish_reduced(o, j, p);
        if (!rc && !p->exp_ag && p->late_out) { /* all read: my late CRCs of j's chunk */
            tcp_tx m = {.h = header_to(o, j, PL_WIRE_CHECK), .src = o->s->lcrc + o->s->first_seg[j]};
            m.h.elem_count = nseg_of(chunk_len(o, j), o->seg);
            rc = push(o, j, &m);
        }
        return rc;
    }
    if (h->type == PL_WIRE_CHECK)
        return check_late(o, j, p);
    if (h->type == PL_WIRE_VERIFIED) {
        p->exp_ver = 0;
        return PL_OK;
    }
    if (h->type == PL_WIRE_MODEL) {
        p->exp_bc--;
        p->next_bc++;
    } else {
        p->exp_bar--;
    }
    return PL_OK;
}

/* Where the next received bytes go and how many are wanted. */
static uint8_t *recv_target(op *o, tcp_peer *p, size_t *want)
{
    if (!p->have_hdr) {
        *want = PL_WIRE_HEADER_SIZE - p->hgot;
        return p->hbuf + p->hgot;
    }
    size_t left = (size_t)p->h.payload_len - p->pgot;
    if (p->draining) {
        *want = left > sizeof o->sink ? sizeof o->sink : left;
        return o->sink;
    }
    if (p->pgot < p->pre_len) {
        *want = p->pre_len - p->pgot;
        return p->pre + p->pgot;
    }
    *want = left;
    return p->dst + (p->pgot - p->pre_len);
}

/* Read what is available from peer j: headers and payloads. */
static int do_recv(op *o, int j)
{
    tcp_peer *p = &o->s->peers[j];
    while (expecting(p) && !p->blocked) {
        size_t want;
        uint8_t *dst = recv_target(o, p, &want);
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
            if (p->hgot == PL_WIRE_HEADER_SIZE)
                rc = on_header(o, j, p);
        } else {
            if (!p->draining && !p->defer_crc) /* while the bytes are still in cache */
                p->crc = pl_wire_crc32c(p->crc, dst, (size_t)r);
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
                       : p->exp_check ? "did not send the late CRCs of its contribution"
                       : p->exp_ver ? "did not confirm its reduced chunk"
                                   : "did not reach the barrier";
    char why[160];
    snprintf(why, sizeof why, "%s within %d ms (peer timeout)", what, o->s->timeout_ms);
    return fail(o, who, PL_ERR_IO, why, NULL);
}

/* Serve the peers poll() reported ready: receive, then send round robin. */
static int serve(op *o, const struct pollfd *pf, int nready)
{
    int rc = PL_OK, n = o->s->size;
    unsigned char ready[n];
    for (int k = 1; !rc && nready > 0 && k <= n; k++) {
        int j = (o->s->rank + k) % n;
        if (pf[j].revents & (POLLIN | POLLHUP | POLLERR)) {
            double t1 = pl_tr_now();
            rc = pf[j].events & POLLIN ? do_recv(o, j) : PL_OK;
            o->st->recv_s += pl_tr_now() - t1;
        }
    }
    for (int j = 0; j < n; j++)
        ready[j] = (unsigned char)(j != o->s->rank && (pf[j].revents & (POLLOUT | POLLERR)));
    return rc ? rc : send_ready(o, ready);
}

static int run_loop_(op *o)
{
    tcp_state *s = o->s;
    struct pollfd pf[s->size];
    double start = pl_tr_now();
    for (int j = 0; j < s->size; j++)
        s->peers[j].last = start;
    int rc = o->kind == OP_ALLREDUCE ? reduce_ready(o) : PL_OK;
    /* Start sending before the first poll: the sockets are writable. */
    unsigned char ready[s->size];
    for (int j = 0; j < s->size; j++)
        ready[j] = j != s->rank;
    rc = rc ? rc : send_ready(o, ready);
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
        rc = serve(o, pf, nready);
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
        p->exp_rs = p->exp_ag = p->exp_bc = p->exp_bar = p->exp_check = p->exp_ver = 0;
        p->next_rs = p->next_ag = p->next_bc = 0;
        p->late_out = p->late_in = 0;
        p->checked = 0;
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

/* The codec state for vectors of n elements: found, or made in place of the
 * least recently used one (a new top-k residual starts at zero). */
static int codecs_for(op *o)
{
    tcp_state *s = o->s;
    tcp_codecs *c = &s->sets[0];
    for (int k = 0; k < TCP_CODEC_SETS; k++) {
        if (s->sets[k].n == o->n) {
            c = &s->sets[k];
            goto found;
        }
        if (s->sets[k].used < c->used)
            c = &s->sets[k];
    }
    for (int i = 0; c->to && i < s->size; i++)
        pl_codec_destroy(c->to[i]);
    pl_codec_destroy(c->ag);
    c->ag = NULL;
    c->n = 0;
    if (!c->to && !(c->to = calloc((size_t)s->size, sizeof *c->to)))
        return pl_err_set(o->err, PL_ERR_NOMEM, "all-reduce: out of memory for codecs");
    for (int j = 0; j < s->size; j++) {
        c->to[j] = NULL;
        uint64_t seed = s->seed ^ ((uint64_t)s->rank << 40 | (uint64_t)j << 20) * 0x9e3779b97f4a7c15ull;
        int rc = pl_codec_create(o->codec, o->n, seed, &c->to[j], o->err); /* to[rank]: mine */
        if (rc)
            return rc;
    }
    if (o->ag_codec->id != PL_CODEC_NONE && pl_codec_create(o->ag_codec, o->n, s->seed ^ ((uint64_t)s->rank + 1) * 0xbf58476d1ce4e5b9ull, &c->ag, o->err))
        return o->err->status;
    c->n = o->n;
found:
    c->used = ++s->calls;
    o->cs = c;
    return PL_OK;
}

/* Per-peer codec buffers (one segment each). */
static int codec_buffers(op *o)
{
    tcp_state *s = o->s;
    if (o->slot_bytes <= s->enc_cap)
        return 0;
    int bad = 0;
    for (int j = 0; j < s->size; j++) {
        free(s->peers[j].enc);
        free(s->peers[j].rxenc);
        s->peers[j].enc = malloc(o->slot_bytes);
        s->peers[j].rxenc = malloc(o->ag_bytes + 1);
        bad |= !s->peers[j].enc || !s->peers[j].rxenc;
    }
    s->enc_cap = bad ? 0 : o->slot_bytes;
    return bad;
}

/* Workspace of an all-reduce: GRAD slots, arrival counts, codec buffers. */
static int ar_workspace(op *o)
{
    tcp_state *s = o->s;
    size_t nsl = (size_t)s->size * TCP_WINDOW * o->slot_bytes;
    size_t acc = o->seg * sizeof(float);
    size_t ag = o->ag_codec->id || o->sparse_ag ? (size_t)o->my_nseg * o->ag_bytes : 0;
    int bad = grow((void **)&s->slots, &s->slots_cap, nsl) ||
              grow((void **)&s->arrived, &s->arrived_cap, (o->my_nseg + 1) * sizeof(uint32_t)) ||
              grow((void **)&s->first_seg, &s->first_cap, ((size_t)s->size + 1) * sizeof(uint32_t)) ||
              grow((void **)&s->agenc, &s->agenc_cap, ag + 1) ||
              (o->cs && grow((void **)&s->acc, &s->acc_cap, acc)) || (o->cs && codec_buffers(o));
    if (bad)
        return pl_err_set(o->err, PL_ERR_NOMEM, "all-reduce of %zu floats: out of memory for %zu-byte buffers",
                          o->n, nsl);
    memset(s->arrived, 0, (o->my_nseg + 1) * sizeof(uint32_t));
    s->first_seg[0] = 0;
    for (int c = 0; c < s->size; c++)
        s->first_seg[c + 1] = s->first_seg[c] + nseg_of(chunk_len(o, c), o->seg);
    o->nchunks = s->first_seg[s->size];
    size_t mine = (size_t)s->size * o->my_nseg + 1;
    if (grow((void **)&s->lcrc, &s->lcrc_cap, (o->nchunks + 1) * sizeof(uint32_t)) ||
        grow((void **)&s->lflag, &s->lflag_cap, o->nchunks + 1) ||
        grow((void **)&s->rcrc, &s->rcrc_cap, mine * sizeof(uint32_t)) ||
        grow((void **)&s->rflag, &s->rflag_cap, mine) ||
        grow((void **)&s->ckin, &s->ckin_cap, mine * sizeof(uint32_t)))
        return pl_err_set(o->err, PL_ERR_NOMEM, "all-reduce of %zu floats: out of memory", o->n);
    memset(s->lcrc, 0, (o->nchunks + 1) * sizeof(uint32_t));
    memset(s->lflag, 0, o->nchunks + 1);
    memset(s->rflag, 0, mine);
    return PL_OK;
}

/* Queue my contributions: every segment of every other peer's chunk. */
static int queue_grads(op *o)
{
    tcp_state *s = o->s;
    int rc = PL_OK;
    for (int j = 0; j < s->size; j++) {
        if (j == s->rank)
            continue;
        uint32_t ns = nseg_of(chunk_len(o, j), o->seg);
        s->peers[j].exp_rs = o->my_nseg;
        s->peers[j].exp_ag = ns;
        for (uint32_t g = 0; !rc && g < ns; g++) {
            tcp_tx m = {.h = header_to(o, j, PL_WIRE_GRAD), .src = o->data + seg_off(o, j, g)};
            m.h.chunk_index = s->first_seg[j] + g;
            m.h.chunk_count = o->nchunks;
            m.h.elem_offset = seg_off(o, j, g);
            m.h.elem_count = seg_len(o, j, g);
            rc = push(o, j, &m);
        }
    }
    return rc;
}

int tcp_allreduce(void *impl, float *data, size_t n, uint64_t step, int exact, pl_xfer_stats *st,
                  pl_err *err)
{
    static const pl_codec_cfg raw = {.id = PL_CODEC_NONE};
    tcp_state *s = impl;
    pl_err scratch = {0};
    op o = {.s = s, .kind = OP_ALLREDUCE, .step = step, .data = data, .n = n, .st = st,
            .err = err ? err : &scratch, .seg = s->seg_bytes / 4,
            .codec = exact ? &raw : &s->codec, .ag_codec = exact ? &raw : &s->ag_codec};
    if (s->size == 1 || n == 0)
        return PL_OK;
    if (n > UINT32_MAX || n / o.seg > UINT32_MAX / 2)
        return pl_err_set(err, PL_ERR_ARG, "all-reduce of %zu floats: too large (at most %u)", n,
                          UINT32_MAX);
    o.slot_bytes = pl_codec_max_bytes(o.codec, o.seg);
    o.ag_bytes = pl_codec_max_bytes(o.ag_codec, o.seg);
    o.my_nseg = nseg_of(chunk_len(&o, s->rank), o.seg);
    o.sparse_ag = o.codec->id == PL_CODEC_TOPK;
    int rc = begin(&o);
    if (!rc && o.codec->id != PL_CODEC_NONE)
        rc = codecs_for(&o);
    rc = rc ? rc : ar_workspace(&o);
    rc = rc ? rc : queue_grads(&o);
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
            tcp_tx m = {.h = header_to(&o, j, PL_WIRE_MODEL), .src = o.buf + off};
            m.h.chunk_index = g;
            m.h.chunk_count = ns;
            m.h.elem_offset = off;
            m.h.elem_count = len - off < o.seg ? len - off : o.seg;
            rc = push(&o, j, &m);
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
        tcp_tx m = {.h = header_to(&o, j, PL_WIRE_BARRIER)};
        rc = push(&o, j, &m);
    }
    return rc ? rc : run_loop(&o);
}

void tcp_free_workspace(tcp_state *s)
{
    free(s->slots);
    free(s->arrived);
    free(s->first_seg);
    free(s->agenc);
    free(s->acc);
    free(s->lcrc);
    free(s->lflag);
    free(s->rcrc);
    free(s->rflag);
    free(s->ckin);
}
