/* amqp_url.h — parsing of amqp:// and amqps:// transport URLs (private).
 *
 *   amqp[s]://[USER[:PASSWORD]@]HOST[:PORT][/VHOST][?OPTION=VALUE&...]
 *
 * USER, PASSWORD and VHOST are percent-decoded ("%2F" is "/"); an empty or
 * missing VHOST is "/". Ports default to 5672 (amqp) and 5671 (amqps).
 * Options: pattern=scatter|fanout, chunk=BYTES (max payload of one message,
 * 1 KiB .. PL_AMQP_CHUNK_MAX), heartbeat=SECONDS (0 disables),
 * connect_timeout=SECONDS (overrides the caller's connect timeout), cacert=PATH,
 * verify=0|1 (amqps: check the broker's certificate and host name; default 1).
 *
 * Credentials come from, in this order: the URL, the environment
 * (PEERLESS_AMQP_USER, PEERLESS_AMQP_PASSWORD), the config file named by
 * PEERLESS_AMQP_CONFIG or ~/.config/peerless/amqp (lines "user = NAME",
 * "password = SECRET"), and for a loopback HOST only, guest/guest.
 * The CA file comes from cacert=, else PEERLESS_AMQP_CACERT, else the system
 * bundle /etc/ssl/certs/ca-certificates.crt when it exists.
 */
#ifndef PEERLESS_AMQP_URL_H
#define PEERLESS_AMQP_URL_H

#include <stddef.h>

#include "peerless/status.h"

/* Largest message payload: RabbitMQ's default max_message_size (128 MiB)
 * minus the wire header. */
#define PL_AMQP_CHUNK_MAX ((size_t)128 * 1024 * 1024 - 112)
/* 1 MiB: the broker moves MiB-sized messages several times faster than
 * 64 MiB ones, and a piece can be reduced while the next one arrives. */
#define PL_AMQP_CHUNK_DEFAULT ((size_t)1024 * 1024)

typedef enum pl_amqp_pattern { PL_AMQP_SCATTER = 0, PL_AMQP_FANOUT = 1 } pl_amqp_pattern;

/* A parsed URL. Plain value. */
typedef struct pl_amqp_url {
    int tls;
    char host[256];
    int port;
    char vhost[256];
    char user[256];
    char password[256];
    char cacert[1024]; /* "" = none */
    int verify;
    int heartbeat_s;
    int connect_timeout_s; /* 0: the transport options' connect timeout */
    pl_amqp_pattern pattern;
    size_t chunk;
    char cred_source[64]; /* "URL", "environment", a config path, "loopback default" */
} pl_amqp_url;

/* Parse `addr` (the URL after "amqp://" or "amqps://"; tls says which) and
 * resolve credentials and CA file. PL_ERR_ARG names the bad part of the URL;
 * *u is fully written on success only. The password never appears in
 * messages. */
int pl_amqp_url_parse(const char *addr, int tls, pl_amqp_url *u, pl_err *err);

#endif
