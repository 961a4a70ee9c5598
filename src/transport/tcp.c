/* tcp.c — the tcp:// transport: a full mesh of TCP connections.
 *
 * tcp://HOST:PORT,HOST:PORT,...: peer i listens on entry i. At open, peer i
 * connects to every peer j < i (retrying until the connect deadline, since
 * peers start at different times) and accepts every peer j > i. Each
 * connection starts with a HELLO exchange (wire.h messages; payload: u32
 * size, then the run name); a peer that disagrees gets a BYE whose payload
 * is the reason and is closed. The collectives live in tcp_coll.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/tcp_impl.h"

static int remaining_ms(double deadline)
{
    double r = (deadline - pl_tr_now()) * 1e3;
    return r <= 0 ? 0 : r > 1e9 ? 1000000000 : (int)r + 1;
}

/* Split "h:p,h:p,..." into s->peers[i].addr; exactly s->size entries. */
static int parse_peers(tcp_state *s, const char *list, pl_err *err)
{
    int i = 0;
    for (const char *p = list; *p; i++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (i >= s->size)
            return pl_err_set(err, PL_ERR_ARG, "tcp://%s: more than %d peer addresses (size %d)",
                              list, s->size, s->size);
        if (len == 0 || len >= TCP_ADDR_MAX || !memchr(p, ':', len))
            return pl_err_set(err, PL_ERR_ARG, "tcp://%s: entry %d '%.*s' is not HOST:PORT", list,
                              i, (int)len, p);
        memcpy(s->peers[i].addr, p, len);
        s->peers[i].addr[len] = '\0';
        p += len + (e ? 1 : 0);
    }
    if (i != s->size)
        return pl_err_set(err, PL_ERR_ARG, "tcp://%s: %d peer addresses for size %d", list, i,
                          s->size);
    return PL_OK;
}

static int resolve(const char *addr, struct addrinfo **res, pl_err *err)
{
    char host[TCP_ADDR_MAX];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    *colon = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(host, colon + 1, &hints, res);
    if (rc)
        return pl_err_set(err, PL_ERR_ARG, "cannot resolve peer address '%s': %s", addr,
                          gai_strerror(rc));
    return PL_OK;
}

/* No SO_SNDBUF/SO_RCVBUF: fixing them disables the kernel's buffer
 * autotuning, which measured 2x faster on loopback than fixed 1-4 MiB.
 * The pipe is for splicing gradient segments (tcp_coll.c); without one the
 * peer's messages are copied with sendmsg. */
static void tune_socket(tcp_peer *p, int splice)
{
    int one = 1;
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
    if (!splice || pipe2(p->pipe, O_NONBLOCK | O_CLOEXEC)) {
        p->pipe[0] = p->pipe[1] = -1;
        return;
    }
    fcntl(p->pipe[1], F_SETPIPE_SZ, TCP_PIPE_BYTES); /* the default 64 KiB also works */
}

static int listen_on(tcp_state *s, int *out, pl_err *err)
{
    const char *addr = s->peers[s->rank].addr;
    struct addrinfo *ai;
    int rc = resolve(addr, &ai, err);
    if (rc)
        return rc;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, s->size + 16)) {
        rc = pl_err_set(err, PL_ERR_IO, "rank %d cannot listen on %s: %s", s->rank, addr,
                        strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0)
        fcntl(fd, F_SETFL, O_NONBLOCK);
    *out = fd;
    return rc;
}

/* Write/read exactly len bytes on a non-blocking fd before the deadline. */
static int io_all(int fd, void *buf, size_t len, int writing, double deadline)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = writing ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
        if (r > 0) {
            p += r;
            len -= (size_t)r;
            continue;
        }
        if (r == 0)
            return -EPIPE;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -errno;
        struct pollfd pf = {fd, writing ? POLLOUT : POLLIN, 0};
        if (poll(&pf, 1, remaining_ms(deadline)) == 0)
            return -ETIMEDOUT;
    }
    return 0;
}

