/* amqp_conn.c — broker connections, topology, publish with confirms, the
 * receiving thread and the event pump of the amqp:// transport (rabbitmq-c
 * 0.11). */
#include "transport/amqp_conn.h"

#include <amqp_ssl_socket.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <amqp_tcp_socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>

#include "peerless/wire.h"
#include "transport/transport_impl.h"

#define FRAME_MAX 131072
#define HDR PL_WIRE_HEADER_SIZE
#define RX_BUF (64 << 10) /* own reader's buffer (see "own reader") */
#define RX_AHEAD 512      /* bytes it reads beyond what it needs */
/* Socket buffers: large enough that a peer publishing a multi-MiB message
 * and the broker delivering one move in few system calls and wake-ups. */
#define SOCK_BUF (4 << 20)

static struct timeval tv_of(double seconds)
{
    if (seconds < 0)
        seconds = 0;
    struct timeval tv = {.tv_sec = (time_t)seconds};
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    return tv;
}

/* Message of a failed RPC reply (library error or server close). */
static int reply_err(pl_amqp_conn *c, amqp_rpc_reply_t r, const char *what, pl_err *err)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return PL_OK;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        c->dead = 1;
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: %s: %s", c->where, what,
                          amqp_error_string2(r.library_error));
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD || r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        c->dead = 1;
        const amqp_channel_close_t *m = r.reply.decoded; /* same layout for connection.close */
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: %s: server closed the %s: %u %.*s",
                          c->where, what, r.reply.id == AMQP_CHANNEL_CLOSE_METHOD ? "channel" : "connection",
                          m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    }
    c->dead = 1;
    return pl_err_set(err, PL_ERR_IO, "amqp broker %s: %s failed", c->where, what);
}

static int connect_socket(pl_amqp_conn *c, amqp_connection_state_t *conn, const pl_amqp_url *u,
                          double deadline, pl_err *err)
{
    for (;;) {
        amqp_socket_t *s = u->tls ? amqp_ssl_socket_new(*conn) : amqp_tcp_socket_new(*conn);
        if (!s)
            return pl_err_set(err, PL_ERR_NOMEM, "amqp broker %s: cannot create a socket", c->where);
        if (u->tls) {
            amqp_ssl_socket_set_verify_peer(s, u->verify);
            /* The name is checked by OpenSSL during the handshake: rabbitmq-c's
             * own check knows DNS names only and refuses a broker addressed by
             * its IP address even when the certificate lists that address. */
            amqp_ssl_socket_set_verify_hostname(s, 0);
            X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(amqp_ssl_socket_get_context(s));
            if (u->verify && X509_VERIFY_PARAM_set1_ip_asc(vp, u->host) != 1 &&
                X509_VERIFY_PARAM_set1_host(vp, u->host, 0) != 1)
                return pl_err_set(err, PL_ERR_NOMEM, "amqp broker %s: cannot set the host name to "
                                  "verify", c->where);
            if (u->cacert[0] && amqp_ssl_socket_set_cacert(s, u->cacert) != AMQP_STATUS_OK)
                return pl_err_set(err, PL_ERR_IO, "amqp broker %s: cannot load CA file %s", c->where,
                                  u->cacert);
        }
        double left = deadline - pl_tr_now();
        struct timeval tv = tv_of(left < 5 ? left : 5);
        int rc = amqp_socket_open_noblock(s, u->host, u->port, &tv);
        if (rc == AMQP_STATUS_OK)
            return PL_OK;
        /* TLS errors will not heal by retrying; a broker that is starting will */
        if (u->tls && rc != AMQP_STATUS_SOCKET_ERROR && rc != AMQP_STATUS_TIMEOUT)
            return pl_err_set(err, PL_ERR_IO, "amqp broker %s: TLS connection failed: %s", c->where,
                              amqp_error_string2(rc));
        if (pl_tr_now() + 0.2 >= deadline)
            return pl_err_set(err, PL_ERR_IO, "amqp broker %s: cannot connect before the connect "
                              "timeout: %s", c->where, amqp_error_string2(rc));
        nanosleep(&(struct timespec){.tv_nsec = 200000000}, NULL);
        amqp_destroy_connection(*conn);
        *conn = amqp_new_connection();
        if (!*conn)
            return pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory");
    }
}

/* Publishing connection: channel 1 in confirm mode, the run's exchange. */
static int declare_pub(pl_amqp_conn *c, pl_err *err)
{
    amqp_channel_open(c->conn, 1);
    int rc = reply_err(c, amqp_get_rpc_reply(c->conn), "opening channel 1", err);
    if (!rc) {
        amqp_confirm_select(c->conn, 1);
        rc = reply_err(c, amqp_get_rpc_reply(c->conn), "enabling publisher confirms", err);
    }
    if (!rc) {
        amqp_exchange_declare(c->conn, 1, amqp_cstring_bytes(c->exchange), amqp_cstring_bytes("direct"),
                              0, 0, 1, 0, amqp_empty_table);
        rc = reply_err(c, amqp_get_rpc_reply(c->conn), "declaring exchange", err);
    }
    return rc;
}

