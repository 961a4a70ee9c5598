/* amqp_conn.c — broker connection, topology, publish with confirms, and the
 * frame pump of the amqp:// transport (rabbitmq-c 0.11). */
#include "transport/amqp_conn.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "transport/transport_impl.h"

#define FRAME_MAX 131072

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

static int connect_socket(pl_amqp_conn *c, const pl_amqp_url *u, double deadline, pl_err *err)
{
    for (;;) {
        amqp_socket_t *s = u->tls ? amqp_ssl_socket_new(c->conn) : amqp_tcp_socket_new(c->conn);
        if (!s)
            return pl_err_set(err, PL_ERR_NOMEM, "amqp broker %s: cannot create a socket", c->where);
        if (u->tls) {
            amqp_ssl_socket_set_verify_peer(s, u->verify);
            amqp_ssl_socket_set_verify_hostname(s, u->verify);
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
        amqp_destroy_connection(c->conn);
        c->conn = amqp_new_connection();
        if (!c->conn)
            return pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory");
    }
}

static int declare_topology(pl_amqp_conn *c, const char *run, int rank, pl_err *err)
{
    char queue[256], key[16];
    snprintf(queue, sizeof queue, "%s.r%d", c->exchange, rank);
    snprintf(key, sizeof key, "r%d", rank);
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
    if (!rc) {
        amqp_queue_declare(c->conn, 1, amqp_cstring_bytes(queue), 0, 0, 1, 1, amqp_empty_table);
        rc = reply_err(c, amqp_get_rpc_reply(c->conn), "declaring this peer's queue", err);
        if (rc)
            pl_err_wrap(err, rc, "run '%s' rank %d (is another peer of this run using rank %d?)", run,
                        rank, rank);
    }
    if (!rc) {
        amqp_queue_bind(c->conn, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(c->exchange),
                        amqp_cstring_bytes(key), amqp_empty_table);
        rc = reply_err(c, amqp_get_rpc_reply(c->conn), "binding this peer's queue", err);
    }
    if (!rc) {
        amqp_basic_consume(c->conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 1, 1,
                           amqp_empty_table);
        rc = reply_err(c, amqp_get_rpc_reply(c->conn), "consuming from this peer's queue", err);
    }
    return rc;
}

int pl_amqp_conn_open(pl_amqp_conn *c, const pl_amqp_url *u, const char *run, int rank,
                      double deadline, pl_err *err)
{
    memset(c, 0, sizeof *c);
    c->returned_rank = -1;
    snprintf(c->where, sizeof c->where, "%s://%.200s:%d/%.60s", u->tls ? "amqps" : "amqp", u->host, u->port,
             strcmp(u->vhost, "/") ? u->vhost : "");
    snprintf(c->exchange, sizeof c->exchange, "peerless.%.180s", run);
    c->conn = amqp_new_connection();
    if (!c->conn)
        return pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory");
    int rc = connect_socket(c, u, deadline, err);
    if (rc)
        return rc;
    struct timeval rpc = tv_of(deadline - pl_tr_now() > 10 ? deadline - pl_tr_now() : 10);
    amqp_set_handshake_timeout(c->conn, &rpc);
    amqp_set_rpc_timeout(c->conn, &rpc);
    amqp_rpc_reply_t r = amqp_login(c->conn, u->vhost, 0, FRAME_MAX, u->heartbeat_s,
                                    AMQP_SASL_METHOD_PLAIN, u->user, u->password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        reply_err(c, r, "login", err);
        return pl_err_wrap(err, PL_ERR_IO, "(user '%s' from %s)", u->user, u->cred_source);
    }
    c->connected = 1;
    return declare_topology(c, run, rank, err);
}

void pl_amqp_msg_free(pl_amqp_msg *m)
{
    if (!m)
        return;
    free(m->body);
    free(m);
}

void pl_amqp_conn_close(pl_amqp_conn *c)
{
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
}

pl_amqp_msg *pl_amqp_pop(pl_amqp_conn *c)
{
    pl_amqp_msg *m = c->head;
    if (m) {
        c->head = m->next;
        if (!c->head)
            c->tail = NULL;
        m->next = NULL;
    }
    return m;
}

int pl_amqp_publish(pl_amqp_conn *c, const int *dest, int ndest, const void *body, size_t len,
                    pl_err *err)
{
    if (c->dead)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: connection is closed", c->where);
    char keys[64][16];
    amqp_field_value_t vals[64];
    if (ndest < 1 || ndest > 64)
        return pl_err_set(err, PL_ERR_ARG, "amqp publish: %d destinations (expected 1..64)", ndest);
    for (int i = 0; i < ndest; i++) {
        snprintf(keys[i], sizeof keys[i], "r%d", dest[i]);
        vals[i].kind = AMQP_FIELD_KIND_UTF8;
        vals[i].value.bytes = amqp_cstring_bytes(keys[i]);
    }
    amqp_table_entry_t bcc = {.key = amqp_cstring_bytes("BCC"), .value.kind = AMQP_FIELD_KIND_ARRAY};
    bcc.value.value.array.num_entries = ndest - 1;
    bcc.value.value.array.entries = vals + 1;
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 1};
    if (ndest > 1) {
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers.num_entries = 1;
        props.headers.entries = &bcc;
    }
    double t0 = pl_tr_now();
    amqp_bytes_t b = {.len = len, .bytes = (void *)body};
    int rc = amqp_basic_publish(c->conn, 1, amqp_cstring_bytes(c->exchange), amqp_cstring_bytes(keys[0]),
                                1, 0, &props, b);
    c->st->send_s += pl_tr_now() - t0;
    if (rc != AMQP_STATUS_OK) {
        c->dead = 1;
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: publishing %zu bytes to rank %d: %s", c->where,
                          len, dest[0], amqp_error_string2(rc));
    }
    c->published++;
    c->st->bytes_sent += len;
    c->st->msgs_sent++;
    return PL_OK;
}