/* HELLO/BYE payload: u32 size, then the run name (or the reason). */
static int send_ctl(tcp_state *s, int fd, int type, int to, const char *text, double deadline)
{
    uint8_t msg[PL_WIRE_HEADER_SIZE + 4 + PL_ERR_MSG_MAX];
    size_t tl = strlen(text) < PL_ERR_MSG_MAX ? strlen(text) : PL_ERR_MSG_MAX;
    uint8_t *pl = msg + PL_WIRE_HEADER_SIZE;
    for (int i = 0; i < 4; i++)
        pl[i] = (uint8_t)((uint32_t)s->size >> (8 * i));
    memcpy(pl + 4, text, tl);
    pl_wire_header h = {.type = (uint8_t)type, .run_id = s->run_id, .sender = (uint32_t)s->rank,
                        .receiver = to < 0 ? PL_WIRE_BROADCAST : (uint32_t)to,
                        .chunk_count = 1};
    if (pl_wire_encode_header(&h, pl, tl + 4, msg, PL_WIRE_HEADER_SIZE, NULL))
        return -EINVAL;
    return io_all(fd, msg, PL_WIRE_HEADER_SIZE + 4 + tl, 1, deadline);
}

/* Read one HELLO or BYE: header into h, text (NUL-terminated) into text. */
static int recv_ctl(int fd, pl_wire_header *h, uint32_t *size, char *text, double deadline,
                    pl_err *err)
{
    uint8_t hb[PL_WIRE_HEADER_SIZE], pl[4 + PL_ERR_MSG_MAX];
    int rc = io_all(fd, hb, sizeof hb, 0, deadline);
    if (rc)
        return pl_err_set(err, PL_ERR_IO, "no handshake: %s", strerror(-rc));
    if (pl_wire_decode_header(hb, sizeof hb, h, err))
        return PL_ERR_FORMAT;
    if ((h->type != PL_WIRE_HELLO && h->type != PL_WIRE_BYE) || h->payload_len < 4 ||
        h->payload_len > sizeof pl - 1)
        return pl_err_set(err, PL_ERR_FORMAT, "expected a hello, got a %s message with %llu "
                          "payload bytes", pl_wire_type_name(h->type),
                          (unsigned long long)h->payload_len);
    rc = io_all(fd, pl, h->payload_len, 0, deadline);
    if (rc)
        return pl_err_set(err, PL_ERR_IO, "handshake cut short: %s", strerror(-rc));
    if (pl_wire_crc32c(0, pl, h->payload_len) != h->payload_crc)
        return pl_err_set(err, PL_ERR_FORMAT, "handshake payload CRC-32C mismatch");
    *size = (uint32_t)pl[0] | (uint32_t)pl[1] << 8 | (uint32_t)pl[2] << 16 | (uint32_t)pl[3] << 24;
    memcpy(text, pl + 4, h->payload_len - 4);
    text[h->payload_len - 4] = '\0';
    return PL_OK;
}

/* Why a HELLO does not belong to this run ("" if it does). */
static void hello_mismatch(const tcp_state *s, const pl_wire_header *h, uint32_t size,
                           const char *run, int want_rank, char *why, size_t len)
{
    why[0] = '\0';
    if (h->run_id != s->run_id || strcmp(run, s->run))
        snprintf(why, len, "run '%s' (expected run '%s')", run, s->run);
    else if (h->receiver != (uint32_t)s->rank)
        snprintf(why, len, "a hello for rank %u (expected %d: peer address lists differ?)",
                 h->receiver, s->rank);
    else if (size != (uint32_t)s->size)
        snprintf(why, len, "size %u (expected %d)", size, s->size);
    else if (want_rank >= 0 && h->sender != (uint32_t)want_rank)
        snprintf(why, len, "rank %u (expected %d)", h->sender, want_rank);
    else if (want_rank < 0 && (h->sender <= (uint32_t)s->rank || h->sender >= (uint32_t)s->size ||
                               s->peers[h->sender].fd >= 0))
        snprintf(why, len, "rank %u (expected an unconnected rank in %d..%d)", h->sender,
                 s->rank + 1, s->size - 1);
}

