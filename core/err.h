/* core/err.h — the pz_err error sink (core side of the plugin ABI's opaque
 * pz_err) and pz_strerror.
 *
 * A pz_err holds the latest code and message. When created with
 * pz_err_init_collect(), every message set is also appended to a list, so
 * `prozsec config check` can report every problem in a file, not only the
 * first.
 */
#ifndef PZ_CORE_ERR_H
#define PZ_CORE_ERR_H

#include <stdarg.h>
#include <stddef.h>

#include <prozsec/error.h>
#include <prozsec/plugin.h>

struct pz_err {
    int code;       /* 0 or the last PZ_E* code set */
    char *msg;      /* last message (heap), NULL if none */
    char **all;     /* when collecting: every message, in order */
    size_t n_all;
    size_t cap_all;
    int collect;
};

/* Initialise ERR (caller-owned storage) empty. */
void pz_err_init(pz_err *err);
/* Same, but remember every message set (see pz_err_count / pz_err_at). */
void pz_err_init_collect(pz_err *err);
/* Free what ERR holds; ERR may be reused after pz_err_init. */
void pz_err_clear(pz_err *err);

/* Set ERR (may be NULL) to CODE and a printf-style message; returns CODE.
 * With a collecting ERR the message is also appended to its list. */
int pz_err_set(pz_err *err, int code, const char *fmt, ...) PZ_PRINTF(3, 4);
int pz_err_setv(pz_err *err, int code, const char *fmt, va_list ap) PZ_PRINTF(3, 0);

/* Prefix the current message with "PREFIX: " (for context such as a file
 * name or provider); no-op when ERR is NULL or empty. */
void pz_err_prefix(pz_err *err, const char *fmt, ...) PZ_PRINTF(2, 3);

/* The last message, or pz_strerror(code) when none, or "" when no error. */
const char *pz_err_msg(const pz_err *err);

/* Collected messages (collecting ERR only; otherwise 0 / the last). */
size_t pz_err_count(const pz_err *err);
const char *pz_err_at(const pz_err *err, size_t i);

#endif /* PZ_CORE_ERR_H */