/* Consuming connection: this rank's exclusive queue, bound and consumed. */
static int declare_sub(pl_amqp_conn *c, const char *run, int rank, pl_err *err)
{
    char queue[256], key[16];
    snprintf(queue, sizeof queue, "%s.r%d", c->exchange, rank);
    snprintf(key, sizeof key, "r%d", rank);
    amqp_channel_open(c->sub, 1);
    int rc = reply_err(c, amqp_get_rpc_reply(c->sub), "opening the consuming channel", err);
    if (!rc) {
        amqp_queue_declare(c->sub, 1, amqp_cstring_bytes(queue), 0, 0, 1, 1, amqp_empty_table);
        rc = reply_err(c, amqp_get_rpc_reply(c->sub), "declaring this peer's queue", err);
        if (rc)
            pl_err_wrap(err, rc, "run '%s' rank %d (is another peer of this run using rank %d?)", run,
                        rank, rank);
    }
    if (!rc) {
        amqp_queue_bind(c->sub, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(c->exchange),
                        amqp_cstring_bytes(key), amqp_empty_table);
        rc = reply_err(c, amqp_get_rpc_reply(c->sub), "binding this peer's queue", err);
    }
    if (!rc) {
        amqp_basic_consume(c->sub, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 1, 1,
                           amqp_empty_table);
        rc = reply_err(c, amqp_get_rpc_reply(c->sub), "consuming from this peer's queue", err);
    }
    return rc;
}

/* A new connection in *conn, logged in with `heartbeat` seconds. */
static int login(pl_amqp_conn *c, amqp_connection_state_t *conn, const pl_amqp_url *u, int heartbeat,
                 double deadline, pl_err *err)
{
    *conn = amqp_new_connection();
    if (!*conn)
        return pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory");
    int rc = connect_socket(c, conn, u, deadline, err);
    if (rc)
        return rc;
    struct timeval rpc = tv_of(deadline - pl_tr_now() > 10 ? deadline - pl_tr_now() : 10);
    amqp_set_handshake_timeout(*conn, &rpc);
    amqp_set_rpc_timeout(*conn, &rpc);
    amqp_rpc_reply_t r = amqp_login(*conn, u->vhost, 0, FRAME_MAX, heartbeat, AMQP_SASL_METHOD_PLAIN,
                                    u->user, u->password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_err(c, r, "login", err);
        return pl_err_wrap(err, PL_ERR_IO, "(user '%s' from %s)", u->user, u->cred_source);
    }
    int fd = amqp_get_sockfd(*conn), buf = SOCK_BUF, one = 1;
    /* best effort: the kernel may cap the sizes (net.core.*mem_max) */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return PL_OK;
}

static void *receiver(void *arg);

/* Mutex, wake-up pipe and message pool. */
static int conn_init(pl_amqp_conn *c, pl_err *err)
{
    c->wake[0] = c->wake[1] = -1;
    c->pool = calloc(1, sizeof *c->pool);
    if (!c->pool || pthread_mutex_init(&c->pool->mu, NULL)) {
        free(c->pool);
        c->pool = NULL;
        return pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory");
    }
    if (pthread_mutex_init(&c->mu, NULL))
        return pl_err_set(err, PL_ERR_NOMEM, "amqp: cannot create a mutex");
    c->rbuf = malloc(RX_BUF); /* NULL: rabbitmq-c reads everything */
    c->mu_on = 1;
    if (pipe(c->wake) || fcntl(c->wake[0], F_SETFL, O_NONBLOCK) || fcntl(c->wake[1], F_SETFL, O_NONBLOCK))
        return pl_err_set(err, PL_ERR_IO, "amqp: cannot create a pipe: %s", strerror(errno));
    return PL_OK;
}

int pl_amqp_conn_open(pl_amqp_conn *c, const pl_amqp_url *u, const char *run, int rank,
                      double frame_s, double deadline, pl_err *err)
{
    memset(c, 0, sizeof *c);
    c->returned_rank = -1;
    c->st = &c->idle_st;
    c->frame_s = frame_s;
    snprintf(c->where, sizeof c->where, "%s://%.200s:%d/%.60s", u->tls ? "amqps" : "amqp", u->host, u->port,
             strcmp(u->vhost, "/") ? u->vhost : "");
    snprintf(c->exchange, sizeof c->exchange, "peerless.%.180s", run);
    c->tls = u->tls;
    int rc = conn_init(c, err);
    /* the publishing connection carries no heartbeats: it idles between
     * collectives, and a lost broker fails its next publish or confirm wait */
    if (!rc)
        rc = login(c, &c->conn, u, 0, deadline, err);
    c->connected = !rc;
    rc = rc ? rc : declare_pub(c, err);
    if (!rc)
        rc = login(c, &c->sub, u, u->heartbeat_s, deadline, err);
    c->sub_connected = !rc;
    rc = rc ? rc : declare_sub(c, run, rank, err);
    c->sub_fd = c->sub ? amqp_get_sockfd(c->sub) : -1;
    if (!rc && pthread_create(&c->rx, NULL, receiver, c))
        rc = pl_err_set(err, PL_ERR_NOMEM, "amqp: cannot start the receiving thread");
    c->rx_on = !rc;
    return rc;
}