static int take_delivery(pl_amqp_conn *c, amqp_envelope_t *env, pl_err *err)
{
    pl_amqp_msg *m = malloc(sizeof *m);
    if (!m) {
        amqp_destroy_envelope(env);
        return pl_err_set(err, PL_ERR_NOMEM, "amqp: out of memory receiving a message");
    }
    /* the body was amqp_bytes_malloc'ed for this envelope: take it over */
    m->next = NULL;
    m->body = env->message.body.bytes;
    m->len = env->message.body.len;
    env->message.body = amqp_empty_bytes;
    amqp_destroy_envelope(env);
    c->st->bytes_recv += m->len;
    c->st->msgs_recv++;
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
    return 1;
}

/* A non-delivery frame: confirms, returns, closes. */
static int handle_frame(pl_amqp_conn *c, pl_err *err)
{
    amqp_frame_t f;
    int rc = amqp_simple_wait_frame(c->conn, &f);
    if (rc != AMQP_STATUS_OK) {
        c->dead = 1;
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: connection lost: %s", c->where,
                          amqp_error_string2(rc));
    }
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

int pl_amqp_pump(pl_amqp_conn *c, double deadline, pl_err *err)
{
    if (c->dead)
        return pl_err_set(err, PL_ERR_IO, "amqp broker %s: connection is closed", c->where);
    amqp_maybe_release_buffers(c->conn);
    struct timeval tv = tv_of(deadline - pl_tr_now());
    amqp_envelope_t env;
    double t0 = pl_tr_now();
    amqp_rpc_reply_t r = amqp_consume_message(c->conn, &env, &tv, 0);
    c->st->recv_s += pl_tr_now() - t0;
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return take_delivery(c, &env, err);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        return 0;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
        return handle_frame(c, err);
    return reply_err(c, r, "receiving", err);
}

int pl_amqp_drain(pl_amqp_conn *c, pl_err *err)
{
    int rc;
    while ((rc = pl_amqp_pump(c, 0, err)) > 0)
        ;
    return rc < 0 ? rc : PL_OK;
}
