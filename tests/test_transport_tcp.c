/* test_transport_tcp.c — the tcp:// transport on loopback: all-reduce equals
 * the directly computed sum and is bit-identical across peers (N = 2, 3, 4,
 * several sizes, small segments), codecs within their error, broadcast,
 * barrier, and failures: a killed peer, a silent peer, a peer of another run,
 * a corrupted payload, a stale message (sent by hand in the wire.h format);
 * top-k against a top-k selection computed here; the exact all-reduce
 * interleaved with compressed ones (exact, and codec state untouched);
 * splicing on and off with callers that overwrite their vector at once.
 * Peers are threads (or forked processes where one must die). */
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peerless/transport.h"
#include "test.h"
#include "peerless/compress.h"
#include "peerless/wire.h"
#include "transport/transport_impl.h"

#define MAXN 4
static const size_t sizes[] = {1, 7, 1000, 1000003, 1000000};
#define NSIZES (sizeof sizes / sizeof *sizes)

static char url[256];
static int ports[MAXN];

static void pick_ports(int n)
{
    int len = snprintf(url, sizeof url, "tcp://");
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof a;
        bind(fd, (struct sockaddr *)&a, sizeof a);
        getsockname(fd, (struct sockaddr *)&a, &al);
        ports[i] = ntohs(a.sin_port);
        close(fd);
        len += snprintf(url + len, sizeof url - (size_t)len, "%s127.0.0.1:%d", i ? "," : "", ports[i]);
    }
}

typedef struct peer {
    int rank, size, timeout_ms, connect_ms;
    const char *run, *codec;
    size_t seg_bytes, len0; /* len0: length of data[0] instead of sizes[0] */
    float *data[NSIZES]; /* inputs, replaced by results */
    int nsizes;
    int rc_open, rc[NSIZES];
    pl_err err;
    double seconds;
    pl_xfer_stats st0; /* traffic of the first all-reduce */
    char log[1024];
    pl_transport *t; /* closed by run_peers once every thread is done */
} peer;

static void log_to(void *ctx, const char *line)
{
    peer *p = ctx;
    snprintf(p->log + strlen(p->log), sizeof p->log - strlen(p->log), "%s\n", line);
}

static pl_transport *open_peer(peer *p)
{
    pl_transport_opts o;
    pl_transport_opts_init(&o);
    o.url = url;
    o.rank = p->rank;
    o.size = p->size;
    o.run = p->run ? p->run : "test";
    o.codec = p->codec;
    o.seed = 5;
    o.segment_bytes = p->seg_bytes;
    o.peer_timeout_ms = p->timeout_ms ? p->timeout_ms : 10000;
    o.connect_timeout_ms = p->connect_ms ? p->connect_ms : 10000;
    o.log = log_to;
    o.log_ctx = p;
    pl_transport *t = NULL;
    p->rc_open = pl_transport_open(&o, &t, &p->err);
    return t;
}

/* Open, all-reduce every vector (step = index + 1). A failed peer keeps its
 * connections open so that the others fail on the peer that caused it. */
static void *run_peer(void *arg)
{
    peer *p = arg;
    pl_transport *t = open_peer(p);
    double t0 = pl_tr_now();
    for (int k = 0; t && k < p->nsizes; k++) {
        size_t len = k == 0 && p->len0 ? p->len0 : sizes[k];
        p->rc[k] = pl_transport_allreduce_sum(t, p->data[k], len, (uint64_t)k + 1,
                                              k ? NULL : &p->st0, &p->err);
        if (p->rc[k])
            break;
    }
    p->seconds = pl_tr_now() - t0;
    p->t = t;
    return NULL;
}

static void run_peers(peer *ps, int n)
{
    pthread_t th[MAXN];
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, run_peer, &ps[i]);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++)
        pl_transport_close(ps[i].t);
}

/* n peers all-reduce every size; compare with the sum in rank order and
 * across peers byte for byte. tol = 0: exact; else relative L2 bound. */