static int connect_once(const struct addrinfo *ai, double deadline)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno == EINPROGRESS) {
        struct pollfd pf = {fd, POLLOUT, 0};
        int e = 0;
        socklen_t el = sizeof e;
        if (poll(&pf, 1, remaining_ms(deadline)) == 1 &&
            !getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) && e == 0)
            return fd;
    } else if (errno == 0 || errno == EISCONN) {
        return fd;
    }
    close(fd);
    return -1;
}

/* Connect to lower rank j, retrying until the deadline, and shake hands. */
static int connect_peer(tcp_state *s, int j, double deadline, pl_err *err)
{
    tcp_peer *p = &s->peers[j];
    struct addrinfo *ai;
    int rc = resolve(p->addr, &ai, err);
    if (rc)
        return rc;
    int fd = -1;
    while (fd < 0 && pl_tr_now() < deadline) {
        errno = 0;
        fd = connect_once(ai, deadline);
        if (fd < 0)
            nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return pl_err_set(err, PL_ERR_IO,
                          "rank %d could not connect to peer %d (%s) before the connect deadline",
                          s->rank, j, p->addr);
    pl_wire_header h;
    uint32_t size;
    char text[PL_ERR_MSG_MAX + 1], why[PL_ERR_MSG_MAX];
    rc = send_ctl(s, fd, PL_WIRE_HELLO, j, s->run, deadline);
    if (!rc)
        rc = recv_ctl(fd, &h, &size, text, deadline, err);
    if (rc) {
        close(fd);
        return pl_err_wrap(err, PL_ERR_IO, "handshake with peer %d (%s)", j, p->addr);
    }
    if (h.type == PL_WIRE_BYE) {
        close(fd);
        return pl_err_set(err, PL_ERR_ARG, "peer %d (%s) rejected rank %d of run '%s': %s", j,
                          p->addr, s->rank, s->run, text);
    }
    hello_mismatch(s, &h, size, text, j, why, sizeof why);
    if (why[0]) {
        send_ctl(s, fd, PL_WIRE_BYE, j, why, deadline);
        close(fd);
        return pl_err_set(err, PL_ERR_ARG, "peer at %s (expected rank %d of run '%s') answered %s",
                          p->addr, j, s->run, why);
    }
    p->fd = fd;
    return PL_OK;
}

/* Accept one connection and admit it if its HELLO fits; rejects are logged
 * and remembered in `last_reject`. */
static void accept_one(tcp_state *s, int lfd, double deadline, char *last_reject, size_t len)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    pl_wire_header h;
    uint32_t size;
    char text[PL_ERR_MSG_MAX + 1], why[PL_ERR_MSG_MAX];
    pl_err e = {0};
    double hd = pl_tr_now() + 5.0 < deadline ? pl_tr_now() + 5.0 : deadline;
    if (recv_ctl(fd, &h, &size, text, hd, &e) || h.type != PL_WIRE_HELLO) {
        snprintf(last_reject, len, "a connection without a valid hello (%.300s)",
                 e.msg[0] ? e.msg : "bye");
        pl_tr_log(s->log, s->log_ctx, "rank %d: dropped %s", s->rank, last_reject);
        close(fd);
        return;
    }
    hello_mismatch(s, &h, size, text, -1, why, sizeof why);
    int to = h.sender < (uint32_t)s->size ? (int)h.sender : -1;
    if (why[0] || send_ctl(s, fd, PL_WIRE_HELLO, to, s->run, deadline)) {
        if (why[0])
            send_ctl(s, fd, PL_WIRE_BYE, to, why, hd);
        snprintf(last_reject, len, "a peer claiming rank %u with %.300s", h.sender,
                 why[0] ? why : "a broken connection");
        pl_tr_log(s->log, s->log_ctx, "rank %d: rejected %s", s->rank, last_reject);
        close(fd);
        return;
    }
    s->peers[h.sender].fd = fd;
}

