/* test_transport_amqp.c — the amqp:// transport against a private RabbitMQ
 * node: all-reduce equal to the rank-order float sum and bit-identical on
 * every peer (N = 2, 3, 4; patterns scatter and fanout; sizes 1, 7, 1e6 and
 * 1000003; small chunk=), codecs fp16 / qsgd8, broadcast, barrier, a peer
 * that never joins, leaves or stays silent (named in the error within the
 * timeout), messages of another run and corrupted ones (logged, not
 * applied), the broker's 128 MiB message limit against default chunking,
 * URL / credential parsing, the exact all-reduce interleaved with
 * compressed ones (rank-order exact; codec state untouched), and an idle
 * phase of 3 heartbeat intervals between two collectives.
 *
 * The broker URL comes from PEERLESS_AMQP_URL (tests/cli_amqp.sh sets it);
 * without it this binary starts its own node with scripts/rabbitmq.sh and
 * stops it at the end. It never skips. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peerless/compress.h"
#include "peerless/transport.h"
#include "peerless/wire.h"
#include "test.h"
#include "transport/amqp_url.h"
#include "transport/transport_impl.h"

#define MAXN 4
static char base_url[512];
static char url_extra[600]; /* appended to every query of new_run (TLS: &cacert=) */
static int run_counter;

typedef struct peer {
    int rank, size, timeout_ms, connect_ms, skip_open, idle, leave;
    char url[1400], run[64];
    const char *codec;
    float *data;
    size_t n;
    uint64_t step;
    int rc_open, rc;
    pl_err err;
    pl_xfer_stats st;
    char log[4096];
    pthread_barrier_t *gate; /* if set: wait here between open and all-reduce */
} peer;

static void log_to(void *ctx, const char *line)
{
    peer *p = ctx;
    size_t l = strlen(p->log);
    snprintf(p->log + l, sizeof p->log - l, "%s\n", line);
}

static void *peer_main(void *arg)
{
    peer *p = arg;
    pl_transport_opts o;
    pl_transport_opts_init(&o);
    o.url = p->url;
    o.rank = p->rank;
    o.size = p->size;
    o.run = p->run;
    o.peer_timeout_ms = p->timeout_ms ? p->timeout_ms : 20000;
    o.connect_timeout_ms = p->connect_ms ? p->connect_ms : 20000;
    o.codec = p->codec;
    o.seed = 7;
    o.log = log_to;
    o.log_ctx = p;
    pl_transport *t = NULL;
    p->rc_open = pl_transport_open(&o, &t, &p->err);
    if (p->gate) { /* main publishes between the two waits */
        pthread_barrier_wait(p->gate);
        pthread_barrier_wait(p->gate);
    }
    if (p->rc_open)
        return NULL;
    if (p->leave) {
        pl_transport_close(t);
        return NULL;
    }
    if (p->idle)
        usleep((useconds_t)p->idle * 1000);
    else
        p->rc = pl_transport_allreduce_sum(t, p->data, p->n, p->step, &p->st, &p->err);
    pl_transport_close(t);
    return NULL;
}

static void new_run(peer *ps, int n, const char *query)
{
    char run[64];
    snprintf(run, sizeof run, "t%d-%d", (int)getpid(), run_counter++);
    for (int r = 0; r < n; r++) {
        memset(&ps[r], 0, sizeof ps[r]);
        ps[r].rank = r;
        ps[r].size = n;
        snprintf(ps[r].run, sizeof ps[r].run, "%s", run);
        snprintf(ps[r].url, sizeof ps[r].url, "%s%s%s", base_url, query, url_extra);
    }
}

static void run_peers(peer *ps, int n)
{
    pthread_t th[MAXN];
    for (int r = 0; r < n; r++)
        if (!ps[r].skip_open)
            pthread_create(&th[r], NULL, peer_main, &ps[r]);
    for (int r = 0; r < n; r++)
        if (!ps[r].skip_open)
            pthread_join(th[r], NULL);
}

/* Inputs of rank r; ref = ((x0 + x1) + x2) + ... in float, rank order. */
static void make_inputs(peer *ps, int n, size_t len, float *ref)
{
    for (int r = 0; r < n; r++) {
        ps[r].data = malloc((len ? len : 1) * sizeof(float));
        ps[r].n = len;
        pl_test_fill(ps[r].data, len, 100u + (unsigned)r, -1.f, 1.f);
        for (size_t i = 0; i < len; i++)
            ref[i] = r ? ref[i] + ps[r].data[i] : ps[r].data[i];
    }
}

static void free_inputs(peer *ps, int n)
{
    for (int r = 0; r < n; r++)
        free(ps[r].data);
}