#define POOL_MAX_BYTES ((size_t)256 << 20)

void pl_amqp_msg_free(pl_amqp_msg *m)
{
    if (!m)
        return;
    pl_amqp_pool *p = m->pool;
    int last = 0;
    if (p) {
        pthread_mutex_lock(&p->mu);
        p->out--;
        if (!p->closed && p->bytes + m->cap <= POOL_MAX_BYTES) {
            m->next = p->free;
            p->free = m;
            p->bytes += m->cap;
            pthread_mutex_unlock(&p->mu);
            return;
        }
        last = p->closed && !p->out;
        pthread_mutex_unlock(&p->mu);
    }
    free(m->body);
    free(m);
    if (last) {
        pthread_mutex_destroy(&p->mu);
        free(p);
    }
}

/* A message of at least len bytes: a pooled one, or a new one. */
static pl_amqp_msg *pool_take(pl_amqp_pool *p, size_t len);

static pl_amqp_msg *pool_get(pl_amqp_pool *p, size_t len)
{
    pthread_mutex_lock(&p->mu);
    pl_amqp_msg *m = pool_take(p, len);
    pthread_mutex_unlock(&p->mu);
    return m;
}

static pl_amqp_msg *pool_take(pl_amqp_pool *p, size_t len)
{
    pl_amqp_msg **at = &p->free;
    while (*at && (*at)->cap < len)
        at = &(*at)->next;
    pl_amqp_msg *m = *at;
    if (m) {
        *at = m->next;
        p->bytes -= m->cap;
    } else {
        m = malloc(sizeof *m);
        uint8_t *body = m ? malloc(len ? len : 1) : NULL;
        if (!body) {
            free(m);
            return NULL;
        }
        m->body = body;
        m->cap = len;
        m->pool = p;
    }
    m->next = NULL;
    m->len = len;
    p->out++;
    return m;
}

/* Close the pool: free what it holds; it frees itself with its last
 * message (or now if none is out). */
static void pool_close(pl_amqp_pool *p)
{
    if (!p)
        return;
    for (pl_amqp_msg *m = p->free, *n; m; m = n) {
        n = m->next;
        free(m->body);
        free(m);
    }
    p->free = NULL;
    p->bytes = 0;
    p->closed = 1; /* only this thread uses the pool now */
    if (!p->out) {
        pthread_mutex_destroy(&p->mu);
        free(p);
    }
}

/* Wake a caller waiting in pl_amqp_pump (the pipe may be full: it is awake). */
static void wake(pl_amqp_conn *c)
{
    char b = 1;
    ssize_t w = write(c->wake[1], &b, 1); /* a full pipe already holds a wake-up */
    (void)w;
}

void pl_amqp_conn_close(pl_amqp_conn *c)
{
    if (c->rx_on) { /* stop the receiver: flag, then wake it out of its read */
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        int done = c->rx_done; /* then rabbitmq-c may have closed the fd */
        pthread_mutex_unlock(&c->mu);
        if (!done)
            shutdown(c->sub_fd, SHUT_RDWR);
        pthread_join(c->rx, NULL);
        c->rx_on = 0;
    }
    if (c->sub) /* its socket is shut: the broker sees the close, drops the queue */
        amqp_destroy_connection(c->sub);
    c->sub = NULL;
    c->st = &c->idle_st;
    if (c->conn) {
        if (c->connected && !c->dead) {
            amqp_channel_close(c->conn, 1, AMQP_REPLY_SUCCESS);
            amqp_connection_close(c->conn, AMQP_REPLY_SUCCESS);
        }
        amqp_destroy_connection(c->conn);
        c->conn = NULL;
    }
    for (pl_amqp_msg *m = c->head, *n; m; m = n) {
        n = m->next;
        pl_amqp_msg_free(m);
    }
    c->head = c->tail = NULL;
    pool_close(c->pool);
    c->pool = NULL;
    free(c->rbuf);
    c->rbuf = NULL;
    for (int i = 0; i < 2; i++)
        if (c->wake[i] >= 0)
            close(c->wake[i]);
    c->wake[0] = c->wake[1] = -1;
    if (c->mu_on)
        pthread_mutex_destroy(&c->mu);
    c->mu_on = 0;
}