static void check_allreduce(int n, const char *codec, size_t seg_bytes, double tol, int nsizes)
{
    peer ps[MAXN];
    memset(ps, 0, sizeof ps);
    pick_ports(n);
    for (int i = 0; i < n; i++) {
        ps[i] = (peer){.rank = i, .size = n, .codec = codec, .seg_bytes = seg_bytes, .nsizes = nsizes};
        for (int k = 0; k < nsizes; k++) {
            ps[i].data[k] = malloc(sizes[k] * sizeof(float));
            pl_test_fill(ps[i].data[k], sizes[k], (unsigned)(100 * i + k), -1, 1);
        }
    }
    run_peers(ps, n);
    for (int i = 0; i < n; i++)
        PL_CHECK(ps[i].rc_open == 0 && ps[i].rc[nsizes - 1] == 0, "N=%d codec %s: rank %d failed: %s",
                 n, codec, i, ps[i].err.msg);
    for (int k = 0; k < nsizes; k++) {
        float *want = malloc(sizes[k] * sizeof(float)), *x = malloc(sizes[k] * sizeof(float));
        pl_test_fill(want, sizes[k], (unsigned)k, -1, 1);
        for (int r = 1; r < n; r++) {
            pl_test_fill(x, sizes[k], (unsigned)(100 * r + k), -1, 1);
            for (size_t e = 0; e < sizes[k]; e++)
                want[e] += x[e];
        }
        if (tol == 0)
            PL_CHECK(!memcmp(ps[0].data[k], want, sizes[k] * 4),
                     "N=%d n=%zu: sum differs from rank-order sum (rel err %g)", n, sizes[k],
                     pl_test_rel_err(ps[0].data[k], want, sizes[k]));
        else if (sizes[k] >= 1000)
            PL_CHECK(pl_test_rel_err(ps[0].data[k], want, sizes[k]) < tol &&
                         pl_test_rel_err(ps[0].data[k], want, sizes[k]) > 1e-7,
                     "N=%d %s n=%zu: rel err %g (expected lossy, < %g)", n, codec, sizes[k],
                     pl_test_rel_err(ps[0].data[k], want, sizes[k]), tol);
        for (int i = 1; i < n; i++)
            PL_CHECK(!memcmp(ps[i].data[k], ps[0].data[k], sizes[k] * 4),
                     "N=%d %s n=%zu: rank %d differs from rank 0", n, codec, sizes[k], i);
        free(want);
        free(x);
        for (int i = 0; i < n; i++)
            free(ps[i].data[k]);
    }
}

static void *bcast_peer(void *arg)
{
    peer *p = arg;
    pl_transport *t = open_peer(p);
    p->rc[0] = t ? pl_transport_broadcast(t, p->data[0], 3000001, 1, 7, &p->err) : -1;
    p->rc[1] = t && !p->rc[0] ? pl_transport_barrier(t, 8, &p->err) : -1;
    pl_transport_close(t);
    return NULL;
}

