/* status.h — the one error model of peerless.
 *
 * Library functions return an int status: PL_OK (0) on success, a negative
 * pl_status on failure. Functions that can fail take a `pl_err *` (may be NULL)
 * into which they write a human-readable message with context (file name,
 * offset, tensor name, flag...). Only main() decides to exit.
 */
#ifndef PEERLESS_STATUS_H
#define PEERLESS_STATUS_H

#include <stddef.h>

typedef enum pl_status {
    PL_OK = 0,
    PL_ERR_NOMEM = -1,     /* allocation failed */
    PL_ERR_IO = -2,        /* open/read/write failed */
    PL_ERR_FORMAT = -3,    /* malformed file, message or header */
    PL_ERR_ARG = -4,       /* invalid argument, flag or value */
    PL_ERR_SHAPE = -5,     /* tensor shapes do not fit together */
    PL_ERR_NOTFOUND = -6,  /* named thing (tensor, dataset, model) missing */
    PL_ERR_BACKEND = -7,   /* compute backend failure (e.g. oneDNN) */
    PL_ERR_UNSUPPORTED = -8, /* valid request we do not implement */
    PL_ERR_NUMERIC = -9,   /* NaN/Inf where a finite value is required */
    PL_STATUS_MIN_ = -10   /* sentinel: every code above has a message */
} pl_status;

#define PL_ERR_MSG_MAX 512

/* Error context: a status and a message. Zero-initialise before use. */
typedef struct pl_err {
    int status;
    char msg[PL_ERR_MSG_MAX];
} pl_err;

/* Static description of a status code ("out of memory", ...). Never NULL. */
const char *pl_status_str(int status);

/* Record `status` with a printf-style message in `err` (if non-NULL) and
 * return `status`, so callers can write `return pl_err_set(err, ...)`. */
int pl_err_set(pl_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the existing message in `err` with more context ("loading X: ...").
 * Returns err->status (or `status` if err is NULL). */
int pl_err_wrap(pl_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