pl_amqp_msg *pl_amqp_pop(pl_amqp_conn *c)
{
    pthread_mutex_lock(&c->mu);
    pl_amqp_msg *m = c->head;
    if (m) {
        c->head = m->next;
        if (!c->head)
            c->tail = NULL;
        m->next = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (m) {
        c->st->bytes_recv += m->len;
        c->st->msgs_recv++;
    }
    return m;
}

/* Routing key keys[0] and, for several receivers, a BCC header naming the
 * others in props (which points into keys, vals and *bcc). */
static int route(const int *dest, int ndest, char keys[64][16], amqp_field_value_t vals[64],
                 amqp_table_entry_t *bcc, amqp_basic_properties_t *props, pl_err *err)
{
    if (ndest < 1 || ndest > 64)
        return pl_err_set(err, PL_ERR_ARG, "amqp publish: %d destinations (expected 1..64)", ndest);
    for (int i = 0; i < ndest; i++) {
        snprintf(keys[i], sizeof keys[i], "r%d", dest[i]);
        vals[i].kind = AMQP_FIELD_KIND_UTF8;
        vals[i].value.bytes = amqp_cstring_bytes(keys[i]);
    }
    *bcc = (amqp_table_entry_t){.key = amqp_cstring_bytes("BCC"), .value.kind = AMQP_FIELD_KIND_ARRAY};
    bcc->value.value.array.num_entries = ndest - 1;
    bcc->value.value.array.entries = vals + 1;
    *props = (amqp_basic_properties_t){._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 1};
    if (ndest > 1) {
        props->_flags |= AMQP_BASIC_HEADERS_FLAG;
        props->headers.num_entries = 1;
        props->headers.entries = bcc;
    }
    return PL_OK;
}

static int published(pl_amqp_conn *c, int rc, size_t len, int dest0, pl_err *err)
{
    if (rc != AMQP_STATUS_OK) {
        c->dead = 1;
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: publishing %zu bytes to rank %d: %s", c->where,
                          len, dest0, amqp_error_string2(rc));
    }
    c->published++;
    c->st->bytes_sent += len;
    c->st->msgs_sent++;
    return PL_OK;
}

int pl_amqp_publish(pl_amqp_conn *c, const int *dest, int ndest, const void *body, size_t len,
                    pl_err *err)
{
    if (c->dead)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: connection is closed", c->where);
    char keys[64][16];
    amqp_field_value_t vals[64];
    amqp_table_entry_t bcc;
    amqp_basic_properties_t props;
    int rc = route(dest, ndest, keys, vals, &bcc, &props, err);
    if (rc)
        return rc;
    double t0 = pl_tr_now();
    amqp_bytes_t b = {.len = len, .bytes = (void *)body};
    rc = amqp_basic_publish(c->conn, 1, amqp_cstring_bytes(c->exchange), amqp_cstring_bytes(keys[0]), 1, 0,
                            &props, b);
    c->st->send_s += pl_tr_now() - t0;
    return published(c, rc, len, dest[0], err);
}

#define FRAMES_PER_WRITE 32 /* body frames per writev: 4 iovecs each */

/* Write iov[0..n) completely to the non-blocking socket fd before deadline:
 * AMQP_STATUS_OK, AMQP_STATUS_TIMEOUT or AMQP_STATUS_SOCKET_ERROR. */
static int write_all(int fd, struct iovec *iov, int n, double deadline)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return AMQP_STATUS_SOCKET_ERROR;
        if (w < 0) {
            double left = deadline - pl_tr_now();
            if (left <= 0)
                return AMQP_STATUS_TIMEOUT;
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            if (poll(&pf, 1, (int)(left * 1e3) + 1) < 0 && errno != EINTR)
                return AMQP_STATUS_SOCKET_ERROR;
            continue;
        }
        size_t done = (size_t)w;
        for (; n > 0 && done >= iov->iov_len; n--, iov++)
            done -= iov->iov_len;
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return AMQP_STATUS_OK;
}

/* Body frames (type 3, channel 1, size, payload, 0xCE) of head + tail, at
 * most fmax payload bytes each, FRAMES_PER_WRITE per writev. */
static int write_body(int fd, const uint8_t *head, size_t hlen, const uint8_t *tail, size_t tlen,
                      size_t fmax, double deadline)
{
    static const uint8_t end = AMQP_FRAME_END;
    uint8_t fh[FRAMES_PER_WRITE][7];
    struct iovec iov[FRAMES_PER_WRITE * 4];
    size_t off = 0, total = hlen + tlen;
    while (off < total) {
        int n = 0;
        for (int k = 0; k < FRAMES_PER_WRITE && off < total; k++) {
            size_t len = total - off < fmax ? total - off : fmax, end_off = off + len;
            uint8_t *h = fh[k];
            h[0] = AMQP_FRAME_BODY;
            h[1] = 0;
            h[2] = 1; /* channel 1 */
            for (int b = 0; b < 4; b++)
                h[3 + b] = (uint8_t)(len >> (24 - 8 * b));
            iov[n++] = (struct iovec){h, 7};
            if (off < hlen)
                iov[n++] = (struct iovec){(void *)(head + off), (end_off < hlen ? end_off : hlen) - off};
            if (end_off > hlen) {
                size_t from = off > hlen ? off - hlen : 0;
                iov[n++] = (struct iovec){(void *)(tail + from), end_off - hlen - from};
            }
            iov[n++] = (struct iovec){(void *)&end, 1};
            off = end_off;
        }
        int rc = write_all(fd, iov, n, deadline);
        if (rc)
            return rc;
    }
    return AMQP_STATUS_OK;
}