static void check_sum(int n, size_t len, const char *pattern, const char *chunk)
{
    peer ps[MAXN];
    char q[128];
    snprintf(q, sizeof q, "?pattern=%s%s%s", pattern, chunk ? "&chunk=" : "", chunk ? chunk : "");
    new_run(ps, n, q);
    float *ref = malloc((len ? len : 1) * sizeof *ref);
    make_inputs(ps, n, len, ref);
    run_peers(ps, n);
    for (int r = 0; r < n; r++) {
        PL_CHECK(ps[r].rc_open == 0 && ps[r].rc == 0, "%s N=%d n=%zu rank %d: %s", pattern, n, len, r,
                 ps[r].err.msg);
        PL_CHECK(!memcmp(ps[r].data, ref, len * sizeof *ref), "%s N=%d n=%zu chunk=%s rank %d: result is "
                 "not the rank-order sum", pattern, n, len, chunk ? chunk : "default", r);
    }
    if (len > 1000)
        printf("%s N=%d n=%zu chunk=%s: rank 0 sent %llu bytes in %llu messages\n", pattern, n, len,
               chunk ? chunk : "default", (unsigned long long)ps[0].st.bytes_sent,
               (unsigned long long)ps[0].st.msgs_sent);
    free(ref);
    free_inputs(ps, n);
}

static void test_sums(void)
{
    static const size_t sizes[] = {1, 7, 1000000, 1000003};
    static const char *const patterns[] = {"scatter", "fanout"};
    for (int p = 0; p < 2; p++)
        for (int n = 2; n <= MAXN; n++)
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
                check_sum(n, sizes[s], patterns[p], n == 3 && sizes[s] >= 1000000 ? "65536" : NULL);
}

static uint64_t sent_bytes(const char *pattern, int n, size_t len)
{
    peer ps[MAXN];
    char q[64];
    snprintf(q, sizeof q, "?pattern=%s", pattern);
    new_run(ps, n, q);
    float *ref = malloc(len * sizeof *ref);
    make_inputs(ps, n, len, ref);
    run_peers(ps, n);
    uint64_t b = ps[0].st.bytes_sent;
    free(ref);
    free_inputs(ps, n);
    return b;
}

/* scatter moves 2(N-1)/N of the vector per peer (the result once: the
 * broker copies it to the N-1 others), fanout one whole vector. */
static void test_bytes(void)
{
    size_t len = 1000000;
    uint64_t sc = sent_bytes("scatter", 4, len), fo = sent_bytes("fanout", 4, len);
    PL_CHECK(sc >= len * 4 * 3 / 4 + len && sc < len * 4 * 3 / 4 + len + 4096,
             "scatter N=4 sent %llu bytes, expected 3/4 + 1/4 of %zu", (unsigned long long)sc, len * 4);
    PL_CHECK(fo >= len * 4 && fo < len * 4 + 4096, "fanout N=4 sent %llu bytes, expected %zu",
             (unsigned long long)fo, len * 4);
}

static void test_codecs(void)
{
    static const char *const patterns[] = {"scatter", "fanout"};
    static const char *const codecs[] = {"fp16", "qsgd8"};
    static const double tol[] = {2e-3, 0.3};
    size_t len = 100003;
    for (int p = 0; p < 2; p++)
        for (int c = 0; c < 2; c++) {
            peer ps[MAXN];
            char q[64];
            snprintf(q, sizeof q, "?pattern=%s&chunk=65536", patterns[p]);
            new_run(ps, 3, q);
            float *ref = malloc(len * sizeof *ref);
            make_inputs(ps, 3, len, ref);
            for (int r = 0; r < 3; r++)
                ps[r].codec = codecs[c];
            run_peers(ps, 3);
            double e = pl_test_rel_err(ps[0].data, ref, len);
            PL_CHECK(e < tol[c] && e > 0, "%s %s: relative error %g (expected in (0, %g))", patterns[p],
                     codecs[c], e, tol[c]);
            for (int r = 0; r < 3; r++) {
                PL_CHECK(ps[r].rc_open == 0 && ps[r].rc == 0, "%s %s rank %d: %s", patterns[p], codecs[c], r,
                         ps[r].err.msg);
                PL_CHECK(!memcmp(ps[r].data, ps[0].data, len * sizeof(float)), "%s %s: rank %d differs "
                         "from rank 0", patterns[p], codecs[c], r);
            }
            PL_CHECK(ps[0].st.bytes_sent < len * 4 * 2 / 3 + 4096, "%s %s: %llu bytes sent, no saving",
                     patterns[p], codecs[c], (unsigned long long)ps[0].st.bytes_sent);
            free(ref);
            free_inputs(ps, 3);
        }
}