static void check_broadcast(void)
{
    peer ps[3];
    pthread_t th[3];
    pick_ports(3);
    for (int i = 0; i < 3; i++) {
        ps[i] = (peer){.rank = i, .size = 3, .seg_bytes = 1 << 16};
        ps[i].data[0] = calloc(3000001, 1);
        if (i == 1)
            for (size_t e = 0; e < 3000001; e++)
                ((uint8_t *)ps[i].data[0])[e] = (uint8_t)(e * 2654435761u >> 13);
        pthread_create(&th[i], NULL, bcast_peer, &ps[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) {
        PL_CHECK(ps[i].rc[0] == 0 && ps[i].rc[1] == 0, "broadcast/barrier rank %d: %s", i, ps[i].err.msg);
        PL_CHECK(!memcmp(ps[i].data[0], ps[1].data[0], 3000001), "broadcast: rank %d differs from root", i);
    }
    for (int i = 0; i < 3; i++)
        free(ps[i].data[0]);
}

/* Rank 2 is a forked process: it dies (SIGKILL) after step 1, or (silent)
 * stays connected without ever joining an all-reduce. Ranks 0 and 1 must
 * fail on step 2 within the peer timeout, naming peer 2. */
static void check_lost_peer(int silent)
{
    pick_ports(3);
    pid_t pid = fork();
    if (pid == 0) {
        peer c = {.rank = 2, .size = 3, .nsizes = 1};
        c.data[0] = calloc(1000, 4);
        pl_transport *t = open_peer(&c);
        if (!silent && t)
            pl_transport_allreduce_sum(t, c.data[0], sizes[0], 1, NULL, NULL);
        if (silent)
            sleep(30);
        usleep(200000); /* let the others read step 1 before the connections reset */
        raise(SIGKILL);
    }
    peer ps[2];
    for (int i = 0; i < 2; i++) {
        ps[i] = (peer){.rank = i, .size = 3, .timeout_ms = 800, .nsizes = silent ? 1 : 4};
        for (int k = 0; k < ps[i].nsizes; k++)
            ps[i].data[k] = calloc(sizes[k], 4);
    }
    run_peers(ps, 2);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int k = silent ? 0 : 1;
    for (int i = 0; i < 2; i++) {
        PL_CHECK(ps[i].rc_open == 0, "lost peer: open failed: %s", ps[i].err.msg);
        if (!silent)
            PL_CHECK(ps[i].rc[0] == 0, "lost peer: step 1 failed: %s", ps[i].err.msg);
        PL_CHECK(ps[i].rc[k] != 0 && strstr(ps[i].err.msg, "peer 2 (127.0.0.1:"),
                 "%s peer: rank %d: rc %d, error does not name peer 2: '%s'", silent ? "silent" : "dead",
                 i, ps[i].rc[k], ps[i].err.msg);
        if (silent)
            PL_CHECK(strstr(ps[i].err.msg, "within 800 ms"), "silent peer: no timeout in '%s'", ps[i].err.msg);
        PL_CHECK(ps[i].seconds < 5, "lost peer: rank %d took %.1f s to fail", i, ps[i].seconds);
        for (int j = 0; j < ps[i].nsizes; j++)
            free(ps[i].data[j]);
    }
}

static void check_foreign_run(void)
{
    peer ps[2] = {{.rank = 0, .size = 2, .run = "alpha", .connect_ms = 1500},
                  {.rank = 1, .size = 2, .run = "beta", .connect_ms = 1500}};
    pick_ports(2);
    run_peers(ps, 2);
    PL_CHECK(ps[1].rc_open != 0 && strstr(ps[1].err.msg, "rejected") &&
                 strstr(ps[1].err.msg, "run 'beta' (expected run 'alpha')"),
             "foreign peer: '%s'", ps[1].err.msg);
    PL_CHECK(ps[0].rc_open != 0 && strstr(ps[0].err.msg, "peer 1 (127.0.0.1:") &&
                 strstr(ps[0].err.msg, "run 'beta'"),
             "host of foreign peer: '%s'", ps[0].err.msg);
}

static void *crc_victim(void *arg)
{
    peer *p = arg;
    pl_transport *t = open_peer(p);
    p->rc[0] = t ? pl_transport_allreduce_sum(t, p->data[0], 1000, 3, NULL, &p->err) : -1;
    pl_err again = {0};
    p->rc[1] = t ? pl_transport_barrier(t, 4, &again) : 0;
    PL_CHECK(p->rc[1] != 0 && strstr(again.msg, "failed in an earlier call"),
             "a failed transport accepted another collective: '%s'", again.msg);
    pl_transport_close(t);
    return NULL;
}

static void send_msg(int fd, pl_wire_header *h, const void *payload, size_t len, int corrupt)
{
    uint8_t hb[PL_WIRE_HEADER_SIZE], body[4096];
    memcpy(body, payload, len);
    PL_CHECK(pl_wire_encode_header(h, body, len, hb, sizeof hb, NULL) == PL_OK, "fake peer: encode");
    if (corrupt)
        body[len / 2] ^= 0x10;
    PL_CHECK(send(fd, hb, sizeof hb, 0) == sizeof hb, "fake peer: send header");
    PL_CHECK(send(fd, body, len, 0) == (ssize_t)len, "fake peer: send payload");
}

/* Play rank 1 of a 2-peer run by hand: connect to rank 0 (retrying while
 * it starts) and do the HELLO handshake of `run`; returns the socket. */
static int fake_rank1(const char *run)
{
    int fd = -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ports[0]),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int tries = 0; tries < 200 && fd < 0; tries++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
            close(fd);
            fd = -1;
            usleep(10000);
        }
    }
    uint8_t hello[4 + 64] = {2, 0, 0, 0}, reply[PL_WIRE_HEADER_SIZE + 4 + 64];
    size_t len = 4 + strlen(run);
    memcpy(hello + 4, run, strlen(run));
    pl_wire_header h = {.type = PL_WIRE_HELLO, .run_id = pl_wire_run_id(run), .sender = 1,
                        .receiver = 0, .chunk_count = 1};
    send_msg(fd, &h, hello, len, 0);
    PL_CHECK(recv(fd, reply, PL_WIRE_HEADER_SIZE + len, MSG_WAITALL) == (ssize_t)(PL_WIRE_HEADER_SIZE + len),
             "fake peer: no HELLO reply");
    return fd;
}