int pl_amqp_publish2(pl_amqp_conn *c, const int *dest, int ndest, const void *head, size_t hlen,
                     const void *tail, size_t tlen, double deadline, pl_err *err)
{
    if (c->dead)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: connection is closed", c->where);
    if (c->tls)
        return pl_err_set(err, PL_ERR_ARG, "amqp broker %s: unframed publishing needs plain TCP", c->where);
    char keys[64][16];
    amqp_field_value_t vals[64];
    amqp_table_entry_t bcc;
    amqp_basic_properties_t props;
    int rc = route(dest, ndest, keys, vals, &bcc, &props, err);
    if (rc)
        return rc;
    double t0 = pl_tr_now();
    amqp_basic_publish_t m = {.exchange = amqp_cstring_bytes(c->exchange),
                              .routing_key = amqp_cstring_bytes(keys[0]), .mandatory = 1};
    rc = amqp_send_method(c->conn, 1, AMQP_BASIC_PUBLISH_METHOD, &m);
    amqp_frame_t f = {.frame_type = AMQP_FRAME_HEADER, .channel = 1};
    f.payload.properties.class_id = AMQP_BASIC_CLASS;
    f.payload.properties.body_size = hlen + tlen;
    f.payload.properties.decoded = &props;
    if (rc == AMQP_STATUS_OK)
        rc = amqp_send_frame(c->conn, &f);
    size_t fmax = (size_t)amqp_get_frame_max(c->conn) - 8; /* 7-byte header + end byte */
    if (rc == AMQP_STATUS_OK && hlen + tlen)
        rc = write_body(amqp_get_sockfd(c->conn), head, hlen, tail, tlen, fmax, deadline);
    c->st->send_s += pl_tr_now() - t0;
    return published(c, rc, hlen + tlen, dest[0], err);
}

/* The next frame of `conn` (heartbeats are answered inside rabbitmq-c)
 * before `deadline`: 1, 0 on timeout, < 0 when the connection is gone. */
static int next_frame(pl_amqp_conn *c, amqp_connection_state_t conn, amqp_frame_t *f, double deadline,
                      pl_err *err)
{
    struct timeval tv = tv_of(deadline - pl_tr_now());
    int rc = amqp_simple_wait_frame_noblock(conn, f, &tv);
    if (rc == AMQP_STATUS_OK)
        return 1;
    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    return pl_err_set(err, PL_ERR_IO, "amqp broker %s: connection lost: %s", c->where, amqp_error_string2(rc));
}

static int broken_content(const pl_amqp_conn *c, pl_amqp_msg *m, const char *what, pl_err *err)
{
    pl_amqp_msg_free(m);
    return pl_err_set(err, PL_ERR_IO, "amqp broker %s: %s", c->where, what);
}

/* The content (header and body frames) of a delivery on channel ch of the
 * consuming connection, read straight into a pooled message appended to
 * the FIFO. Returns 1, or < 0: the stream is out of step, stop reading. */
static int read_delivery(pl_amqp_conn *c, amqp_channel_t ch, pl_err *err)
{
    amqp_frame_t f;
    double deadline = pl_tr_now() + c->frame_s;
    int rc = next_frame(c, c->sub, &f, deadline, err);
    if (rc <= 0)
        return rc < 0 ? rc : broken_content(c, NULL, "no content header after a delivery", err);
    if (f.frame_type != AMQP_FRAME_HEADER || f.channel != ch)
        return broken_content(c, NULL, "a delivery without its content header", err);
    size_t len = (size_t)f.payload.properties.body_size;
    pl_amqp_msg *m = pool_get(c->pool, len);
    if (!m)
        return broken_content(c, NULL, "out of memory receiving a message", err);
    m->crc = 0;
    for (size_t got = 0; got < len; got += f.payload.body_fragment.len) {
        rc = next_frame(c, c->sub, &f, deadline, err);
        if (rc == 0)
            return broken_content(c, m, "a message body stopped arriving", err);
        if (rc < 0) {
            pl_amqp_msg_free(m);
            return rc;
        }
        if (f.frame_type != AMQP_FRAME_BODY || f.channel != ch || f.payload.body_fragment.len > len - got)
            return broken_content(c, m, "a message body frame out of place or too long", err);
        size_t flen = f.payload.body_fragment.len, from = got > HDR ? got : HDR;
        memcpy(m->body + got, f.payload.body_fragment.bytes, flen);
        if (got + flen > from) /* the payload's CRC while the frame is in cache */
            m->crc = pl_wire_crc32c(m->crc, m->body + from, got + flen - from);
    }
    pthread_mutex_lock(&c->mu);
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    pthread_mutex_unlock(&c->mu);
    wake(c);
    return 1;
}

/* --- own reader ---
 *
 * rabbitmq-c copies every received frame into its own buffer, and a body
 * frame would then be copied again into the message: two passes over every
 * received byte that showed as a third of a peer's CPU time. On plain TCP,
 * once the consuming connection is set up and rabbitmq-c holds no unread
 * bytes, the receiving thread parses the frames itself: frame headers and
 * small frames through a 64 KiB buffer, body payloads read from the socket
 * straight into the message (and CRC'd there). It handles what a consuming
 * connection receives: basic.deliver with its content, heartbeats (and
 * sends its own, every heartbeat/2 s; the broker silent for two heartbeat
 * intervals is a lost connection), connection.close and channel.close.
 * Other methods are skipped; a malformed frame ends the connection. */


