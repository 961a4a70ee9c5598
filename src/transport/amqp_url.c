/* amqp_url.c — amqp:// URL parsing and credential lookup. */
#include "transport/amqp_url.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode src[0..len) into dst[0..cap). */
static int pct_decode(const char *src, size_t len, char *dst, size_t cap, const char *what,
                      pl_err *err)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval(src[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return pl_err_set(err, PL_ERR_ARG, "amqp URL: bad percent escape in %s at offset %zu "
                                  "(expected %%XX with two hex digits)", what, i);
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= cap)
            return pl_err_set(err, PL_ERR_ARG, "amqp URL: %s longer than %zu bytes", what, cap - 1);
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return PL_OK;
}

static int is_loopback(const char *host)
{
    return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

/* "user = NAME" / "password = SECRET" lines of a config file; # comments. */
static int read_config(const char *path, pl_amqp_url *u, pl_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? PL_ERR_NOTFOUND
                               : pl_err_set(err, PL_ERR_IO, "amqp credentials: cannot read %s: %s", path,
                                            strerror(errno));
    char line[600];
    int lineno = 0, rc = PL_OK;
    while (rc == PL_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line + strspn(line, " \t");
        p[strcspn(p, "\r\n")] = '\0';
        if (!*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        char key[32] = "", *val = eq ? eq + 1 : NULL;
        size_t klen = eq ? strcspn(p, " \t=") : 0;
        if (val && klen < sizeof key) {
            memcpy(key, p, klen);
            val += strspn(val, " \t");
            for (char *e = val + strlen(val); e > val && (e[-1] == ' ' || e[-1] == '\t');)
                *--e = '\0';
        }
        if (val && !strcmp(key, "user") && strlen(val) < sizeof u->user)
            strcpy(u->user, val);
        else if (val && !strcmp(key, "password") && strlen(val) < sizeof u->password)
            strcpy(u->password, val);
        else
            rc = pl_err_set(err, PL_ERR_FORMAT, "amqp credentials %s line %d: expected "
                            "'user = NAME' or 'password = SECRET'", path, lineno);
    }
    fclose(f);
    if (rc == PL_OK && !u->user[0])
        rc = pl_err_set(err, PL_ERR_FORMAT, "amqp credentials %s: no 'user = NAME' line", path);
    if (rc == PL_OK)
        snprintf(u->cred_source, sizeof u->cred_source, "%.63s", path);
    return rc;
}

static int resolve_credentials(pl_amqp_url *u, pl_err *err)
{
    const char *eu = getenv("PEERLESS_AMQP_USER"), *ep = getenv("PEERLESS_AMQP_PASSWORD");
    if (eu && *eu) {
        snprintf(u->user, sizeof u->user, "%s", eu);
        snprintf(u->password, sizeof u->password, "%s", ep ? ep : "");
        strcpy(u->cred_source, "environment");
        return PL_OK;
    }
    char path[1024];
    const char *cfg = getenv("PEERLESS_AMQP_CONFIG"), *home = getenv("HOME");
    if (cfg && *cfg)
        snprintf(path, sizeof path, "%s", cfg);
    else
        snprintf(path, sizeof path, "%s/.config/peerless/amqp", home ? home : "");
    int rc = read_config(path, u, err);
    if (rc != PL_ERR_NOTFOUND)
        return rc;
    if (cfg && *cfg)
        return pl_err_set(err, PL_ERR_IO, "amqp credentials: PEERLESS_AMQP_CONFIG names %s, which does "
                          "not exist", cfg);
    if (is_loopback(u->host)) {
        strcpy(u->user, "guest");
        strcpy(u->password, "guest");
        strcpy(u->cred_source, "loopback default");
        return PL_OK;
    }
    return pl_err_set(err, PL_ERR_ARG, "amqp broker %s: no credentials (expected USER:PASSWORD@ in the "
                      "URL, PEERLESS_AMQP_USER/PEERLESS_AMQP_PASSWORD, or %s)", u->host, path);
}

static int parse_size(const char *v, size_t lo, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || *v == '-' || x < lo || x > hi)
        return -1;
    *out = (size_t)x;
    return 0;
}

static int parse_option(pl_amqp_url *u, const char *kv, size_t len, pl_err *err)
{
    char buf[1100], val[1100];
    if (len >= sizeof buf)
        return pl_err_set(err, PL_ERR_ARG, "amqp URL: option '%.40s...' too long", kv);
    memcpy(buf, kv, len);
    buf[len] = '\0';
    char *eq = strchr(buf, '=');
    if (!eq)
        return pl_err_set(err, PL_ERR_ARG, "amqp URL: option '%s' (expected NAME=VALUE)", buf);
    *eq = '\0';
    int rc = pct_decode(eq + 1, strlen(eq + 1), val, sizeof val, buf, err);
    if (rc)
        return rc;
    size_t x;
    if (!strcmp(buf, "pattern") && (!strcmp(val, "scatter") || !strcmp(val, "fanout")))
        u->pattern = val[0] == 's' ? PL_AMQP_SCATTER : PL_AMQP_FANOUT;
    else if (!strcmp(buf, "chunk") && !parse_size(val, 1024, PL_AMQP_CHUNK_MAX, &x))
        u->chunk = x;
    else if (!strcmp(buf, "heartbeat") && !parse_size(val, 0, 3600, &x))
        u->heartbeat_s = (int)x;
    else if (!strcmp(buf, "connect_timeout") && !parse_size(val, 1, 86400, &x))
        u->connect_timeout_s = (int)x;
    else if (!strcmp(buf, "verify") && (!strcmp(val, "0") || !strcmp(val, "1")))
        u->verify = val[0] == '1';
    else if (!strcmp(buf, "cacert") && val[0] && strlen(val) < sizeof u->cacert)
        memcpy(u->cacert, val, strlen(val) + 1);
    else
        return pl_err_set(err, PL_ERR_ARG, "amqp URL: option %s=%s (expected pattern=scatter|fanout, "
                          "chunk=1024..%zu, heartbeat=0..3600, connect_timeout=1..86400, verify=0|1 or "
                          "cacert=PATH)",
                          buf, val, PL_AMQP_CHUNK_MAX);
    return PL_OK;
}

static int parse_host_port(const char *s, size_t len, pl_amqp_url *u, pl_err *err)
{
    const char *colon = memchr(s, ':', len);
    size_t hlen = colon ? (size_t)(colon - s) : len;
    if (hlen == 0 || hlen >= sizeof u->host)
        return pl_err_set(err, PL_ERR_ARG, "amqp URL: missing or overlong host (expected "
                          "amqp://[USER:PASSWORD@]HOST[:PORT][/VHOST])");
    memcpy(u->host, s, hlen);
    u->host[hlen] = '\0';
    if (colon) {
        char port[16];
        size_t plen = len - hlen - 1;
        size_t p;
        if (plen == 0 || plen >= sizeof port)
            return pl_err_set(err, PL_ERR_ARG, "amqp URL: bad port after host %s", u->host);
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
        if (parse_size(port, 1, 65535, &p))
            return pl_err_set(err, PL_ERR_ARG, "amqp URL: port '%s' (expected 1..65535)", port);
        u->port = (int)p;
    }
    return PL_OK;
}

int pl_amqp_url_parse(const char *addr, int tls, pl_amqp_url *out, pl_err *err)
{
    pl_amqp_url u;
    memset(&u, 0, sizeof u);
    u.tls = tls;
    u.port = tls ? 5671 : 5672;
    u.verify = 1;
    u.heartbeat_s = 60;
    u.chunk = PL_AMQP_CHUNK_DEFAULT;
    strcpy(u.vhost, "/");
    size_t auth_end = strcspn(addr, "/?");
    const char *at = memchr(addr, '@', auth_end);
    const char *hp = addr;
    int rc = PL_OK;
    if (at) {
        const char *colon = memchr(addr, ':', (size_t)(at - addr));
        size_t ulen = colon ? (size_t)(colon - addr) : (size_t)(at - addr);
        rc = pct_decode(addr, ulen, u.user, sizeof u.user, "user", err);
        if (!rc && colon)
            rc = pct_decode(colon + 1, (size_t)(at - colon - 1), u.password, sizeof u.password,
                            "password", err);
        if (!rc && !u.user[0])
            rc = pl_err_set(err, PL_ERR_ARG, "amqp URL: empty user before '@'");
        strcpy(u.cred_source, "URL");
        hp = at + 1;
    }
    if (!rc)
        rc = parse_host_port(hp, (size_t)(addr + auth_end - hp), &u, err);
    const char *rest = addr + auth_end;
    if (!rc && *rest == '/') {
        size_t vlen = strcspn(rest + 1, "?");
        if (vlen)
            rc = pct_decode(rest + 1, vlen, u.vhost, sizeof u.vhost, "vhost", err);
        rest += 1 + vlen;
    }
    if (!rc && *rest == '?') {
        for (const char *p = rest + 1; !rc && *p;) {
            size_t len = strcspn(p, "&");
            if (len)
                rc = parse_option(&u, p, len, err);
            p += len + (p[len] == '&');
        }
    }
    if (!rc && !u.user[0])
        rc = resolve_credentials(&u, err);
    if (!rc && tls && !u.cacert[0]) {
        const char *env = getenv("PEERLESS_AMQP_CACERT");
        if (env && *env)
            snprintf(u.cacert, sizeof u.cacert, "%s", env);
        else if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
            strcpy(u.cacert, "/etc/ssl/certs/ca-certificates.crt");
    }
    if (rc)
        return rc;
    *out = u;
    return PL_OK;
}