/* Top-k: every contribution, the peer's own included, is its top-k within
 * a piece (here one piece per owner range for scatter, the whole vector for
 * fanout), and the sum reaches every peer exactly (scatter: as a sparse
 * topk payload of at most N*k nonzeros); traffic a few % of raw. */
static void test_topk(void)
{
    static const char *const patterns[] = {"scatter", "fanout"};
    size_t len = 30000;
    double ratio = 0.01;
    for (int p = 0; p < 2; p++) {
        peer ps[MAXN];
        char q[64];
        snprintf(q, sizeof q, "?pattern=%s&chunk=65536", patterns[p]);
        new_run(ps, 3, q);
        float *ref = malloc(len * sizeof *ref), *want = malloc(len * sizeof *want), *in[3];
        make_inputs(ps, 3, len, ref);
        for (int r = 0; r < 3; r++) {
            ps[r].codec = "topk:0.01";
            in[r] = malloc(len * sizeof(float));
            memcpy(in[r], ps[r].data, len * sizeof(float));
        }
        for (int c = 0; c < (p ? 1 : 3); c++)
            pl_test_topk_sum(want, in, 3, p ? 0 : len * (size_t)c / 3, p ? len : len * (size_t)(c + 1) / 3,
                             ratio);
        run_peers(ps, 3);
        for (int r = 0; r < 3; r++) {
            PL_CHECK(ps[r].rc_open == 0 && ps[r].rc == 0, "%s topk rank %d: %s", patterns[p], r, ps[r].err.msg);
            PL_CHECK(!memcmp(ps[r].data, want, len * sizeof(float)), "%s topk: rank %d is not the sum of "
                     "every peer's top-k (rel err %g)", patterns[p], r, pl_test_rel_err(ps[r].data, want, len));
            PL_CHECK(ps[r].st.bytes_sent < len * 4 / 10, "%s topk: rank %d sent %llu bytes, expected < %zu",
                     patterns[p], r, (unsigned long long)ps[r].st.bytes_sent, len * 4 / 10);
            free(in[r]);
        }
        free(ref);
        free(want);
        free_inputs(ps, 3);
    }
}

typedef struct bc_peer {
    peer p;
    unsigned char *a, *b;
    size_t la, lb;
    int rc;
} bc_peer;

static void *bc_main(void *arg)
{
    bc_peer *q = arg;
    pl_transport_opts o;
    pl_transport_opts_init(&o);
    o.url = q->p.url;
    o.rank = q->p.rank;
    o.size = q->p.size;
    o.run = q->p.run;
    o.log = log_to;
    o.log_ctx = &q->p;
    pl_transport *t = NULL;
    q->rc = pl_transport_open(&o, &t, &q->p.err);
    /* two broadcasts at the same step (as the peer sends parameters and
     * buffers), then barriers */
    if (!q->rc)
        q->rc = pl_transport_broadcast(t, q->a, q->la, 1, 0, &q->p.err);
    if (!q->rc)
        q->rc = pl_transport_broadcast(t, q->b, q->lb, 1, 0, &q->p.err);
    for (uint64_t s = 0; !q->rc && s < 3; s++)
        q->rc = pl_transport_barrier(t, s, &q->p.err);
    pl_transport_close(t);
    return NULL;
}

static void test_broadcast_barrier(void)
{
    bc_peer qs[3];
    peer ps[3];
    new_run(ps, 3, "?chunk=65536");
    size_t la = 200003, lb = 5;
    for (int r = 0; r < 3; r++) {
        qs[r].p = ps[r];
        qs[r].la = la;
        qs[r].lb = lb;
        qs[r].a = calloc(la, 1);
        qs[r].b = calloc(lb, 1);
        for (size_t i = 0; r == 1 && i < la; i++)
            qs[r].a[i] = (unsigned char)(i * 7 + 3);
        for (size_t i = 0; r == 1 && i < lb; i++)
            qs[r].b[i] = (unsigned char)(200 + i);
    }
    pthread_t th[3];
    for (int r = 0; r < 3; r++)
        pthread_create(&th[r], NULL, bc_main, &qs[r]);
    for (int r = 0; r < 3; r++)
        pthread_join(th[r], NULL);
    for (int r = 0; r < 3; r++) {
        PL_CHECK(qs[r].rc == 0, "broadcast/barrier rank %d: %s", r, qs[r].p.err.msg);
        PL_CHECK(!memcmp(qs[r].a, qs[1].a, la) && !memcmp(qs[r].b, qs[1].b, lb),
                 "broadcast: rank %d differs from root 1", r);
    }
    for (int r = 0; r < 3; r++) {
        free(qs[r].a);
        free(qs[r].b);
    }
}