/* After a read that returned r <= 0: wait for more input. 1 to read again,
 * 0 at the deadline, < 0 (error set) when the connection is gone. */
static int rx_wait(pl_amqp_conn *c, ssize_t r, double deadline, pl_err *err)
{
    if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: consuming connection lost: %s", c->where,
                          r == 0 ? "closed by the broker" : strerror(errno));
    double left = deadline - pl_tr_now();
    if (left <= 0)
        return 0;
    struct pollfd pf = {.fd = c->sub_fd, .events = POLLIN};
    if (poll(&pf, 1, (int)(left * 1e3) + 1) < 0 && errno != EINTR)
        return pl_err_set(err, PL_ERR_IO, "amqp: poll: %s", strerror(errno));
    return 1;
}

/* Until rbuf holds `need` unread bytes (need <= RX_BUF): 1, 0 at deadline,
 * < 0 when the connection is gone. */
static int rx_fill(pl_amqp_conn *c, size_t need, double deadline, pl_err *err)
{
    while (c->rlen - c->rpos < need) {
        if (c->rpos && c->rpos + need > RX_BUF) {
            memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
            c->rlen -= c->rpos;
            c->rpos = 0;
        }
        /* a little more than needed, not the next body (rx_read reads that) */
        size_t want = need - (c->rlen - c->rpos), ask = want > RX_AHEAD ? want : RX_AHEAD;
        ssize_t r = recv(c->sub_fd, c->rbuf + c->rlen, ask < RX_BUF - c->rlen ? ask : RX_BUF - c->rlen,
                         MSG_DONTWAIT);
        if (r > 0) {
            c->rlen += (size_t)r;
            c->rx_last = pl_tr_now();
            continue;
        }
        int w = rx_wait(c, r, deadline, err);
        if (w <= 0)
            return w;
    }
    return 1;
}

/* n bytes into dst: what rbuf holds, then straight from the socket, with
 * the few bytes after them (end byte, next frame header) into rbuf. */
static int rx_read(pl_amqp_conn *c, uint8_t *dst, size_t n, double deadline, pl_err *err)
{
    size_t have = c->rlen - c->rpos < n ? c->rlen - c->rpos : n;
    memcpy(dst, c->rbuf + c->rpos, have);
    c->rpos += have;
    if (have < n) /* rbuf is empty */
        c->rpos = c->rlen = 0;
    for (size_t got = have; got < n;) {
        struct iovec iov[2] = {{dst + got, n - got}, {c->rbuf + c->rlen, RX_AHEAD}};
        ssize_t r = readv(c->sub_fd, iov, 2);
        if (r > 0) {
            size_t body = (size_t)r < n - got ? (size_t)r : n - got;
            got += body;
            c->rlen += (size_t)r - body;
            c->rx_last = pl_tr_now();
            continue;
        }
        int w = rx_wait(c, r, deadline, err);
        if (w <= 0)
            return w;
    }
    return 1;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The header of the next frame: type, channel, payload size; consumed. */
typedef struct rx_frame {
    int type, channel;
    size_t size;
} rx_frame;

static int rx_header(pl_amqp_conn *c, rx_frame *f, double deadline, pl_err *err)
{
    int rc = rx_fill(c, 7, deadline, err);
    if (rc <= 0)
        return rc;
    const uint8_t *h = c->rbuf + c->rpos;
    f->type = h[0];
    f->channel = h[1] << 8 | h[2];
    f->size = be32(h + 3);
    c->rpos += 7;
    return 1;
}

/* A whole small frame's payload (and end byte) in rbuf at *p. */
static int rx_small(pl_amqp_conn *c, const rx_frame *f, const uint8_t **p, double deadline, pl_err *err)
{
    if (f->size + 1 > RX_BUF)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: a %zu-byte frame of type %d (expected a small "
                          "method or header frame)", c->where, f->size, f->type);
    int rc = rx_fill(c, f->size + 1, deadline, err);
    if (rc <= 0)
        return rc ? rc : pl_err_set(err, PL_ERR_IO, "amqp broker %s: a frame stopped arriving", c->where);
    *p = c->rbuf + c->rpos;
    if ((*p)[f->size] != AMQP_FRAME_END)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: frame end byte missing (stream out of step)",
                          c->where);
    c->rpos += f->size + 1;
    return 1;
}

static int rx_end(pl_amqp_conn *c, double deadline, pl_err *err)
{
    int rc = rx_fill(c, 1, deadline, err);
    if (rc <= 0)
        return rc ? rc : pl_err_set(err, PL_ERR_IO, "amqp broker %s: a frame stopped arriving", c->where);
    if (c->rbuf[c->rpos++] != AMQP_FRAME_END)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: frame end byte missing (stream out of step)",
                          c->where);
    return 1;
}

static void enqueue(pl_amqp_conn *c, pl_amqp_msg *m)
{
    pthread_mutex_lock(&c->mu);
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    pthread_mutex_unlock(&c->mu);
    wake(c);
}

/* The content of a delivery on channel ch: header frame, then body frames
 * read into a pooled message. 1, or < 0. */
