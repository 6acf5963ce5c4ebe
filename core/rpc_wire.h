/* core/rpc_wire.h — RPC envelopes: GVariant encoding and decoding of
 * requests and responses, and the domain-separated encodings their
 * signatures (Ed25519) or MACs (HMAC-SHA256) cover. docs/rpc-wire.md is the
 * normative description.
 *
 *   envelope  (yyv)   version = 1, kind (1 request, 2 response), body
 *   request   (((stayssuy)v)ay)
 *             ((method, timestamp_ns, call_id, caller, target, timeout_ms,
 *               mode), params), auth
 *   response  ((vaytsis)ay)
 *             (data, call_id, timestamp_ns, sender, status, message), auth
 *
 * auth covers DOMAIN ‖ 0x00 ‖ the normal-form serialization of the first
 * member of the body (the signed part), DOMAIN being "prozsec-rpc-call-v1"
 * for requests and "prozsec-rpc-resp-v1" for responses.
 *
 * Decoding takes untrusted bytes and allocates nothing: a strict reader of
 * the GVariant serialisation format checks that the envelope is in normal
 * form exactly as g_variant_is_normal_form would (framing offsets of the
 * minimal size and in bounds, alignment padding zero, strings NUL-terminated
 * valid UTF-8 without inner NULs, booleans 0 or 1, no trailing bytes, the
 * params/data variant's type string valid and definite and its value in
 * normal form, GLib's nesting limit), that the body has exactly the type of
 * its kind, and that names and ids are well formed; anything else is
 * PZ_EPROTO (the caller closes the connection). Decoded fields point into
 * the caller's frame. tests/unit/test_rpc_wire_nf.c checks the equivalence
 * with GLib on seeds and mutations; one deliberate limit beyond GLib: a type
 * string of a variant inside an envelope longer than PZ_WIRE_TYPE_MAX
 * bytes (or nested variants whose type strings add up to more than
 * PZ_WIRE_TYPES_MAX) is refused.
 *
 * Signatures go through the crypto seam (core/crypto.h): pz_rpc_key holds
 * a pz_sign_key (seed in secure memory, key object imported once), peers'
 * keys are pz_verify_key objects imported once per connection, MAC keys
 * pz_hmac_key objects prepared once per connection.
 *
 * Thread safety: the functions are reentrant; keys are thread-safe.
 */
#ifndef PZ_CORE_RPC_WIRE_H
#define PZ_CORE_RPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include <prozsec/rpc.h>

#include "crypto.h"

#define PZ_WIRE_VERSION 1
#define PZ_WIRE_KIND_REQUEST 1
#define PZ_WIRE_KIND_RESPONSE 2

#define PZ_WIRE_MODE_SIG 1 /* Ed25519 signature (64 bytes) */
#define PZ_WIRE_MODE_MAC 2 /* HMAC-SHA256 (32 bytes) */

#define PZ_WIRE_SIG_LEN 64
#define PZ_WIRE_MAC_LEN 32
#define PZ_WIRE_MAC_KEY_LEN 32

#define PZ_WIRE_DOMAIN_CALL "prozsec-rpc-call-v1"
#define PZ_WIRE_DOMAIN_RESP "prozsec-rpc-resp-v1"

/* Key of the retry hint in a rate_limited response's data (a{sv}; value
 * type u, milliseconds until the refused request would pass). */
#define PZ_WIRE_RETRY_AFTER_KEY "retry_after_ms"
/* Channel-binding (TLS exporter) label the MAC key is exported under. */
#define PZ_WIRE_MAC_LABEL "EXPORTER-prozsec-rpc-mac-v1"

#define PZ_WIRE_TYPE_ENVELOPE "(yyv)"
#define PZ_WIRE_TYPE_REQUEST "(((stayssuy)v)ay)"
#define PZ_WIRE_TYPE_REQUEST_SIGNED "((stayssuy)v)"
#define PZ_WIRE_TYPE_RESPONSE "((vaytsis)ay)"

/* Largest message kept in a response (bytes). */
#define PZ_WIRE_MESSAGE_MAX 256

/* Longest type string of one variant inside an envelope we check (bytes;
 * the D-Bus signature limit), and of all variants nested along one path. */
#define PZ_WIRE_TYPE_MAX 255
#define PZ_WIRE_TYPES_MAX 512

/* An HMAC-SHA256 key for mac-mode envelopes of one connection. */
typedef struct pz_wire_mac pz_wire_mac;

/* What authenticates (or checks) an envelope. For MODE_SIG encoding uses
 * KEY, checking uses PUB; for MODE_MAC both use MAC. Members borrowed. */
typedef struct pz_wire_auth {
    int mode;               /* PZ_WIRE_MODE_*; 0: none (unauthenticated response) */
    const pz_rpc_key *key;  /* signing */
    pz_verify_key *pub;     /* verifying */
    pz_wire_mac *mac;
} pz_wire_auth;

/* A GVariant value in serialised normal form inside a frame (borrowed):
 * its bytes and its type string (TYPE_LEN bytes, not NUL-terminated). */
typedef struct pz_wire_value {
    const uint8_t *data;
    size_t len;
    const char *type;
    size_t type_len;
} pz_wire_value;

/* A decoded request. Every pointer points into the frame given to
 * pz_wire_decode and is valid as long as those bytes are; strings are
 * NUL-terminated there. Nothing to free. */