static void test_failures(void)
{
    peer ps[MAXN];
    /* rank 2 never joins: open fails within the connect timeout naming it */
    new_run(ps, 3, "");
    ps[2].skip_open = 1;
    for (int r = 0; r < 2; r++)
        ps[r].connect_ms = 1500;
    double t0 = pl_tr_now();
    run_peers(ps, 3);
    double took = pl_tr_now() - t0;
    for (int r = 0; r < 2; r++)
        PL_CHECK(ps[r].rc_open != 0 && strstr(ps[r].err.msg, "rank 2 did not join"),
                 "never joined: rank %d: %d '%s'", r, ps[r].rc_open, ps[r].err.msg);
    PL_CHECK(took < 5, "never joined: took %.1f s", took);

    static const char *const patterns[] = {"scatter", "fanout"};
    for (int p = 0; p < 2; p++)
        for (int mode = 0; mode < 2; mode++) {
            char q[64];
            snprintf(q, sizeof q, "?pattern=%s", patterns[p]);
            new_run(ps, 3, q);
            float ref[1000];
            make_inputs(ps, 3, 1000, ref);
            for (int r = 0; r < 3; r++)
                ps[r].timeout_ms = 1500;
            if (mode == 0)
                ps[2].leave = 1; /* closes its connection: its queue goes */
            else
                ps[2].idle = 5000; /* silent 3.5 s past the 1.5 s timeout (margin for load) */
            t0 = pl_tr_now();
            run_peers(ps, 3);
            for (int r = 0; r < 2; r++)
                PL_CHECK(ps[r].rc != 0 && strstr(ps[r].err.msg, "rank 2"),
                         "%s, rank 2 %s: rank %d: %d '%s'", patterns[p], mode ? "silent" : "left", r,
                         ps[r].rc, ps[r].err.msg);
            printf("%s, rank 2 %s: rank 0 says: %s\n", patterns[p], mode ? "silent" : "left", ps[0].err.msg);
            free_inputs(ps, 3);
        }
}

/* Publish body into the queue of `rank` of run `run` from a separate
 * connection. Returns the broker's verdict (0 = published and confirmed). */