static int own_delivery(pl_amqp_conn *c, int ch, pl_err *err)
{
    double deadline = pl_tr_now() + c->frame_s;
    rx_frame f;
    const uint8_t *p;
    int rc = rx_header(c, &f, deadline, err);
    rc = rc <= 0 ? rc : rx_small(c, &f, &p, deadline, err);
    if (rc <= 0)
        return rc ? rc : pl_err_set(err, PL_ERR_IO, "amqp broker %s: no content header after a delivery", c->where);
    if (f.type != AMQP_FRAME_HEADER || f.channel != ch || f.size < 14)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: a delivery without its content header", c->where);
    uint64_t len = (uint64_t)be32(p + 4) << 32 | be32(p + 8);
    if (len > ((uint64_t)1 << 40))
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: a delivery of %" PRIu64 " bytes", c->where, len);
    pl_amqp_msg *m = pool_get(c->pool, (size_t)len);
    if (!m)
        return pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory receiving a %" PRIu64 "-byte message", len);
    m->crc = 0;
    for (size_t got = 0; got < len; got += f.size) {
        rc = rx_header(c, &f, deadline, err);
        if (rc > 0 && (f.type != AMQP_FRAME_BODY || f.channel != ch || f.size > len - got))
            rc = pl_err_set(err, PL_ERR_IO, "amqp broker %s: a message body frame out of place or too long",
                            c->where);
        rc = rc <= 0 ? rc : rx_read(c, m->body + got, f.size, deadline, err);
        rc = rc <= 0 ? rc : rx_end(c, deadline, err);
        if (rc <= 0) {
            pl_amqp_msg_free(m);
            return rc ? rc : pl_err_set(err, PL_ERR_IO, "amqp broker %s: a message body stopped arriving", c->where);
        }
        size_t from = got > HDR ? got : HDR;
        if (got + f.size > from) /* the payload's CRC while the frame is in cache */
            m->crc = pl_wire_crc32c(m->crc, m->body + from, got + f.size - from);
    }
    enqueue(c, m);
    return 1;
}

/* Serve heartbeats: send ours every interval/2; the broker silent for two
 * intervals is a lost connection. */
static int own_heartbeat(pl_amqp_conn *c, pl_err *err)
{
    int hb = amqp_get_heartbeat(c->sub);
    double now = pl_tr_now();
    if (hb <= 0)
        return 1;
    if (now - c->rx_last > 2.0 * hb)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: consuming connection lost: no heartbeat for %d s",
                          c->where, 2 * hb);
    if (now - c->tx_last >= hb / 2.0) {
        static const uint8_t beat[8] = {AMQP_FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, AMQP_FRAME_END};
        if (send(c->sub_fd, beat, sizeof beat, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof beat)
            return pl_err_set(err, PL_ERR_IO, "amqp broker %s: cannot send a heartbeat on the consuming "
                              "connection", c->where);
        c->tx_last = now;
    }
    return 1;
}

/* One frame (up to 1 s of waiting) of the consuming connection. */
static int own_step(pl_amqp_conn *c, pl_err *err)
{
    int rc = own_heartbeat(c, err);
    rx_frame f;
    rc = rc < 0 ? rc : rx_header(c, &f, pl_tr_now() + 0.5, err);
    if (rc <= 0)
        return rc;
    double deadline = pl_tr_now() + c->frame_s;
    if (f.type == AMQP_FRAME_HEARTBEAT && f.size == 0)
        return rx_end(c, deadline, err);
    const uint8_t *p;
    if (f.type != AMQP_FRAME_METHOD)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: a frame of type %d outside a delivery", c->where,
                          f.type);
    rc = rx_small(c, &f, &p, deadline, err);
    if (rc <= 0 || f.size < 4)
        return rc <= 0 ? rc : pl_err_set(err, PL_ERR_IO, "amqp broker %s: a %zu-byte method frame", c->where, f.size);
    uint32_t id = be32(p);
    if (id == AMQP_BASIC_DELIVER_METHOD)
        return own_delivery(c, f.channel, err);
    if (id != AMQP_CHANNEL_CLOSE_METHOD && id != AMQP_CONNECTION_CLOSE_METHOD)
        return 1;
    int code = f.size >= 7 ? p[4] << 8 | p[5] : 0, tlen = f.size >= 7 ? p[6] : 0;
    if ((size_t)tlen > f.size - 7)
        tlen = (int)(f.size - 7);
    return pl_err_set(err, PL_ERR_IO, "amqp broker %s: server closed the consuming %s: %d %.*s", c->where,
                      id == AMQP_CHANNEL_CLOSE_METHOD ? "channel" : "connection", code, tlen,
                      (const char *)p + 7);
}

/* The receiving thread: reads the consuming connection all the time, so
 * the broker can always deliver (even while this peer publishes or
 * computes) and its heartbeats are answered. */