/* The main thread plays rank 1 by hand: after the handshake it sends an
 * old-step message (must be discarded and logged), then a contribution
 * whose payload no longer matches its CRC (must be rejected, not applied). */
static void check_corrupt_payload(void)
{
    pick_ports(2);
    peer v = {.rank = 0, .size = 2, .run = "crc", .timeout_ms = 5000};
    float orig[1000];
    uint8_t contrib[12 + 2000]; /* codec none payload: header, 500 floats */
    v.data[0] = malloc(sizeof orig);
    pl_test_fill(v.data[0], 1000, 3, -1, 1);
    memcpy(orig, v.data[0], sizeof orig);
    uint8_t ch[12] = {0, 1, 0, 0, 0xf4, 0x01, 0, 0, 0, 0, 0, 0}; /* none, v1, n = 500 */
    memcpy(contrib, ch, 12);
    pl_test_fill((float *)(contrib + 12), 500, 4, -1, 1);
    pthread_t th;
    pthread_create(&th, NULL, crc_victim, &v);
    int fd = fake_rank1("crc");
    pl_wire_header h = {.run_id = pl_wire_run_id("crc")};
    /* n = 1000 over 2 peers: rank 0 owns [0, 500), one segment of two */
    pl_wire_header rs = {.type = PL_WIRE_GRAD, .run_id = h.run_id, .step = 2, .sender = 1,
                         .receiver = 0, .chunk_index = 0, .chunk_count = 2, .elem_offset = 0,
                         .elem_count = 500};
    send_msg(fd, &rs, contrib, sizeof contrib, 0);
    rs.step = 3;
    send_msg(fd, &rs, contrib, sizeof contrib, 1);
    pthread_join(th, NULL);
    close(fd);
    PL_CHECK(v.rc[0] == PL_ERR_FORMAT && strstr(v.err.msg, "peer 1 (127.0.0.1:") &&
                 strstr(v.err.msg, "CRC"),
             "corrupted payload: rc %d '%s'", v.rc[0], v.err.msg);
    PL_CHECK(!memcmp(v.data[0], orig, 500 * 4), "corrupted payload: reduced into the owner's chunk");
    PL_CHECK(strstr(v.log, "discarded a message from peer 1") && strstr(v.log, "stale"),
             "stale message not logged as discarded: '%s'", v.log);
    free(v.data[0]);
}

static void *late_victim(void *arg)
{
    peer *p = arg;
    pl_transport *t = open_peer(p);
    p->rc[0] = t ? pl_transport_allreduce_sum(t, p->data[0], 1000, 1, NULL, &p->err) : -1;
    pl_transport_close(t);
    return NULL;
}

static void send_late(int fd, pl_wire_header *h, const void *payload, size_t len)
{
    uint8_t hb[PL_WIRE_HEADER_SIZE];
    h->flags = PL_WIRE_F_LATE_CRC;
    PL_CHECK(pl_wire_encode_header_crc(h, len, 0, hb, sizeof hb, NULL) == PL_OK, "fake peer: encode");
    PL_CHECK(send(fd, hb, sizeof hb, 0) == sizeof hb && send(fd, payload, len, 0) == (ssize_t)len,
             "fake peer: send");
}

/* A contribution sent with its CRC late (as a splicing peer does): the main
 * thread plays rank 1, sends its part of rank 0's chunk without a CRC, its
 * own reduced chunk, then (mode 0) the right late CRC: rank 0 ends with the
 * exact sum; (1) a wrong one: rank 0 fails naming peer 1; (2) none: rank 0
 * fails when the peer timeout runs out, saying what it waited for. */
