/* status.c — status strings and error-message helpers. */
#include "peerless/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_msgs[] = {
    "ok",
    "out of memory",
    "I/O error",
    "malformed input",
    "invalid argument",
    "shape mismatch",
    "not found",
    "compute backend error",
    "unsupported",
    "non-finite value",
};

const char *pl_status_str(int status)
{
    if (status > 0 || status <= PL_STATUS_MIN_)
        return "unknown status";
    return status_msgs[-status];
}

int pl_err_set(pl_err *err, int status, const char *fmt, ...)
{
    if (!err)
        return status;
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return status;
}

int pl_err_wrap(pl_err *err, int status, const char *fmt, ...)
{
    if (!err)
        return status;
    char prefix[PL_ERR_MSG_MAX];
    char old[PL_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    if (err->status == PL_OK)
        err->status = status;
    /* Truncation is acceptable for a message; compose by parts. */
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    const char *rest = old[0] ? old : pl_status_str(err->status);
    size_t room = sizeof err->msg - n - 3;
    size_t m = strlen(rest);
    if (m > room)
        m = room;
    memcpy(err->msg + n + 2, rest, m);
    err->msg[n + 2 + m] = '\0';
    return err->status;
}