static void *receiver(void *arg)
{
    pl_amqp_conn *c = arg;
    pl_err e = {0};
    for (int rc = 0; rc >= 0;) {
        pthread_mutex_lock(&c->mu);
        int stop = c->stop;
        c->rx_done = stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            return NULL;
        if (!c->own_rx && !c->tls && c->rbuf && !amqp_data_in_buffer(c->sub) &&
            !amqp_frames_enqueued(c->sub)) {
            c->own_rx = 1; /* at a frame boundary, nothing buffered in rabbitmq-c */
            c->rx_last = c->tx_last = pl_tr_now();
        }
        if (c->own_rx) {
            rc = own_step(c, &e);
            continue;
        }
        amqp_maybe_release_buffers(c->sub);
        amqp_frame_t f;
        rc = next_frame(c, c->sub, &f, pl_tr_now() + 1.0, &e);
        if (rc <= 0 || f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_DELIVER_METHOD)
            rc = read_delivery(c, f.channel, &e);
        else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                 f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_channel_close_t *m = f.payload.method.decoded; /* same layout */
            rc = pl_err_set(&e, PL_ERR_IO, "amqp broker %s: server closed the consuming %s: %u %.*s",
                            c->where, f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ? "channel"
                                                                                    : "connection",
                            m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        }
    }
    pthread_mutex_lock(&c->mu);
    if (!c->stop)
        c->lost = e;
    c->rx_done = 1;
    pthread_mutex_unlock(&c->mu);
    wake(c);
    return NULL;
}

/* A frame of the publishing connection: confirms, returns, closes. */
static int handle_frame(pl_amqp_conn *c, amqp_frame_t f, pl_err *err)
{
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 1;
    switch (f.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        const amqp_basic_ack_t *a = f.payload.method.decoded;
        if (a->delivery_tag > c->acked)
            c->acked = a->delivery_tag;
        return 1;
    }
    case AMQP_BASIC_NACK_METHOD:
        c->nacked++;
        return 1;
    case AMQP_BASIC_RETURN_METHOD: {
        const amqp_basic_return_t *r = f.payload.method.decoded;
        int rank = -1;
        if (r->routing_key.len > 1 && r->routing_key.len < 12) {
            char key[16];
            memcpy(key, r->routing_key.bytes, r->routing_key.len);
            key[r->routing_key.len] = '\0';
            rank = atoi(key + 1);
        }
        c->returned_rank = rank;
        if (rank >= 0 && rank < c->nranks && c->returned)
            c->returned[rank] = 1;
        amqp_message_t msg;
        amqp_rpc_reply_t rr = amqp_read_message(c->conn, f.channel, &msg, 0);
        if (rr.reply_type != AMQP_RESPONSE_NORMAL)
            return reply_err(c, rr, "reading a returned message", err);
        amqp_destroy_message(&msg);
        return 1;
    }
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_rpc_reply_t rr = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = f.payload.method};
        return reply_err(c, rr, "while exchanging messages", err);
    }
    default:
        return 1;
    }
}

/* One frame of the publishing connection if it comes before `deadline`. */
static int pub_frame(pl_amqp_conn *c, double deadline, pl_err *err)
{
    amqp_maybe_release_buffers(c->conn);
    amqp_frame_t f;
    int rc = next_frame(c, c->conn, &f, deadline, err);
    if (rc < 0)
        c->dead = 1;
    return rc > 0 ? handle_frame(c, f, err) : rc;
}

static int fifo_state(pl_amqp_conn *c, pl_err *err)
{
    pthread_mutex_lock(&c->mu);
    int rc = c->head ? 1 : 0;
    if (!rc && c->lost.status)
        rc = pl_err_set(err, c->lost.status, "%s", c->lost.msg);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int pl_amqp_pump(pl_amqp_conn *c, double deadline, int want_msgs, pl_err *err)
{
    if (c->dead)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: connection is closed", c->where);
    double t0 = pl_tr_now();
    int rc = 0;
    for (;;) {
        if (want_msgs && (rc = fifo_state(c, err)))
            break;
        if ((amqp_frames_enqueued(c->conn) || amqp_data_in_buffer(c->conn)) &&
            (rc = pub_frame(c, pl_tr_now(), err)))
            break;
        double left = deadline - pl_tr_now();
        if (left <= 0)
            break;
        struct pollfd pf[2] = {{.fd = amqp_get_sockfd(c->conn), .events = POLLIN},
                               {.fd = c->wake[0], .events = POLLIN}};
        int n = poll(pf, want_msgs ? 2 : 1, (int)(left * 1e3) + 1);
        if (n < 0 && errno != EINTR) {
            rc = pl_err_set(err, PL_ERR_IO, "amqp: poll: %s", strerror(errno));
            break;
        }
        char junk[64];
        if (n > 0 && pf[1].revents)
            while (read(c->wake[0], junk, sizeof junk) > 0)
                ;
        if (n > 0 && pf[0].revents && (rc = pub_frame(c, pl_tr_now(), err)))
            break;
    }
    c->st->recv_s += pl_tr_now() - t0;
    return rc;
}

int pl_amqp_drain(pl_amqp_conn *c, pl_err *err)
{
    int rc;
    while ((rc = pl_amqp_pump(c, 0, 0, err)) > 0)
        ;
    return rc < 0 ? rc : PL_OK;
}