static void check_late_crc(int mode)
{
    pick_ports(2);
    peer v = {.rank = 0, .size = 2, .run = "late", .timeout_ms = 800};
    float orig[1000];
    uint8_t contrib[12 + 2000], red[12 + 2000];
    v.data[0] = malloc(sizeof orig);
    pl_test_fill(v.data[0], 1000, 3, -1, 1);
    memcpy(orig, v.data[0], sizeof orig);
    uint8_t ch[12] = {0, 1, 0, 0, 0xf4, 0x01, 0, 0, 0, 0, 0, 0}; /* none, v1, n = 500 */
    memcpy(contrib, ch, 12);
    memcpy(red, ch, 12);
    pl_test_fill((float *)(contrib + 12), 500, 4, -1, 1);
    pl_test_fill((float *)(red + 12), 500, 5, -1, 1);
    pthread_t th;
    pthread_create(&th, NULL, late_victim, &v);
    int fd = fake_rank1("late");
    pl_wire_header h = {.run_id = pl_wire_run_id("late")};
    pl_wire_header g = {.type = PL_WIRE_GRAD, .run_id = h.run_id, .step = 1, .sender = 1, .receiver = 0,
                        .chunk_index = 0, .chunk_count = 2, .elem_offset = 0, .elem_count = 500};
    send_late(fd, &g, contrib, sizeof contrib);
    pl_wire_header r = g;
    r.type = PL_WIRE_REDUCED;
    r.flags = 0;
    r.chunk_index = 1;
    r.elem_offset = 500;
    send_msg(fd, &r, red, sizeof red, 0);
    uint32_t late = pl_wire_crc32c(0, contrib, sizeof contrib) ^ (mode == 1);
    pl_wire_header c = {.type = PL_WIRE_CHECK, .run_id = h.run_id, .step = 1, .sender = 1,
                        .receiver = 0, .chunk_count = 1, .elem_count = 1};
    if (mode != 2)
        send_msg(fd, &c, &late, 4, 0);
    pthread_join(th, NULL);
    close(fd);
    float want[1000];
    for (int i = 0; i < 500; i++)
        want[i] = orig[i] + ((const float *)(contrib + 12))[i];
    memcpy(want + 500, red + 12, 2000);
    if (mode == 0)
        PL_CHECK(v.rc[0] == 0 && !memcmp(v.data[0], want, sizeof want), "late CRC: rc %d '%s', sum %s",
                 v.rc[0], v.err.msg, memcmp(v.data[0], want, sizeof want) ? "wrong" : "right");
    else
        PL_CHECK(v.rc[0] == PL_ERR_FORMAT + (mode == 2) * (PL_ERR_IO - PL_ERR_FORMAT) &&
                     strstr(v.err.msg, "peer 1 (127.0.0.1:") &&
                     strstr(v.err.msg, mode == 1 ? "late CRC-32C mismatch" : "did not send the late CRCs"),
                 "late CRC mode %d: rc %d '%s'", mode, v.rc[0], v.err.msg);
    free(v.data[0]);
}

/* Top-k (one segment per chunk): each owner adds, in rank order, the
 * k = ceil(R * len) largest magnitudes of every peer's part of its chunk,
 * its own included (reference: pl_test_topk_sum). The sum is
 * sent back exactly: as a sparse topk payload when that is shorter than raw
 * float32 (at most N*k nonzeros), so the traffic is known to the byte. */