static int accept_peers(tcp_state *s, int lfd, double deadline, pl_err *err)
{
    char last_reject[PL_ERR_MSG_MAX] = "";
    for (int j = s->rank + 1; j < s->size;) {
        if (s->peers[j].fd >= 0) {
            j++;
            continue;
        }
        struct pollfd pf = {lfd, POLLIN, 0};
        if (poll(&pf, 1, remaining_ms(deadline)) == 1) {
            accept_one(s, lfd, deadline, last_reject, sizeof last_reject);
            continue;
        }
        if (pl_tr_now() >= deadline)
            return pl_err_set(err, PL_ERR_IO,
                              "rank %d: peer %d (%s) did not connect before the deadline%s%s",
                              s->rank, j, s->peers[j].addr,
                              last_reject[0] ? "; rejected meanwhile: " : "", last_reject);
    }
    return PL_OK;
}

static void tcp_close(void *impl)
{
    tcp_state *s = impl;
    if (!s)
        return;
    for (int i = 0; s->peers && i < s->size; i++) {
        if (s->peers[i].fd >= 0)
            close(s->peers[i].fd);
        for (int e = 0; e < 2; e++)
            if (s->peers[i].pipe[e] >= 0)
                close(s->peers[i].pipe[e]);
        free(s->peers[i].q);
        free(s->peers[i].enc);
        free(s->peers[i].rxenc);
    }
    for (int k = 0; k < TCP_CODEC_SETS; k++) {
        for (int i = 0; s->sets[k].to && i < s->size; i++)
            pl_codec_destroy(s->sets[k].to[i]);
        free(s->sets[k].to);
        pl_codec_destroy(s->sets[k].ag);
    }
    free(s->peers);
    tcp_free_workspace(s);
    free(s);
}

/* Whether both ends of connected socket fd have the same address: the peer
 * runs on this host (over loopback or the host's own address). */
static int same_host(int fd)
{
    struct sockaddr_storage a, b;
    socklen_t al = sizeof a, bl = sizeof b;
    if (getsockname(fd, (struct sockaddr *)&a, &al) || getpeername(fd, (struct sockaddr *)&b, &bl) ||
        a.ss_family != b.ss_family)
        return 0;
    if (a.ss_family == AF_INET)
        return ((struct sockaddr_in *)&a)->sin_addr.s_addr ==
               ((struct sockaddr_in *)&b)->sin_addr.s_addr;
    if (a.ss_family == AF_INET6)
        return !memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr,
                       &((struct sockaddr_in6 *)&b)->sin6_addr, sizeof(struct in6_addr));
    return 0;
}

/* Splice (tcp_coll.c) or copy gradient segments into the sockets. Splicing
 * saves the sender's copy but makes the receiver copy from the sender's
 * pages, which is slower when cores are free: measured on 2 cores, 4 peers
 * spent 12-17 % less CPU and time per all-reduce, 2 peers took up to 30 %
 * longer (docs/performance.md). So by default (PEERLESS_TCP_SPLICE=auto)
 * peers splice when this host runs more peers than this process may use
 * CPUs; "on" and "off" force it. */
static int splice_mode(int *mode, pl_err *err)
{
    const char *v = getenv("PEERLESS_TCP_SPLICE");
    *mode = !v || !*v || !strcmp(v, "auto") ? -1 : !strcmp(v, "on") ? 1 : !strcmp(v, "off") ? 0 : -2;
    if (*mode == -2)
        return pl_err_set(err, PL_ERR_ARG, "tcp transport: PEERLESS_TCP_SPLICE='%s', expected "
                          "auto, on or off", v);
    return PL_OK;
}

