/* core/err.c — the pz_err error sink and pz_strerror. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

const char *pz_strerror(int code)
{
    switch (code) {
    case PZ_OK: return "success";
    case PZ_EINVAL: return "invalid argument or input";
    case PZ_ENOMEM: return "out of memory";
    case PZ_EIO: return "input/output error";
    case PZ_ENOENT: return "not found";
    case PZ_EEXIST: return "already exists";
    case PZ_EPERM: return "not permitted";
    case PZ_EAGAIN: return "would block";
    case PZ_EOF: return "end of stream";
    case PZ_ERANGE: return "out of range";
    case PZ_ECONFIG: return "configuration error";
    case PZ_EABI: return "plugin ABI mismatch";
    case PZ_ECRYPTO: return "cryptographic failure";
    case PZ_ETIMEDOUT: return "timed out";
    case PZ_ECLOSED: return "closed";
    case PZ_EPROTO: return "protocol violation";
    case PZ_ENOTSUP: return "not supported";
    case PZ_EINTERNAL: return "internal error";
    case PZ_EREFUSED: return "refused by policy";
    case PZ_EREPLAY: return "replay";
    case PZ_ESTALE: return "timestamp outside the allowed window";
    default: return "unknown error";
    }
}

void pz_err_init(pz_err *err)
{
    memset(err, 0, sizeof(*err));
}

void pz_err_init_collect(pz_err *err)
{
    pz_err_init(err);
    err->collect = 1;
}

void pz_err_clear(pz_err *err)
{
    if (!err)
        return;
    free(err->msg);
    for (size_t i = 0; i < err->n_all; i++)
        free(err->all[i]);
    free(err->all);
    int collect = err->collect;
    pz_err_init(err);
    err->collect = collect;
}

static void append(pz_err *err, const char *msg)
{
    if (err->n_all == err->cap_all) {
        size_t cap = err->cap_all ? err->cap_all * 2 : 8;
        char **all = realloc(err->all, cap * sizeof(*all));
        if (!all)
            return; /* keep the last message at least */
        err->all = all;
        err->cap_all = cap;
    }
    char *copy = strdup(msg);
    if (copy)
        err->all[err->n_all++] = copy;
}

int pz_err_setv(pz_err *err, int code, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    free(err->msg);
    err->msg = msg;
    err->code = code;
    if (err->collect && msg)
        append(err, msg);
    return code;
}

int pz_err_set(pz_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = pz_err_setv(err, code, fmt, ap);
    va_end(ap);
    return rc;
}

void pz_err_prefix(pz_err *err, const char *fmt, ...)
{
    if (!err || !err->msg)
        return;
    char *prefix = NULL, *joined = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (asprintf(&joined, "%s: %s", prefix, err->msg) >= 0) {
        free(err->msg);
        err->msg = joined;
        if (err->collect && err->n_all > 0) {
            char *copy = strdup(joined);
            if (copy) {
                free(err->all[err->n_all - 1]);
                err->all[err->n_all - 1] = copy;
            }
        }
    }
    free(prefix);
}

const char *pz_err_msg(const pz_err *err)
{
    if (!err || err->code == 0)
        return err && err->msg ? err->msg : "";
    return err->msg ? err->msg : pz_strerror(err->code);
}

size_t pz_err_count(const pz_err *err)
{
    if (!err)
        return 0;
    if (err->collect)
        return err->n_all;
    return err->msg ? 1 : 0;
}

const char *pz_err_at(const pz_err *err, size_t i)
{
    if (!err)
        return NULL;
    if (err->collect)
        return i < err->n_all ? err->all[i] : NULL;
    return i == 0 ? err->msg : NULL;
}