static void check_topk(int n, size_t len, double ratio)
{
    char spec[32];
    snprintf(spec, sizeof spec, "topk:%g", ratio);
    peer ps[MAXN];
    memset(ps, 0, sizeof ps);
    pick_ports(n);
    float *in[MAXN];
    for (int i = 0; i < n; i++) {
        ps[i] = (peer){.rank = i, .size = n, .codec = spec, .nsizes = 1, .len0 = len};
        ps[i].data[0] = malloc(len * 4);
        in[i] = malloc(len * 4);
        pl_test_fill(in[i], len, (unsigned)(7 * i + 1), -1, 1);
        memcpy(ps[i].data[0], in[i], len * 4);
    }
    run_peers(ps, n);
    float *want = calloc(len, 4);
    for (int c = 0; c < n; c++)
        pl_test_topk_sum(want, in, n, len * (size_t)c / (size_t)n, len * (size_t)(c + 1) / (size_t)n,
                         ratio);
    size_t grad[MAXN], red[MAXN]; /* payload bytes of a GRAD to / REDUCED from rank c */
    for (int c = 0; c < n; c++) {
        size_t lo = len * (size_t)c / (size_t)n, hi = len * (size_t)(c + 1) / (size_t)n, nz = 0;
        for (size_t e = lo; e < hi; e++)
            nz += want[e] != 0.0f;
        grad[c] = 12 + 8 * (size_t)ceil(ratio * (double)(hi - lo));
        red[c] = 12 + 8 * nz < 12 + 4 * (hi - lo) ? 12 + 8 * nz : 12 + 4 * (hi - lo);
    }
    for (int i = 0; i < n; i++) {
        PL_CHECK(ps[i].rc_open == 0 && ps[i].rc[0] == 0, "topk rank %d: %s", i, ps[i].err.msg);
        PL_CHECK(!memcmp(ps[i].data[0], want, len * 4), "topk N=%d R=%g: rank %d differs from the "
                 "reference (rel err %g)", n, ratio, i, pl_test_rel_err(ps[i].data[0], want, len));
        uint64_t sent = (uint64_t)(n - 1) * (PL_WIRE_HEADER_SIZE + red[i]), recv = 0;
        for (int c = 0; c < n; c++)
            if (c != i) {
                sent += PL_WIRE_HEADER_SIZE + grad[c];
                recv += 2 * PL_WIRE_HEADER_SIZE + grad[i] + red[c];
            }
        PL_CHECK(ps[i].st0.bytes_sent == sent && ps[i].st0.bytes_recv == recv,
                 "topk N=%d R=%g: rank %d sent %llu / received %llu bytes, expected %llu / %llu", n,
                 ratio, i, (unsigned long long)ps[i].st0.bytes_sent,
                 (unsigned long long)ps[i].st0.bytes_recv, (unsigned long long)sent,
                 (unsigned long long)recv);
        free(ps[i].data[0]);
        free(in[i]);
    }
    free(want);
}

/* Exact all-reduce interleaved with compressed ones on one handle:
 * allreduce_sum(a, step 1), allreduce_sum_exact(b, step 2),
 * allreduce_sum(c, step 3); with `skip_exact` the middle call is left out. */
typedef struct ex_peer {
    peer p;
    float *v[3];
    int skip_exact, rc;
} ex_peer;

#define EX_LEN 100003

static void *ex_main(void *arg)
{
    ex_peer *q = arg;
    pl_transport *t = open_peer(&q->p);
    q->rc = t ? PL_OK : -1;
    if (!q->rc)
        q->rc = pl_transport_allreduce_sum(t, q->v[0], EX_LEN, 1, NULL, &q->p.err);
    if (!q->rc && !q->skip_exact)
        q->rc = pl_transport_allreduce_sum_exact(t, q->v[1], EX_LEN, 2, NULL, &q->p.err);
    if (!q->rc)
        q->rc = pl_transport_allreduce_sum(t, q->v[2], EX_LEN, 3, NULL, &q->p.err);
    q->p.t = t;
    return NULL;
}

/* Runs n peers; returns rank 0's result of the third call (caller frees). */
static float *run_exact(int n, const char *codec, int skip_exact)
{
    ex_peer qs[MAXN];
    pthread_t th[MAXN];
    float *ref = malloc(EX_LEN * sizeof *ref), *third = malloc(EX_LEN * sizeof *third);
    memset(qs, 0, sizeof qs);
    pick_ports(n);
    for (int r = 0; r < n; r++) {
        qs[r].p = (peer){.rank = r, .size = n, .codec = codec, .seg_bytes = 65536};
        qs[r].skip_exact = skip_exact;
        for (int k = 0; k < 3; k++) {
            qs[r].v[k] = malloc(EX_LEN * sizeof(float));
            pl_test_fill(qs[r].v[k], EX_LEN, (unsigned)(40 * r + k), -1, 1);
        }
        for (size_t i = 0; i < EX_LEN; i++) /* rank-order float sum of b */
            ref[i] = r ? ref[i] + qs[r].v[1][i] : qs[r].v[1][i];
    }
    for (int r = 0; r < n; r++)
        pthread_create(&th[r], NULL, ex_main, &qs[r]);
    for (int r = 0; r < n; r++)
        pthread_join(th[r], NULL);
    for (int r = 0; r < n; r++) {
        PL_CHECK(qs[r].rc == 0, "exact %s N=%d rank %d: %s", codec, n, r, qs[r].p.err.msg);
        PL_CHECK(skip_exact || !memcmp(qs[r].v[1], ref, EX_LEN * sizeof *ref),
                 "exact %s N=%d rank %d: exact all-reduce is not the rank-order float sum", codec, n, r);
        PL_CHECK(!memcmp(qs[r].v[0], qs[0].v[0], EX_LEN * sizeof(float)) &&
                     !memcmp(qs[r].v[2], qs[0].v[2], EX_LEN * sizeof(float)),
                 "exact %s N=%d: rank %d's compressed results differ from rank 0's", codec, n, r);
    }
    memcpy(third, qs[0].v[2], EX_LEN * sizeof *third);
    for (int r = 0; r < n; r++) {
        pl_transport_close(qs[r].p.t);
        for (int k = 0; k < 3; k++)
            free(qs[r].v[k]);
    }
    free(ref);
    return third;
}

