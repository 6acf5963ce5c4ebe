/* prozsec — error codes shared by the library API and the plugin ABI.
 *
 * Functions return 0 on success or a negative PZ_E* code. A refusal (a
 * denied peer, a rate-limited request) is a result, not an error: it is
 * reported through an out-parameter and the function returns 0.
 */
#ifndef PROZSEC_ERROR_H
#define PROZSEC_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a function of the public library API (libprozsec is built with
 * -fvisibility=hidden; only PZ_API symbols named pz_* are exported). */
#if defined(__GNUC__)
#define PZ_API __attribute__((visibility("default")))
#else
#define PZ_API
#endif

/* Values are stable across releases: they cross the plugin ABI. New codes
 * are only ever appended. */
enum pz_error_code {
    PZ_OK = 0,
    PZ_EINVAL = -1,     /* invalid argument or malformed input */
    PZ_ENOMEM = -2,     /* allocation failed */
    PZ_EIO = -3,        /* I/O error (errno-level detail in the pz_err) */
    PZ_ENOENT = -4,     /* no such file, key, peer or provider */
    PZ_EEXIST = -5,     /* already exists (file, provider name) */
    PZ_EPERM = -6,      /* not permitted (file mode, policy) */
    PZ_EAGAIN = -7,     /* would block; try again when the fd is ready */
    PZ_EOF = -8,        /* orderly end of stream */
    PZ_ERANGE = -9,     /* value out of range, or buffer too small */
    PZ_ECONFIG = -10,   /* configuration error (FILE:LINE:COL in the pz_err) */
    PZ_EABI = -11,      /* plugin ABI mismatch or malformed descriptor */
    PZ_ECRYPTO = -12,   /* cryptographic failure (bad signature, tag, key) */
    PZ_ETIMEDOUT = -13, /* deadline passed */
    PZ_ECLOSED = -14,   /* connection or object already closed */
    PZ_EPROTO = -15,    /* protocol violation by the peer */
    PZ_ENOTSUP = -16,   /* operation not supported by this provider */
    PZ_EINTERNAL = -17, /* bug: an invariant did not hold */
    PZ_EREFUSED = -18,  /* refused by policy (used where no verdict out-param exists) */
    PZ_EREPLAY = -19,   /* replayed message or call id */
    PZ_ESTALE = -20,    /* timestamp outside the allowed window */
};

/* Short, static, English description of a PZ_E* code; never NULL.
 * Thread-safe. */
PZ_API const char *pz_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif /* PROZSEC_ERROR_H */