typedef struct pz_wire_request {
    const uint8_t *signed_part; /* ((stayssuy)v): the bytes the auth covers */
    size_t signed_len;
    pz_wire_value params;
    const char *method;
    uint64_t timestamp_ns;
    const uint8_t *call_id; /* PZ_RPC_CALL_ID_LEN bytes */
    const char *caller;
    const char *target;
    uint32_t timeout_ms;
    uint8_t mode;
    const uint8_t *auth;
    size_t auth_len;
} pz_wire_request;

/* A decoded response, same rules. */
typedef struct pz_wire_response {
    const uint8_t *signed_part; /* (vaytsis) */
    size_t signed_len;
    pz_wire_value data;
    const uint8_t *call_id;
    uint64_t timestamp_ns;
    const char *sender;
    int32_t status;
    const char *message;
    const uint8_t *auth;
    size_t auth_len;
} pz_wire_response;

/* Decode the frame payload FRAME (LEN bytes, borrowed: REQ or RESP point
 * into it) as an envelope: *KIND gets PZ_WIRE_KIND_REQUEST (REQ filled) or
 * PZ_WIRE_KIND_RESPONSE (RESP filled); REQ or RESP may be NULL to refuse
 * that kind. Allocates nothing. Returns 0 or PZ_EPROTO (malformed, with a
 * static reason in *WHY when WHY is not NULL). */
int pz_wire_decode(const uint8_t *frame, size_t len, int *kind, pz_wire_request *req, pz_wire_response *resp,
                   const char **why);

/* Nothing to free any more (fields are borrowed); zero REQ / RESP. Kept so
 * callers need not know. */
void pz_wire_request_clear(pz_wire_request *req);
void pz_wire_response_clear(pz_wire_response *resp);

/* A new GVariant (full reference, trusted: the reader checked normal form)
 * holding a copy of VALUE, for handlers and callbacks that outlive the
 * frame. NULL when the copy cannot be allocated. */
GVariant *pz_wire_value_dup(const pz_wire_value *value);

/* Whether the LEN bytes at DATA are the normal form of a value of the
 * definite type TYPE (TYPE_LEN bytes), by the rules of
 * g_variant_is_normal_form for a GVariant made from them: 1 yes, 0 no, -1
 * refused because a type string exceeds the limits above. Allocates
 * nothing. Exposed for the equivalence tests. */
int pz_wire_is_normal(const char *type, size_t type_len, const uint8_t *data, size_t len);

/* Append to OUT a frame (header + envelope) holding a request built from
 * the given fields and PARAMS (NULL: "()"; floating references are sunk),
 * authenticated with AUTH (mode SIG or MAC). PZ_ERANGE when the envelope
 * exceeds MAX_FRAME (OUT unchanged), PZ_ECRYPTO when signing failed. */
int pz_wire_request_encode(GByteArray *out, size_t max_frame, const char *method, uint64_t timestamp_ns,
                           const uint8_t call_id[PZ_RPC_CALL_ID_LEN], const char *caller, const char *target,
                           uint32_t timeout_ms, GVariant *params, const pz_wire_auth *auth);

/* Same for a response. AUTH mode 0 leaves it unauthenticated (empty auth).
 * MESSAGE may be NULL (""); it is cut to PZ_WIRE_MESSAGE_MAX bytes. */
int pz_wire_response_encode(GByteArray *out, size_t max_frame, GVariant *data,
                            const uint8_t call_id[PZ_RPC_CALL_ID_LEN], uint64_t timestamp_ns, const char *sender,
                            int32_t status, const char *message, const pz_wire_auth *auth);

/* Check a decoded request's (response's) auth with AUTH (mode SIG with PUB,
 * or MAC). Returns 0 or PZ_ECRYPTO. */
int pz_wire_request_verify(const pz_wire_request *req, const pz_wire_auth *auth);
int pz_wire_response_verify(const pz_wire_response *resp, const pz_wire_auth *auth);

/* Verify an Ed25519 signature over DOMAIN ‖ 0x00 ‖ DATA with PUB (the audit
 * log re-checks stored call contexts this way). 0 or PZ_ECRYPTO. */
int pz_wire_verify_sig(pz_verify_key *pub, const char *domain, const uint8_t *data, size_t len, const uint8_t *sig,
                       size_t sig_len);

/* A MAC key (KEY_LEN bytes, prepared once in secure memory). 0, PZ_EINVAL
 * or PZ_ENOMEM. */
int pz_wire_mac_new(const uint8_t *key, size_t key_len, pz_wire_mac **out);
void pz_wire_mac_free(pz_wire_mac *mac);

/* Ed25519 signature over DOMAIN ‖ 0x00 ‖ DATA with KEY into SIG (64
 * bytes). 0, PZ_ECRYPTO or PZ_ENOMEM. */
int pz_wire_sign(const pz_rpc_key *key, const char *domain, const uint8_t *data, size_t len,
                 uint8_t sig[PZ_WIRE_SIG_LEN]);

/* The crypto seam's signing key inside KEY (borrowed). */
pz_sign_key *pz_rpc_key_sign_key(const pz_rpc_key *key);

/* Well-formedness of names on the wire. */
int pz_wire_method_valid(const char *method);
int pz_wire_node_id_valid(const char *node_id);

/* Set ERROR (may be NULL) in the PZ_RPC_ERROR domain; returns CODE. */
int pz_rpc_set_error(GError **error, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

#endif /* PZ_CORE_RPC_WIRE_H */