/* The exact call is exact, and leaves the compressed calls' codec state
 * alone: the third (compressed) result is the same with or without it. */
static void check_exact(int n, const char *codec)
{
    float *with = run_exact(n, codec, 0), *without = run_exact(n, codec, 1);
    PL_CHECK(!memcmp(with, without, EX_LEN * sizeof *with),
             "exact %s N=%d: an exact call in between changed the next compressed result", codec, n);
    free(with);
    free(without);
}

/* Splicing (PEERLESS_TCP_SPLICE=on, what 'auto' picks when a host runs more
 * peers than it has CPUs): the raw GRAD bodies go to the kernel by
 * reference, so a caller overwriting its vector right after a call must
 * not change what a peer still has to read. Each peer overwrites its vector
 * with the next round's input as soon as a call returns; every round's sum
 * must still be exact, and bytes_spliced must count every GRAD body byte
 * (N=3, n=3e6: 2 chunks of 4 MB per round, all segments >= 64 KiB). With
 * "off" nothing is spliced; a bad value is refused when opening. */
#define SP_N 3
#define SP_LEN 3000000
#define SP_ROUNDS 3
static float *sp_want[SP_ROUNDS];

typedef struct splice_peer {
    peer p;
    uint64_t spliced, msgs;
    int wrong; /* rounds whose sum differed */
} splice_peer;

static void *run_splice_peer(void *arg)
{
    splice_peer *sp = arg;
    pl_transport *t = open_peer(&sp->p);
    float *x = sp->p.data[0];
    pl_test_fill(x, SP_LEN, (unsigned)(1000 + 10 * sp->p.rank), -1, 1);
    for (int k = 0; t && k < SP_ROUNDS; k++) {
        pl_xfer_stats st = {0};
        sp->p.rc[k] = pl_transport_allreduce_sum(t, x, SP_LEN, (uint64_t)k + 1, &st, &sp->p.err);
        if (sp->p.rc[k])
            break;
        sp->spliced += st.bytes_spliced;
        sp->msgs += st.msgs_sent;
        sp->wrong += memcmp(x, sp_want[k], SP_LEN * sizeof *x) != 0;
        if (k + 1 < SP_ROUNDS) /* at once: the next round's input */
            pl_test_fill(x, SP_LEN, (unsigned)(1000 + 10 * sp->p.rank + k + 1), -1, 1);
    }
    sp->p.t = t;
    return NULL;
}