static int raw_publish(const char *run, int rank, const void *body, size_t len, char *why, size_t cap)
{
    pl_amqp_url u;
    pl_err e = {0};
    const char *addr = strstr(base_url, "://") + 3;
    if (pl_amqp_url_parse(addr, 0, &u, &e))
        return snprintf(why, cap, "%.200s", e.msg), -1;
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    int rc = amqp_socket_open(s, u.host, u.port);
    amqp_rpc_reply_t r = {0};
    if (!rc)
        r = amqp_login(c, u.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, u.user, u.password);
    if (!rc && r.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_channel_open(c, 1);
        amqp_confirm_select(c, 1);
        r = amqp_get_rpc_reply(c);
    }
    if (rc || r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(why, cap, "cannot connect to %.200s", base_url);
        amqp_destroy_connection(c);
        return -1;
    }
    char ex[128], key[16];
    snprintf(ex, sizeof ex, "peerless.%s", run);
    snprintf(key, sizeof key, "r%d", rank);
    amqp_bytes_t b = {.len = len, .bytes = (void *)body};
    rc = amqp_basic_publish(c, 1, amqp_cstring_bytes(ex), amqp_cstring_bytes(key), 1, 0, NULL, b);
    amqp_frame_t f;
    int out = rc;
    if (!rc) {
        rc = amqp_simple_wait_frame(c, &f);
        out = rc || f.frame_type != AMQP_FRAME_METHOD || f.payload.method.id != AMQP_BASIC_ACK_METHOD;
        if (out && !rc && f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = f.payload.method.decoded;
            snprintf(why, cap, "%u %.*s", m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
        }
    }
    if (!out)
        amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return out;
}

/* A GRAD message for piece 0 (elements 0..500 of 1000, owner rank 0 under
 * scatter with N = 2) from "rank 1", step 0, holding 1e6 in every element. */
static size_t forged(uint8_t *buf, const char *run)
{
    pl_codec_cfg cfg = {.id = PL_CODEC_NONE};
    pl_codec *c = NULL;
    float x[500];
    for (int i = 0; i < 500; i++)
        x[i] = 1e6f;
    size_t len = 0;
    pl_codec_create(&cfg, 1000, 1, &c, NULL);
    pl_codec_encode(c, x, 500, 0, buf + PL_WIRE_HEADER_SIZE, 4096, &len, NULL);
    pl_codec_destroy(c);
    pl_wire_header h = {.type = PL_WIRE_GRAD, .sender = 1, .run_id = pl_wire_run_id(run), .step = 0,
                        .receiver = 0, .chunk_count = 2, .elem_count = 500};
    pl_wire_encode_header(&h, buf + PL_WIRE_HEADER_SIZE, len, buf, PL_WIRE_HEADER_SIZE, NULL);
    return PL_WIRE_HEADER_SIZE + len;
}

static void test_foreign(void)
{
    peer ps[2];
    new_run(ps, 2, "?pattern=scatter");
    float ref[1000];
    make_inputs(ps, 2, 1000, ref);
    pthread_barrier_t gate;
    pthread_barrier_init(&gate, NULL, 3);
    pthread_t th[2];
    for (int r = 0; r < 2; r++) {
        ps[r].gate = &gate;
        pthread_create(&th[r], NULL, peer_main, &ps[r]);
    }
    pthread_barrier_wait(&gate); /* both queues exist, no all-reduce yet */
    uint8_t buf[PL_WIRE_HEADER_SIZE + 4096];
    char why[256] = "";
    size_t len = forged(buf, "another-run");
    PL_CHECK(raw_publish(ps[0].run, 0, buf, len, why, sizeof why) == 0, "publishing foreign run: %s", why);
    len = forged(buf, ps[0].run);
    buf[PL_WIRE_HEADER_SIZE + 100] ^= 0x40; /* payload no longer matches its CRC */
    PL_CHECK(raw_publish(ps[0].run, 0, buf, len, why, sizeof why) == 0, "publishing corrupt: %s", why);
    PL_CHECK(raw_publish(ps[0].run, 0, "junk", 4, why, sizeof why) == 0, "publishing junk: %s", why);
    pthread_barrier_wait(&gate);
    for (int r = 0; r < 2; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&gate);
    for (int r = 0; r < 2; r++) {
        PL_CHECK(ps[r].rc_open == 0 && ps[r].rc == 0, "foreign: rank %d: %s", r, ps[r].err.msg);
        PL_CHECK(!memcmp(ps[r].data, ref, sizeof ref), "foreign: rank %d applied a forged message", r);
    }
    PL_CHECK(strstr(ps[0].log, "another run") != NULL, "foreign run not logged: %s", ps[0].log);
    PL_CHECK(strstr(ps[0].log, "rejected a grad message (corrupt)") != NULL, "corrupt not logged: %s",
             ps[0].log);
    PL_CHECK(strstr(ps[0].log, "rejected a 4-byte message") != NULL, "junk not logged: %s", ps[0].log);
    free_inputs(ps, 2);
}

/* The broker refuses one byte over 128 MiB; 40M floats (160 MB) still go
 * through with the default chunking. */
static void test_big(void)
{
    size_t big = (size_t)128 * 1024 * 1024 + 1;
    uint8_t *body = calloc(big, 1);
    char why[256] = "";
    peer ps[2];
    new_run(ps, 1, "");
    /* a queue must exist for the route: use a 1-peer run's queue */
    pl_transport_opts o;
    pl_transport_opts_init(&o);
    o.url = base_url;
    o.run = ps[0].run;
    pl_transport *t = NULL;
    pl_err e = {0};
    PL_CHECK(pl_transport_open(&o, &t, &e) == 0, "1-peer open: %s", e.msg);
    PL_CHECK(body && raw_publish(ps[0].run, 0, body, big, why, sizeof why) != 0 && strstr(why, "406"),
             "broker accepted a 128 MiB + 1 byte message (%s)", why);
    pl_transport_close(t);
    free(body);

    check_sum(2, 40000000, "scatter", NULL);
}

static void test_url(void)
{
    pl_amqp_url u;
    pl_err e = {0};
    PL_CHECK(pl_amqp_url_parse("al%40x:p%3Aw@broker.example:1234/v%2Fh?pattern=fanout&chunk=4096", 0, &u,
                               &e) == 0, "%s", e.msg);
    PL_CHECK(!strcmp(u.user, "al@x") && !strcmp(u.password, "p:w") && !strcmp(u.host, "broker.example") &&
                 u.port == 1234 && !strcmp(u.vhost, "v/h") && u.pattern == PL_AMQP_FANOUT && u.chunk == 4096,
             "parsed %s %s %s %d %s", u.user, u.password, u.host, u.port, u.vhost);
    PL_CHECK(pl_amqp_url_parse("localhost", 1, &u, &e) == 0 && u.port == 5671 && !strcmp(u.vhost, "/") &&
                 u.chunk == PL_AMQP_CHUNK_DEFAULT && u.pattern == PL_AMQP_SCATTER && u.verify,
             "defaults: %s", e.msg);
    PL_CHECK(pl_amqp_url_parse("h?chunk=134217729", 0, &u, &e) == PL_ERR_ARG && strstr(e.msg, "chunk"),
             "chunk over the broker limit accepted: %s", e.msg);
    PL_CHECK(pl_amqp_url_parse("u:p@h?pattern=ring", 0, &u, &e) == PL_ERR_ARG && strstr(e.msg, "ring"),
             "bad pattern: %s", e.msg);
    PL_CHECK(pl_amqp_url_parse("u:p@h?connect_timeout=5&heartbeat=2", 0, &u, &e) == 0 &&
                 u.connect_timeout_s == 5 && u.heartbeat_s == 2, "connect_timeout: %s", e.msg);
    PL_CHECK(pl_amqp_url_parse("u:p@h?connect_timeout=0", 0, &u, &e) == PL_ERR_ARG &&
                 strstr(e.msg, "connect_timeout"), "connect_timeout=0 accepted: %s", e.msg);
    PL_CHECK(pl_amqp_url_parse("u:p@h:99999", 0, &u, &e) == PL_ERR_ARG, "bad port accepted");
    PL_CHECK(pl_amqp_url_parse("u:p@h/%zz", 0, &u, &e) == PL_ERR_ARG, "bad escape accepted");
    /* credentials: environment, then config file; none for a remote host */
    char cfg[600];
    snprintf(cfg, sizeof cfg, "%s/amqp-cred", pl_test_tmpdir());
    FILE *f = fopen(cfg, "w");
    fputs("# test\nuser = carol\npassword = s3 cret\n", f);
    fclose(f);
    unsetenv("PEERLESS_AMQP_USER");
    setenv("PEERLESS_AMQP_CONFIG", cfg, 1);
    PL_CHECK(pl_amqp_url_parse("broker.example", 0, &u, &e) == 0 && !strcmp(u.user, "carol") &&
                 !strcmp(u.password, "s3 cret"), "config file: %s '%s'", e.msg, u.user);
    setenv("PEERLESS_AMQP_USER", "dave", 1);
    setenv("PEERLESS_AMQP_PASSWORD", "pw", 1);
    PL_CHECK(pl_amqp_url_parse("broker.example", 0, &u, &e) == 0 && !strcmp(u.user, "dave") &&
                 !strcmp(u.password, "pw"), "environment: %s", e.msg);
    unsetenv("PEERLESS_AMQP_USER");
    unsetenv("PEERLESS_AMQP_PASSWORD");
    strcat(cfg, ".missing");
    setenv("PEERLESS_AMQP_CONFIG", cfg, 1);
    PL_CHECK(pl_amqp_url_parse("broker.example", 0, &u, &e) != 0, "remote host got default credentials");
    unsetenv("PEERLESS_AMQP_CONFIG");
}

static char node_dir[600];

static char scripts[512]; /* this file's ../scripts */
static char tls_node[600]; /* a node started by scripts/rabbitmq.sh: its TLS URL */

/* First line printed by `scripts/rabbitmq.sh CMD DIR` into out. */
static void node_cmd(const char *cmd, const char *dir, char *out, size_t len)
{
    char line[1400];
    snprintf(line, sizeof line, "bash '%s/rabbitmq.sh' %s '%s'", scripts, cmd, dir);
    FILE *p = popen(line, "r");
    if (!p || !fgets(out, (int)len, p))
        out[0] = '\0';
    if (p)
        pclose(p);
    out[strcspn(out, "\n")] = '\0';
}

/* The broker: PEERLESS_AMQP_NODE (a node another script started with
 * scripts/rabbitmq.sh, e.g. cli_amqp.sh), PEERLESS_AMQP_URL (any broker), or
 * a private node started here and stopped at the end. */
static void start_node(void)
{
    snprintf(scripts, sizeof scripts, "%s", __FILE__);
    char *slash = strrchr(scripts, '/');
    snprintf(slash ? slash : scripts, sizeof scripts - (size_t)(slash ? slash - scripts : 0), "%s",
             slash ? "/../scripts" : "scripts");
    const char *node = getenv("PEERLESS_AMQP_NODE");
    if (node && *node) {
        snprintf(tls_node, sizeof tls_node, "%s", node);
        node_cmd("url", node, base_url, sizeof base_url);
        return;
    }
    const char *env = getenv("PEERLESS_AMQP_URL");
    if (env && *env) {
        snprintf(base_url, sizeof base_url, "%s", env);
        return;
    }
    snprintf(node_dir, sizeof node_dir, "%s/rabbitmq-%d", pl_test_tmpdir(), (int)getpid());
    snprintf(tls_node, sizeof tls_node, "%s", node_dir);
    node_cmd("start", node_dir, base_url, sizeof base_url);
}

static void stop_node(void)
{
    char out[64];
    if (node_dir[0])
        node_cmd("stop", node_dir, out, sizeof out);
}

static pl_transport *open_peer(peer *p)
{
    pl_transport_opts o;
    pl_transport_opts_init(&o);
    o.url = p->url;
    o.rank = p->rank;
    o.size = p->size;
    o.run = p->run;
    o.peer_timeout_ms = p->timeout_ms ? p->timeout_ms : 20000;
    o.codec = p->codec;
    o.seed = 7;
    o.log = log_to;
    o.log_ctx = p;
    pl_transport *t = NULL;
    p->rc_open = pl_transport_open(&o, &t, &p->err);
    return t;
}

/* Exact all-reduce interleaved with compressed ones on one handle:
 * allreduce_sum(a, step 1), allreduce_sum_exact(b, step 2),
 * allreduce_sum(c, step 3); with `skip_exact` the middle call is left out;
 * with `idle` seconds of silence between the first two calls. */
typedef struct ex_peer {
    peer p;
    float *v[3];
    int skip_exact, idle_s;
} ex_peer;

#define EX_LEN 100003

static void *ex_main(void *arg)
{
    ex_peer *q = arg;
    pl_transport *t = open_peer(&q->p);
    int rc = q->p.rc_open;
    if (!rc)
        rc = pl_transport_allreduce_sum(t, q->v[0], EX_LEN, 1, NULL, &q->p.err);
    if (!rc && q->idle_s)
        sleep((unsigned)q->idle_s);
    if (!rc && !q->skip_exact)
        rc = pl_transport_allreduce_sum_exact(t, q->v[1], EX_LEN, 2, &q->p.st, &q->p.err);
    if (!rc)
        rc = pl_transport_allreduce_sum(t, q->v[2], EX_LEN, 3, NULL, &q->p.err);
    q->p.rc = rc;
    pl_transport_close(t);
    return NULL;
}

/* Runs n peers; returns rank 0's result of the third call (caller frees). */
static float *run_exact(int n, const char *query, const char *codec, int skip_exact, int idle_s)
{
    ex_peer qs[MAXN];
    peer ps[MAXN];
    pthread_t th[MAXN];
    float *ref = malloc(EX_LEN * sizeof *ref), *third = malloc(EX_LEN * sizeof *third);
    new_run(ps, n, query);
    for (int r = 0; r < n; r++) {
        memset(&qs[r], 0, sizeof qs[r]);
        qs[r].p = ps[r];
        qs[r].p.codec = codec;
        qs[r].skip_exact = skip_exact;
        qs[r].idle_s = idle_s;
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
        PL_CHECK(qs[r].p.rc_open == 0 && qs[r].p.rc == 0, "exact %s%s N=%d rank %d: %s", codec, query, n, r,
                 qs[r].p.err.msg);
        PL_CHECK(skip_exact || !memcmp(qs[r].v[1], ref, EX_LEN * sizeof *ref),
                 "exact %s%s N=%d rank %d: exact all-reduce is not the rank-order float sum", codec, query,
                 n, r);
        PL_CHECK(!memcmp(qs[r].v[0], qs[0].v[0], EX_LEN * sizeof(float)) &&
                     !memcmp(qs[r].v[2], qs[0].v[2], EX_LEN * sizeof(float)),
                 "exact %s%s N=%d: rank %d's compressed results differ from rank 0's", codec, query, n, r);
    }
    PL_CHECK(skip_exact || qs[0].p.st.bytes_sent >= EX_LEN * 4 * (size_t)(n - 1) / (size_t)n,
             "exact %s%s N=%d: %llu bytes sent: compressed?", codec, query, n,
             (unsigned long long)qs[0].p.st.bytes_sent);
    memcpy(third, qs[0].v[2], EX_LEN * sizeof *third);
    for (int r = 0; r < n; r++)
        for (int k = 0; k < 3; k++)
            free(qs[r].v[k]);
    free(ref);
    return third;
}

/* The exact call is exact, and leaves the compressed calls' codec state
 * alone: the third (compressed) result is the same with or without it. */
static void test_exact(void)
{
    static const char *const queries[] = {"?pattern=scatter&chunk=65536", "?pattern=fanout"};
    static const char *const codecs[] = {"qsgd8", "topk:0.1"};
    for (int q = 0; q < 2; q++) {
        float *with = run_exact(3, queries[q], codecs[q], 0, 0);
        float *without = run_exact(3, queries[q], codecs[q], 1, 0);
        PL_CHECK(!memcmp(with, without, EX_LEN * sizeof *with), "exact %s%s: an exact call in between "
                 "changed the next compressed result", codecs[q], queries[q]);
        free(with);
        free(without);
    }
}

/* A compute phase three times the heartbeat interval between two
 * collectives: the broker (which drops a connection after two missed
 * heartbeats) must not have closed the idle peers' connections. */
static void test_heartbeat(void)
{
    double t0 = pl_tr_now();
    free(run_exact(2, "?heartbeat=2", "fp16", 0, 6));
    printf("heartbeat=2 with 6 s idle between collectives: ok in %.1f s\n", pl_tr_now() - t0);
}

/* Rank 0 of 2 opening base_url + url_extra is refused in the TLS handshake
 * (quickly: such errors are not retried). */
static void expect_tls_refused(const char *what)
{
    peer ps[MAXN];
    new_run(ps, 2, "?connect_timeout=5");
    ps[1].skip_open = 1;
    run_peers(ps, 1);
    PL_CHECK(ps[0].rc_open != 0 && strstr(ps[0].err.msg, "TLS connection failed"), "amqps %s: rc %d '%s'",
             what, ps[0].rc_open, ps[0].err.msg);
}

/* amqps:// against the private node's TLS listener (certificate for
 * 127.0.0.1 signed by a CA made for the node): exact sums in both patterns;
 * a CA that did not sign it is refused with a TLS error; verify=0 (insecure,
 * testing only) connects anyway. */
static void test_tls(void)
{
    char tls[512] = "", cacert[512] = "";
    const char *env = getenv("PEERLESS_AMQPS_URL");
    if (env && *env) {
        snprintf(tls, sizeof tls, "%s", env);
        snprintf(cacert, sizeof cacert, "%s", getenv("PEERLESS_AMQP_CACERT") ? getenv("PEERLESS_AMQP_CACERT") : "");
    } else if (tls_node[0]) {
        node_cmd("tls-url", tls_node, tls, sizeof tls);
        char *q = strstr(tls, "?cacert=");
        if (q) {
            snprintf(cacert, sizeof cacert, "%s", q + 8);
            *q = '\0';
        }
    }
    PL_CHECK(tls[0] != '\0', "no TLS broker: with PEERLESS_AMQP_URL set PEERLESS_AMQPS_URL (amqps://..., no "
             "query) and PEERLESS_AMQP_CACERT too, or PEERLESS_AMQP_NODE (scripts/rabbitmq.sh start DIR)");
    if (!tls[0])
        return;
    char plain[512];
    snprintf(plain, sizeof plain, "%s", base_url);
    snprintf(base_url, sizeof base_url, "%s", tls);
    snprintf(url_extra, sizeof url_extra, "%s%s", cacert[0] ? "&cacert=" : "", cacert);
    check_sum(3, 1000003, "scatter", "65536");
    check_sum(3, 1000003, "fanout", "65536");
    check_sum(2, 7, "scatter", NULL);
    snprintf(url_extra, sizeof url_extra, "&cacert=/etc/ssl/certs/ca-certificates.crt");
    expect_tls_refused("with a CA that did not sign the broker's certificate");
    snprintf(url_extra, sizeof url_extra, "&cacert=/etc/ssl/certs/ca-certificates.crt&verify=0");
    check_sum(2, 1000, "scatter", NULL);
    /* by name (the certificate's DNS entry) works; by an address it does not
     * list (the node's second TLS listener, 127.0.0.2) is refused */
    char *at = strstr(base_url, "@127.0.0.1:");
    if (!env && at) {
        char rest[512];
        snprintf(rest, sizeof rest, "%s", at + 10);
        snprintf(at, sizeof base_url - (size_t)(at - base_url), "@localhost%s", rest);
        snprintf(url_extra, sizeof url_extra, "&cacert=%s", cacert);
        check_sum(2, 1000, "fanout", NULL);
        at = strstr(base_url, "@localhost:");
        snprintf(at, sizeof base_url - (size_t)(at - base_url), "@127.0.0.2%s", rest);
        expect_tls_refused("to an address the certificate does not name");
    }
    url_extra[0] = '\0';
    snprintf(base_url, sizeof base_url, "%s", plain);
}

int main(void)
{
    test_url();
    start_node();
    PL_CHECK(base_url[0] != '\0', "no broker: set PEERLESS_AMQP_URL or install rabbitmq-server "
             "(scripts/rabbitmq.sh install)");
    if (base_url[0]) {
        test_exact();
        test_heartbeat();
        test_sums();
        test_bytes();
        test_codecs();
        test_topk();
        test_tls();
        test_broadcast_barrier();
        test_foreign();
        test_failures();
        test_big();
    }
    stop_node();
    PL_TEST_MAIN();
}
