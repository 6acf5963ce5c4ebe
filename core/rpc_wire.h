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
 * Decoding takes untrusted bytes: the envelope must be in GVariant normal
 * form and of exactly the types above, names and ids well formed; anything
 * else is PZ_EPROTO (the caller closes the connection).
 *
 * Thread safety: the functions are reentrant; a pz_wire_mac is used by one
 * thread at a time.
 */
#ifndef PZ_CORE_RPC_WIRE_H
#define PZ_CORE_RPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <gnutls/abstract.h>

#include <prozsec/rpc.h>

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
/* Channel-binding (TLS exporter) label the MAC key is exported under. */
#define PZ_WIRE_MAC_LABEL "EXPORTER-prozsec-rpc-mac-v1"

#define PZ_WIRE_TYPE_ENVELOPE "(yyv)"
#define PZ_WIRE_TYPE_REQUEST "(((stayssuy)v)ay)"
#define PZ_WIRE_TYPE_REQUEST_SIGNED "((stayssuy)v)"
#define PZ_WIRE_TYPE_RESPONSE "((vaytsis)ay)"

/* Largest message kept in a response (bytes). */
#define PZ_WIRE_MESSAGE_MAX 256

/* An HMAC-SHA256 key for mac-mode envelopes of one connection. */
typedef struct pz_wire_mac pz_wire_mac;

/* What authenticates (or checks) an envelope. For MODE_SIG encoding uses
 * KEY, checking uses PUB; for MODE_MAC both use MAC. Members borrowed. */
typedef struct pz_wire_auth {
    int mode;               /* PZ_WIRE_MODE_*; 0: none (unauthenticated response) */
    const pz_rpc_key *key;  /* signing */
    gnutls_pubkey_t pub;    /* verifying */
    pz_wire_mac *mac;
} pz_wire_auth;

/* A decoded request; members point into ENV and live as long as it. */
typedef struct pz_wire_request {
    GVariant *env;         /* the envelope (owned reference) */
    GVariant *signed_part; /* ((stayssuy)v) (owned reference) */
    GVariant *params;      /* owned reference */
    const char *method;
    uint64_t timestamp_ns;
    const uint8_t *call_id; /* PZ_RPC_CALL_ID_LEN bytes */
    const char *caller;
    const char *target;
    uint32_t timeout_ms;
    uint8_t mode;
    const uint8_t *auth;
    size_t auth_len;
    GVariant *kids[4];     /* children kept alive for the pointers above */
} pz_wire_request;

/* A decoded response. */
typedef struct pz_wire_response {
    GVariant *env;
    GVariant *signed_part; /* (vaytsis) */
    GVariant *data;        /* owned reference */
    const uint8_t *call_id;
    uint64_t timestamp_ns;
    const char *sender;
    int32_t status;
    const char *message;
    const uint8_t *auth;
    size_t auth_len;
    GVariant *kids[4];
} pz_wire_response;

/* Decode the frame payload FRAME (LEN bytes, copied) as an envelope:
 * *KIND gets PZ_WIRE_KIND_REQUEST (REQ filled) or PZ_WIRE_KIND_RESPONSE
 * (RESP filled); REQ or RESP may be NULL to refuse that kind. Returns 0,
 * PZ_EPROTO (malformed, with a static reason in *WHY) or PZ_ENOMEM. */
int pz_wire_decode(const uint8_t *frame, size_t len, int *kind, pz_wire_request *req, pz_wire_response *resp,
                   const char **why);

void pz_wire_request_clear(pz_wire_request *req);
void pz_wire_response_clear(pz_wire_response *resp);

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
int pz_wire_verify_sig(gnutls_pubkey_t pub, const char *domain, const uint8_t *data, size_t len,
                       const uint8_t *sig, size_t sig_len);

/* Import a raw 32-byte Ed25519 public key. 0, PZ_ECRYPTO or PZ_ENOMEM. */
int pz_wire_pubkey_import(const uint8_t raw[32], gnutls_pubkey_t *out);

/* A MAC key (KEY_LEN bytes, copied into secure memory). 0, PZ_ECRYPTO or
 * PZ_ENOMEM. */
int pz_wire_mac_new(const uint8_t *key, size_t key_len, pz_wire_mac **out);
void pz_wire_mac_free(pz_wire_mac *mac);

/* Ed25519 signature over DOMAIN ‖ 0x00 ‖ DATA with KEY into SIG (64
 * bytes). 0 or PZ_ECRYPTO. */
int pz_wire_sign(const pz_rpc_key *key, const char *domain, const uint8_t *data, size_t len,
                 uint8_t sig[PZ_WIRE_SIG_LEN]);

/* Well-formedness of names on the wire. */
int pz_wire_method_valid(const char *method);
int pz_wire_node_id_valid(const char *node_id);

/* Set ERROR (may be NULL) in the PZ_RPC_ERROR domain; returns CODE. */
int pz_rpc_set_error(GError **error, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

#endif /* PZ_CORE_RPC_WIRE_H */