static void check_splice(const char *mode)
{
    setenv("PEERLESS_TCP_SPLICE", mode, 1);
    float *x = malloc(SP_LEN * sizeof *x);
    for (int k = 0; k < SP_ROUNDS; k++) {
        sp_want[k] = malloc(SP_LEN * sizeof(float));
        pl_test_fill(sp_want[k], SP_LEN, (unsigned)(1000 + k), -1, 1);
        for (int r = 1; r < SP_N; r++) {
            pl_test_fill(x, SP_LEN, (unsigned)(1000 + 10 * r + k), -1, 1);
            for (size_t e = 0; e < SP_LEN; e++)
                sp_want[k][e] += x[e];
        }
    }
    pick_ports(SP_N);
    splice_peer sp[SP_N];
    pthread_t th[SP_N];
    memset(sp, 0, sizeof sp);
    for (int i = 0; i < SP_N; i++) {
        sp[i].p = (peer){.rank = i, .size = SP_N};
        sp[i].p.data[0] = malloc(SP_LEN * sizeof(float));
        pthread_create(&th[i], NULL, run_splice_peer, &sp[i]);
    }
    for (int i = 0; i < SP_N; i++)
        pthread_join(th[i], NULL);
    int on = !strcmp(mode, "on");
    uint64_t want_spliced = on ? SP_ROUNDS * (uint64_t)(SP_LEN / SP_N) * 4 * (SP_N - 1) : 0;
    /* GRAD and REDUCED segments (256 KiB); spliced GRADs' CRCs come late:
     * one CHECK to every owner and one VERIFIED from it */
    uint64_t nseg = (SP_LEN / SP_N * 4 + (256 << 10) - 1) / (256 << 10);
    uint64_t want_msgs = SP_ROUNDS * (2 * (SP_N - 1) * nseg + (on ? 2 * (SP_N - 1) : 0));
    for (int i = 0; i < SP_N; i++) {
        pl_transport_close(sp[i].p.t);
        PL_CHECK(sp[i].p.rc_open == 0 && sp[i].p.rc[SP_ROUNDS - 1] == 0,
                 "splice %s: rank %d failed: %s", mode, i, sp[i].p.err.msg);
        PL_CHECK(sp[i].wrong == 0, "splice %s: rank %d: %d of %d sums wrong", mode, i, sp[i].wrong,
                 SP_ROUNDS);
        PL_CHECK(sp[i].spliced == want_spliced, "splice %s: rank %d spliced %llu bytes, expected %llu",
                 mode, i, (unsigned long long)sp[i].spliced, (unsigned long long)want_spliced);
        PL_CHECK(sp[i].msgs == want_msgs, "splice %s: rank %d sent %llu messages, expected %llu", mode, i,
                 (unsigned long long)sp[i].msgs, (unsigned long long)want_msgs);
        free(sp[i].p.data[0]);
    }
    for (int k = 0; k < SP_ROUNDS; k++)
        free(sp_want[k]);
    free(x);
    unsetenv("PEERLESS_TCP_SPLICE");
}

static void check_splice_flag(void)
{
    setenv("PEERLESS_TCP_SPLICE", "sometimes", 1);
    pick_ports(2);
    peer p = {.rank = 0, .size = 2, .connect_ms = 200};
    pl_transport *t = open_peer(&p);
    PL_CHECK(!t && p.rc_open == PL_ERR_ARG && strstr(p.err.msg, "PEERLESS_TCP_SPLICE='sometimes'") &&
                 strstr(p.err.msg, "auto, on or off"),
             "bad PEERLESS_TCP_SPLICE: rc %d '%s'", p.rc_open, p.err.msg);
    pl_transport_close(t);
    unsetenv("PEERLESS_TCP_SPLICE");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    for (int n = 2; n <= MAXN; n++)
        check_allreduce(n, "none", 0, 0, NSIZES);
    check_allreduce(3, "none", 1024, 0, 4); /* many segments: window and pipelining */
    check_allreduce(3, "fp16", 4096, 2e-3, 4);
    check_allreduce(4, "qsgd8", 0, 0.35, 4);
    check_allreduce(2, "qsgd4:16", 0, 0.9, 4);
    check_allreduce(3, "topk:1", 8192, 0, 4); /* every element sent: exact */
    check_exact(3, "qsgd8");
    check_exact(2, "topk:0.1");
    check_exact(2, "none");
    check_topk(2, 1000, 0.1);  /* sums sent sparse (at most 20 % nonzero) */
    check_topk(3, 1000, 0.25); /* up to 75 % nonzero: sums sent as raw float32 */
    check_topk(4, 100000, 0.01);
    check_broadcast();
    check_lost_peer(0);
    check_lost_peer(1);
    check_foreign_run();
    check_corrupt_payload();
    check_late_crc(0);
    check_late_crc(1);
    check_late_crc(2);
    check_splice("on");
    check_splice("off");
    check_splice_flag();
    PL_TEST_MAIN();
}