static int want_splice(const tcp_state *s, int mode)
{
    if (mode >= 0)
        return mode;
    cpu_set_t set;
    long ncpu = sched_getaffinity(0, sizeof set, &set) ? sysconf(_SC_NPROCESSORS_ONLN)
                                                       : (long)CPU_COUNT(&set);
    long local = 1;
    for (int j = 0; j < s->size; j++)
        local += j != s->rank && s->peers[j].fd >= 0 && same_host(s->peers[j].fd);
    return local > ncpu;
}

static int tcp_state_new(const pl_transport_opts *o, tcp_state **out, pl_err *err)
{
    tcp_state *s = calloc(1, sizeof *s);
    if (!s || !(s->peers = calloc((size_t)o->size, sizeof *s->peers))) {
        free(s);
        return pl_err_set(err, PL_ERR_NOMEM, "tcp transport: out of memory");
    }
    s->rank = o->rank;
    s->size = o->size;
    for (int i = 0; i < o->size; i++)
        s->peers[i].fd = s->peers[i].pipe[0] = s->peers[i].pipe[1] = -1;
    snprintf(s->run, sizeof s->run, "%s", o->run ? o->run : "peerless");
    s->run_id = pl_wire_run_id(s->run);
    s->seed = o->seed;
    s->timeout_ms = o->peer_timeout_ms;
    /* 256 KiB: measured best of 128 KiB - 1 MiB; 1 MiB cost 10 % more CPU
     * per call at VGG11 size, N=4 (docs/performance.md). */
    s->seg_bytes = o->segment_bytes ? o->segment_bytes : (size_t)256 << 10;
    s->seg_bytes = s->seg_bytes < 64 ? 64 : s->seg_bytes & ~(size_t)3;
    if (pl_codec_parse(o->codec ? o->codec : "none", &s->codec, err)) {
        free(s->peers);
        free(s);
        return pl_err_wrap(err, PL_ERR_ARG, "tcp transport");
    }
    /* top-k: a sum is all-gathered exactly, as raw float32 or, when shorter,
     * as a sparse topk payload of its nonzeros (tcp_coll.c) */
    s->ag_codec = s->codec.id == PL_CODEC_TOPK ? (pl_codec_cfg){.id = PL_CODEC_NONE} : s->codec;
    s->log = o->log;
    s->log_ctx = o->log_ctx;
    *out = s;
    return PL_OK;
}

static int tcp_open(const pl_transport_opts *o, const char *addr, void **impl, pl_err *err)
{
    tcp_state *s = NULL;
    int rc = tcp_state_new(o, &s, err), lfd = -1;
    if (rc)
        return rc;
    double deadline = pl_tr_now() + o->connect_timeout_ms / 1e3;
    int splice = -1;
    rc = splice_mode(&splice, err);
    rc = rc ? rc : parse_peers(s, addr, err);
    if (!rc && s->size > 1 && s->rank < s->size - 1)
        rc = listen_on(s, &lfd, err);
    for (int j = 0; !rc && j < s->rank; j++)
        rc = connect_peer(s, j, deadline, err);
    if (!rc && lfd >= 0)
        rc = accept_peers(s, lfd, deadline, err);
    if (lfd >= 0)
        close(lfd);
    if (rc) {
        tcp_close(s);
        return rc;
    }
    splice = want_splice(s, splice);
    for (int i = 0; i < s->size; i++)
        if (s->peers[i].fd >= 0)
            tune_socket(&s->peers[i], splice);
    *impl = s;
    return PL_OK;
}

static int tcp_bcast_vt(void *impl, void *buf, size_t len, int root, uint64_t step,
                        pl_xfer_stats *st, pl_err *err)
{
    return tcp_broadcast(impl, buf, len, root, step, st, err);
}

const pl_transport_vt pl_transport_tcp_vt = {
    .scheme = "tcp",
    .open = tcp_open,
    .allreduce_sum = tcp_allreduce,
    .broadcast = tcp_bcast_vt,
    .barrier = tcp_barrier,
    .close = tcp_close,
};
