/* plugins/tls/conn.c — one `tls` connection: non-blocking GnuTLS handshake
 * with a deadline, the checks that make it a prozsec handshake (suite and
 * version against the peer type's profile, the chain through certval, the
 * dialled node id), then records. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "tls_int.h"

#define MAX_CHAIN 16

enum { PHASE_HANDSHAKE = 0, PHASE_OPEN, PHASE_FAILED };

typedef struct pz_tls_conn {
    pz_tls_state *st;
    pz_tls_creds *cr; /* reference held until close */
    const pz_core *core;
    int fd;
    int server;
    int connecting; /* client: TCP connect in progress */
    int phase;
    int events;
    int pending; /* counted in st->pending */
    gnutls_session_t sess; /* created by the first handshake() call */
    uint64_t deadline_ns;
    pz_addr remote;
    char peer_buf[64]; /* remote address as text, made on first use (peer()) */
    char *resume_key;  /* client: "ADDRESS|NODE_ID" */
    char *expected;    /* client: node id dialled, or NULL */
    uint16_t suite;    /* from the ServerHello */
    int have_suite;
    /* Peer chain verdict (from the verify callback or after resumption). */
    int peer_checked;
    const char *refusal_token; /* static reason token, NULL when none */
    int alert;                 /* alert to send for our own refusal; 0 = handshake_failure */
    char refusal[256];
    char node_id[PZ_NODE_ID_MAX + 1];
    char node_type[PZ_NODE_TYPE_MAX + 1];
    /* What peer_credentials hands out. */
    size_t n_certs;
    uint8_t *der[MAX_CHAIN];
    size_t der_len[MAX_CHAIN];
    uint8_t cb[PZ_TLS_CB_LEN];
    size_t wpending; /* size of a record send that returned EAGAIN */
    /* verify: auth-chain, and no CA vouched for the peer's chain: it goes
     * to the auth chain flagged PZ_AUTH_CRED_UNVERIFIED_CHAIN. */
    int unverified;
    char chain_note[192];
} pz_tls_conn;

/* The remote address as text, for logs and messages. */
static const char *peer(pz_tls_conn *c)
{
    if (!c->peer_buf[0])
        pz_tls_addr_format(&c->remote, c->peer_buf, sizeof(c->peer_buf));
    return c->peer_buf;
}

static void release_pending(pz_tls_conn *c)
{
    if (c->pending) {
        atomic_fetch_sub(&c->st->pending, 1);
        c->pending = 0;
    }
}

static pz_tls_conn *conn_new(pz_tls_state *st, int fd, int server, const pz_addr *remote)
{
    pz_tls_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->st = st;
    c->core = st->core;
    c->cr = pz_tls_state_creds(st);
    c->fd = fd;
    c->server = server;
    c->phase = PHASE_HANDSHAKE;
    c->events = server ? PZ_IO_READ : PZ_IO_WRITE;
    c->remote = *remote;
    c->deadline_ns = st->core->monotonic_ns(st->core) + c->cr->handshake_timeout_ns;
    return c;
}

int pz_tls_conn_accepted(pz_tls_state *st, int fd, const pz_addr *remote, void **conn, pz_err *err)
{
    pz_tls_conn *c = conn_new(st, fd, 1, remote);
    if (!c)
        return st->core->error(st->core, err, PZ_ENOMEM, "tls: out of memory");
    c->pending = 1; /* the listener counted it */
    *conn = c;
    return 0;
}

int pz_tls_connect(void *state, const char *address, const char *expected_node_id, void **conn, pz_err *err)
{
    pz_tls_state *st = state;
    const pz_core *core = st->core;
    struct sockaddr_storage ss;
    unsigned sslen = 0;
    pz_addr remote;
    int rc;
    *conn = NULL;
    if (expected_node_id && !pz_node_id_valid(expected_node_id))
        return core->error(core, err, PZ_EINVAL,
                           "tls: \"%s\" is not a node id (1-64 of [A-Za-z0-9._-], not starting with . or -)",
                           expected_node_id);
    rc = pz_tls_parse_address(core, address, &ss, &sslen, err);
    if (rc != 0)
        return rc;
    pz_tls_addr_from_sockaddr(&ss, &remote);
    if (remote.port == 0)
        return core->error(core, err, PZ_EINVAL, "tls: cannot dial port 0 (%s)", address);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return core->error(core, err, PZ_EIO, "tls: socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&ss, sslen) != 0 && errno != EINPROGRESS) {
        rc = core->error(core, err, PZ_EIO, "tls: connect to %s: %s", address, strerror(errno));
        close(fd);
        return rc;
    }
    pz_tls_conn *c = conn_new(st, fd, 0, &remote);
    if (!c) {
        close(fd);
        return core->error(core, err, PZ_ENOMEM, "tls: out of memory");
    }
    c->connecting = 1;
    size_t klen = strlen(address) + 2 + (expected_node_id ? strlen(expected_node_id) : 0);
    c->resume_key = malloc(klen);
    c->expected = expected_node_id ? strdup(expected_node_id) : NULL;
    if (!c->resume_key || (expected_node_id && !c->expected)) {
        pz_tls_close(c);
        return core->error(core, err, PZ_ENOMEM, "tls: out of memory");
    }
    snprintf(c->resume_key, klen, "%s|%s", address, expected_node_id ? expected_node_id : "");
    *conn = c;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Refusals and failures */

static void set_refusal(pz_tls_conn *c, const char *token, const char *fmt, ...) PZ_PRINTF(3, 4);
static void set_refusal(pz_tls_conn *c, const char *token, const char *fmt, ...)
{
    if (c->refusal_token)
        return; /* the first reason wins */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->refusal, sizeof(c->refusal), fmt, ap);
    va_end(ap);
    c->refusal_token = token;
}

/* End the handshake with CODE: log it (refusals at NOTICE with their
 * reason token), count it, set ERR. */
static int fail(pz_tls_conn *c, int code, pz_err *err)
{
    const pz_core *core = c->core;
    const char *token = c->refusal_token ? c->refusal_token : "handshake";
    const char *dir = c->server ? "from" : "to";
    c->phase = PHASE_FAILED;
    release_pending(c);
    if (code == PZ_EREFUSED) {
        core->log(core, PZ_LOG_NOTICE, "handshake %s %s refused: reason=%s: %s", dir, peer(c), token, c->refusal);
        core->metric_add(core, "handshakes_refused_total", token, 1);
    } else {
        core->log(core, PZ_LOG_INFO, "handshake %s %s failed: reason=%s: %s", dir, peer(c), token, c->refusal);
        core->metric_add(core, "handshakes_failed_total", token, 1);
    }
    return core->error(core, err, code, "tls: handshake %s %s: %s: %s", dir, peer(c), token, c->refusal);
}

/* ------------------------------------------------------------------------ */
/* Peer chain */

int pz_tls_leaf_key_ok(const pz_tls_creds *cr, const uint8_t *der, size_t len, char *why, size_t whylen)
{
    int rc = -1;
    gnutls_x509_crt_t crt = NULL;
    unsigned bits = 0;
    gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
    if (len == 0 || len > (1u << 20) || gnutls_x509_crt_init(&crt) < 0) {
        snprintf(why, whylen, "certificate empty, too large or out of memory");
        return -1;
    }
    if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0) {
        snprintf(why, whylen, "certificate does not parse");
        goto out;
    }
    int pk = gnutls_x509_crt_get_pk_algorithm(crt, &bits);
    switch (pk) {
    case GNUTLS_PK_RSA:
    case GNUTLS_PK_RSA_PSS:
        if (bits < cr->min_rsa_bits) {
            snprintf(why, whylen, "RSA key of %u bits, policy minimum %u", bits, cr->min_rsa_bits);
            goto out;
        }
        break;
    case GNUTLS_PK_ECDSA:
        if (bits < cr->min_ecdsa_bits) {
            snprintf(why, whylen, "ECDSA key on a %u-bit curve, policy minimum %u", bits, cr->min_ecdsa_bits);
            goto out;
        }
        break;
    case GNUTLS_PK_EDDSA_ED25519:
    case GNUTLS_PK_EDDSA_ED448:
        break;
    default:
        snprintf(why, whylen, "key algorithm %s is not accepted",
                 pk < 0 ? "unknown" : gnutls_pk_algorithm_get_name((gnutls_pk_algorithm_t)pk));
        goto out;
    }
    rc = 0;
out:
    gnutls_x509_crt_deinit(crt);
    return rc;
}

int pz_tls_spki_pin(const uint8_t *der, size_t len, char *buf, size_t buflen)
{
    int rc = -1;
    gnutls_x509_crt_t crt = NULL;
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t spki = {NULL, 0};
    gnutls_datum_t d = {(unsigned char *)der, (unsigned)len};
    uint8_t sha[32];
    if (len == 0 || len > (1u << 20) || gnutls_x509_crt_init(&crt) < 0)
        return -1;
    if (gnutls_pubkey_init(&pub) < 0)
        goto out;
    if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0 || gnutls_pubkey_import_x509(pub, crt, 0) < 0 ||
        gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki) < 0 ||
        gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, sha) < 0)
        goto out;
    char *b = g_base64_encode(sha, sizeof(sha));
    snprintf(buf, buflen, "sha256//%s", b);
    g_free(b);
    rc = 0;
out:
    gnutls_free(spki.data);
    if (pub)
        gnutls_pubkey_deinit(pub);
    gnutls_x509_crt_deinit(crt);
    return rc;
}

/* verify: auth-chain, and no CA accepts the chain LIST[0..N-1] (WHY says
 * why): let it through to the auth chain, flagged not CA-validated, once
 * its leaf key meets the floors. The handshake still proves possession of
 * that key. Returns 0, or -1 with a refusal. */
static int leave_to_auth_chain(pz_tls_conn *c, const gnutls_datum_t *list, unsigned n, const char *why)
{
    char kwhy[160];
    (void)n;
    if (pz_tls_leaf_key_ok(c->cr, list[0].data, list[0].size, kwhy, sizeof(kwhy)) != 0) {
        c->alert = GNUTLS_A_INSUFFICIENT_SECURITY;
        set_refusal(c, "weak-key", "%s certificate: %s", c->server ? "client" : "server", kwhy);
        return -1;
    }
    /* The names it claims, for logs only: nothing vouches for them. */
    pz_certval_result claimed;
    gnutls_x509_crt_t crt = NULL;
    memset(&claimed, 0, sizeof(claimed));
    if (gnutls_x509_crt_init(&crt) >= 0) {
        if (gnutls_x509_crt_import(crt, &list[0], GNUTLS_X509_FMT_DER) >= 0)
            (void)pz__certval_identity(crt, 0, &claimed);
        gnutls_x509_crt_deinit(crt);
    }
    snprintf(c->node_id, sizeof(c->node_id), "%s", claimed.node_id[0] ? claimed.node_id : "?");
    c->node_type[0] = '\0'; /* a claimed type picks no profile: the default one applies */
    snprintf(c->chain_note, sizeof(c->chain_note), "not CA-validated (verify: auth-chain): %s", why);
    c->unverified = 1;
    c->peer_checked = 1;
    c->core->metric_add(c->core, "chains_left_to_auth_total", NULL, 1);
    return 0;
}

/* Check the peer's chain LIST[0..N-1] through certval (or the cache of
 * chains already verified under this credential set). Sets node id/type,
 * or a refusal. With verify: auth-chain, a chain no CA accepts is left to
 * the auth chain instead. Returns 0 when accepted. */
static int check_chain(pz_tls_conn *c, const gnutls_datum_t *list, unsigned n)
{
    pz_tls_creds *cr = c->cr;
    const uint8_t *der[MAX_CHAIN];
    size_t len[MAX_CHAIN];
    uint8_t sha[32];
    uint64_t now_s = c->core->realtime_ns(c->core) / 1000000000ull;
    if (n == 0) {
        set_refusal(c, "no-certificate", "%s presented no certificate", c->server ? "client" : "server");
        return -1;
    }
    if (n > MAX_CHAIN) {
        set_refusal(c, "chain-too-long", "peer presented %u certificates", n);
        return -1;
    }
    gnutls_hash_hd_t h;
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
        set_refusal(c, "internal", "cannot hash the peer chain");
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        der[i] = list[i].data;
        len[i] = list[i].size;
        uint8_t be[4] = {(uint8_t)(len[i] >> 24), (uint8_t)(len[i] >> 16), (uint8_t)(len[i] >> 8),
                         (uint8_t)len[i]};
        gnutls_hash(h, be, sizeof(be));
        gnutls_hash(h, der[i], len[i]);
    }
    gnutls_hash_deinit(h, sha);
    int purpose = c->server ? PZ_CERTVAL_CLIENT : PZ_CERTVAL_SERVER;
    sha[0] ^= (uint8_t)purpose; /* a chain accepted as client is not thereby accepted as server */
    c->unverified = 0;
    if (!cr->cv)
        return leave_to_auth_chain(c, list, n, "no ca configured");
    if (cr->vcache_on && pz_tls_vcache_get(cr, sha, now_s, c->node_id, c->node_type)) {
        c->core->metric_add(c->core, "verified_chain_cache_total", "hit", 1);
    } else {
        pz_certval_result res;
        int rc = pz_certval_verify(cr->cv, der, len, n, now_s, purpose, &res);
        if (rc != 0) {
            set_refusal(c, "internal", "certificate validation failed: %s", pz_strerror(rc));
            return -1;
        }
        if (!res.valid && cr->verify == PZ_TLS_VERIFY_AUTH_CHAIN) {
            char why[256];
            snprintf(why, sizeof(why), "ca does not accept it (%s: %s)", pz_certval_reason_name(res.reason),
                     res.reason_text);
            return leave_to_auth_chain(c, list, n, why);
        }
        if (!res.valid) {
            c->alert = res.reason == PZ_CV_EXPIRED   ? GNUTLS_A_CERTIFICATE_EXPIRED
                       : res.reason == PZ_CV_REVOKED ? GNUTLS_A_CERTIFICATE_REVOKED
                       : res.reason == PZ_CV_UNTRUSTED ? GNUTLS_A_UNKNOWN_CA
                                                       : GNUTLS_A_BAD_CERTIFICATE;
            set_refusal(c, pz_certval_reason_name(res.reason), "%s certificate%s%s: %s",
                        c->server ? "client" : "server", res.node_id[0] ? " of node " : "", res.node_id,
                        res.reason_text);
            return -1;
        }
        snprintf(c->node_id, sizeof(c->node_id), "%s", res.node_id);
        snprintf(c->node_type, sizeof(c->node_type), "%s", res.node_type);
        if (cr->vcache_on) {
            pz_tls_vcache_put(cr, sha, res.not_after, res.node_id, res.node_type);
            c->core->metric_add(c->core, "verified_chain_cache_total", "miss", 1);
        }
    }
    if (!c->server && c->expected && strcmp(c->node_id, c->expected) != 0) {
        c->alert = GNUTLS_A_BAD_CERTIFICATE;
        set_refusal(c, "unexpected-node", "dialled node %s but the server is node %s", c->expected, c->node_id);
        return -1;
    }
    c->peer_checked = 1;
    return 0;
}

int pz_tls_verify_cb(gnutls_session_t session)
{
    pz_tls_conn *c = gnutls_session_get_ptr(session);
    if (!c)
        return -1;
    unsigned n = 0;
    const gnutls_datum_t *list = gnutls_certificate_get_peers(session, &n);
    if (!list || n == 0) {
        /* A client without a certificate: its profile decides afterwards. */
        if (c->server)
            return 0;
        set_refusal(c, "no-certificate", "server presented no certificate");
        return -1;
    }
    return check_chain(c, list, n) == 0 ? 0 : -1;
}

/* The suite is chosen in the ServerHello: refuse one no profile allows
 * before any key is derived from it (GnuTLS enables algorithms, not
 * suites; see profile.h). */
static int hello_hook(gnutls_session_t session, unsigned htype, unsigned when, unsigned incoming,
                      const gnutls_datum_t *msg)
{
    pz_tls_conn *c = gnutls_session_get_ptr(session);
    (void)when;
    (void)incoming;
    if (!c || htype != GNUTLS_HANDSHAKE_SERVER_HELLO)
        return 0;
    /* legacy_version(2) random(32) session_id<0..32> cipher_suite(2) */
    if (!msg || msg->size < 35) {
        set_refusal(c, "protocol", "malformed ServerHello");
        return GNUTLS_E_UNEXPECTED_PACKET;
    }
    size_t sid = msg->data[34];
    if (35 + sid + 2 > msg->size) {
        set_refusal(c, "protocol", "malformed ServerHello");
        return GNUTLS_E_UNEXPECTED_PACKET;
    }
    c->suite = (uint16_t)(msg->data[35 + sid] << 8 | msg->data[36 + sid]);
    c->have_suite = 1;
    if (!pz_tls_profiles_have_suite(&c->cr->profiles, c->suite)) {
        const pz_tls_suite *s = pz_tls_suite_by_id(c->suite);
        set_refusal(c, "cipher-suite", "cipher suite %s (0x%04X) is not allowed by any profile",
                    s ? s->iana : "unknown", c->suite);
        return GNUTLS_E_UNWANTED_ALGORITHM;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Handshake */

static int setup_session(pz_tls_conn *c, pz_err *err)
{
    pz_tls_creds *cr = c->cr;
    unsigned flags = (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL;
    if (!cr->tickets)
        flags |= GNUTLS_NO_TICKETS;
    int g = gnutls_init(&c->sess, flags);
    if (g < 0) {
        c->sess = NULL;
        set_refusal(c, "internal", "gnutls_init: %s", gnutls_strerror(g));
        return fail(c, PZ_ENOMEM, err);
    }
    gnutls_session_set_ptr(c->sess, c);
    if ((g = gnutls_priority_set(c->sess, cr->prio)) < 0 ||
        (g = gnutls_credentials_set(c->sess, GNUTLS_CRD_CERTIFICATE, cr->x509)) < 0) {
        set_refusal(c, "internal", "session setup: %s", gnutls_strerror(g));
        return fail(c, PZ_EINTERNAL, err);
    }
    gnutls_handshake_set_hook_function(c->sess, GNUTLS_HANDSHAKE_SERVER_HELLO, GNUTLS_HOOK_POST, hello_hook);
    gnutls_handshake_set_timeout(c->sess, (unsigned)(cr->handshake_timeout_ns / 1000000ull));
    gnutls_transport_set_int(c->sess, c->fd);
    if (c->server) {
        gnutls_certificate_request_t req = cr->request == PZ_TLS_CLIENT_AUTH_REQUIRED   ? GNUTLS_CERT_REQUIRE
                                           : cr->request == PZ_TLS_CLIENT_AUTH_OPTIONAL ? GNUTLS_CERT_REQUEST
                                                                                        : GNUTLS_CERT_IGNORE;
        gnutls_certificate_server_set_request(c->sess, req);
        if (cr->tickets) {
            uint8_t key[PZ_TLS_TICKET_KEY_LEN];
            gnutls_datum_t d = {key, sizeof(key)};
            int rc = pz_tls_ticket_key(c->st, cr, key);
            if (rc == 0) {
                g = gnutls_session_ticket_enable_server(c->sess, &d);
                gnutls_db_set_cache_expiration(c->sess, (int)(cr->ticket_lifetime_ns / 1000000000ull));
            }
            gnutls_memset(key, 0, sizeof(key));
            if (rc != 0 || g < 0)
                c->core->log(c->core, PZ_LOG_WARNING, "session tickets unavailable for %s: %s", peer(c),
                             rc != 0 ? pz_strerror(rc) : gnutls_strerror(g));
        }
    } else {
        if (c->expected) {
            char sni[PZ_NODE_ID_MAX + 32];
            snprintf(sni, sizeof(sni), "%s.nodes.prozchain.io", c->expected);
            gnutls_server_name_set(c->sess, GNUTLS_NAME_DNS, sni, strlen(sni));
        }
        gnutls_datum_t d;
        if (cr->tickets && pz_tls_resume_get(c->st, c->resume_key, &d)) {
            gnutls_session_set_data(c->sess, d.data, d.size);
            gnutls_memset(d.data, 0, d.size);
            gnutls_free(d.data);
        }
    }
    return 0;
}

/* Map a fatal gnutls_handshake error to a refusal or failure. */
static int handshake_error(pz_tls_conn *c, int g, pz_err *err)
{
    int code = PZ_EPROTO;
    if (c->refusal_token) {
        /* Our verify callback or ServerHello hook refused: its reason stands. */
        code = strcmp(c->refusal_token, "internal") ? PZ_EREFUSED : PZ_EINTERNAL;
        gnutls_alert_send(c->sess, GNUTLS_AL_FATAL, c->alert ? (gnutls_alert_description_t)c->alert
                                                             : GNUTLS_A_HANDSHAKE_FAILURE);
        return fail(c, code, err);
    }
    switch (g) {
    case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
        set_refusal(c, "protocol-version", "peer offered no TLS version this node accepts (TLS 1.2 or 1.3)");
        code = PZ_EREFUSED;
        break;
    case GNUTLS_E_NO_CIPHER_SUITES:
    case GNUTLS_E_UNKNOWN_CIPHER_SUITE:
    case GNUTLS_E_NO_COMMON_KEY_SHARE:
    case GNUTLS_E_INSUFFICIENT_CREDENTIALS:
    case GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM:
    case GNUTLS_E_UNWANTED_ALGORITHM:
        set_refusal(c, "no-shared-cipher", "no allowed cipher suite, group or signature algorithm in common: %s",
                    gnutls_strerror(g));
        code = PZ_EREFUSED;
        break;
    case GNUTLS_E_NO_CERTIFICATE_FOUND:
    case GNUTLS_E_CERTIFICATE_REQUIRED:
        set_refusal(c, "no-certificate", "%s presented no certificate and client_auth is required",
                    c->server ? "client" : "server");
        code = PZ_EREFUSED;
        break;
    case GNUTLS_E_FATAL_ALERT_RECEIVED:
        set_refusal(c, "alert", "peer sent alert: %s", gnutls_alert_get_name(gnutls_alert_get(c->sess)));
        break;
    case GNUTLS_E_TIMEDOUT:
        set_refusal(c, "timeout", "handshake deadline passed");
        code = PZ_ETIMEDOUT;
        break;
    case GNUTLS_E_PREMATURE_TERMINATION:
    case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
        set_refusal(c, "eof", "peer closed the connection during the handshake");
        code = PZ_EOF;
        break;
    case GNUTLS_E_PUSH_ERROR:
    case GNUTLS_E_PULL_ERROR:
        set_refusal(c, "io", "%s", gnutls_strerror(g));
        code = PZ_EIO;
        break;
    default:
        set_refusal(c, "handshake", "%s", gnutls_strerror(g));
        break;
    }
    if (code != PZ_EIO && code != PZ_EOF && g != GNUTLS_E_FATAL_ALERT_RECEIVED)
        gnutls_alert_send_appropriate(c->sess, g);
    return fail(c, code, err);
}

/* Policy after GnuTLS says the handshake is complete. */
static int finish(pz_tls_conn *c, pz_err *err)
{
    pz_tls_creds *cr = c->cr;
    gnutls_session_t s = c->sess;
    int version;
    switch (gnutls_protocol_get_version(s)) {
    case GNUTLS_TLS1_3: version = PZ_TLS_V13; break;
    case GNUTLS_TLS1_2: version = PZ_TLS_V12; break;
    default:
        set_refusal(c, "protocol-version", "negotiated %s", gnutls_protocol_get_name(gnutls_protocol_get_version(s)));
        goto refuse;
    }
    unsigned n = 0;
    const gnutls_datum_t *list = gnutls_certificate_get_peers(s, &n);
    if (!list)
        n = 0;
    /* A resumed session skipped the verify callback: check the chain the
     * ticket carried (cheap when this credential set verified it before). */
    if (n > 0 && !c->peer_checked && check_chain(c, list, n) != 0)
        goto refuse;
    if (n == 0 && !c->server) {
        set_refusal(c, "no-certificate", "server presented no certificate");
        goto refuse;
    }
    const pz_tls_profile *p = pz_tls_profiles_find(&cr->profiles, n && !c->unverified ? c->node_type : NULL);
    if (version < p->min_version) {
        set_refusal(c, "protocol-version", "%s negotiated but profile %s requires min_version %s",
                    pz_tls_version_name(version), p->name, pz_tls_version_name(p->min_version));
        goto refuse;
    }
    if (!c->have_suite || !pz_tls_profile_has_suite(p, c->suite)) {
        const pz_tls_suite *su = pz_tls_suite_by_id(c->suite);
        set_refusal(c, "cipher-suite", "cipher suite %s is not in profile %s", su ? su->iana : "unknown", p->name);
        goto refuse;
    }
    if (c->server && n == 0 && p->client_auth == PZ_TLS_CLIENT_AUTH_REQUIRED) {
        set_refusal(c, "no-certificate", "client presented no certificate and profile %s requires one", p->name);
        goto refuse;
    }
    if (version == PZ_TLS_V12 && cr->require_ems && !gnutls_session_ext_master_secret_status(s)) {
        set_refusal(c, "no-extended-master-secret",
                    "TLS 1.2 without the extended master secret (RFC 7627) cannot bind channels");
        goto refuse;
    }
    if (n > MAX_CHAIN)
        n = MAX_CHAIN;
    for (unsigned i = 0; i < n; i++) {
        c->der[i] = malloc(list[i].size);
        if (!c->der[i]) {
            set_refusal(c, "internal", "out of memory");
            return fail(c, PZ_ENOMEM, err);
        }
        memcpy(c->der[i], list[i].data, list[i].size);
        c->der_len[i] = list[i].size;
        c->n_certs = i + 1;
    }
    if (gnutls_prf_rfc5705(s, strlen(PZ_TLS_CB_LABEL), PZ_TLS_CB_LABEL, 0, NULL, PZ_TLS_CB_LEN, (char *)c->cb) <
        0) {
        set_refusal(c, "internal", "cannot export channel binding");
        return fail(c, PZ_ECRYPTO, err);
    }
    c->phase = PHASE_OPEN;
    c->events = PZ_IO_READ;
    release_pending(c);
    int resumed = gnutls_session_is_resumed(s);
    const pz_tls_suite *su = pz_tls_suite_by_id(c->suite);
    c->core->log(c->core, PZ_LOG_DEBUG, "handshake %s %s: %s %s, node %s (%s)%s", c->server ? "from" : "to",
                 peer(c), pz_tls_version_name(version), su ? su->iana : "?", n ? c->node_id : "-",
                 !n ? "-" : c->unverified ? "claimed, not CA-validated" : c->node_type, resumed ? ", resumed" : "");
    c->core->metric_add(c->core, "handshakes_total", resumed ? "resumed" : "full", 1);
    return 0;
refuse:
    gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_ACCESS_DENIED);
    return fail(c, PZ_EREFUSED, err);
}

int pz_tls_handshake(void *conn, pz_err *err)
{
    pz_tls_conn *c = conn;
    const pz_core *core = c->core;
    if (c->phase == PHASE_OPEN)
        return 0;
    if (c->phase == PHASE_FAILED)
        return core->error(core, err, PZ_ECLOSED, "tls: handshake %s %s already failed", c->server ? "from" : "to",
                           peer(c));
    if (core->monotonic_ns(core) >= c->deadline_ns) {
        set_refusal(c, "timeout", "handshake deadline of %.3gs passed",
                    (double)c->cr->handshake_timeout_ns / 1e9);
        return fail(c, PZ_ETIMEDOUT, err);
    }
    if (c->connecting) {
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        int n = poll(&p, 1, 0);
        if (n == 0) {
            c->events = PZ_IO_WRITE;
            return PZ_EAGAIN;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (n < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            set_refusal(c, "connect", "connect to %s: %s", peer(c), strerror(soerr ? soerr : errno));
            return fail(c, PZ_EIO, err);
        }
        c->connecting = 0;
    }
    if (!c->sess) {
        int rc = setup_session(c, err);
        if (rc != 0)
            return rc;
    }
    for (int tries = 0; tries < 16; tries++) {
        int g = gnutls_handshake(c->sess);
        if (g == GNUTLS_E_SUCCESS)
            return finish(c, err);
        if (g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED) {
            c->events = gnutls_record_get_direction(c->sess) ? PZ_IO_WRITE : PZ_IO_READ;
            return PZ_EAGAIN;
        }
        if (gnutls_error_is_fatal(g))
            return handshake_error(c, g, err);
        /* A warning alert or similar: keep going. */
    }
    set_refusal(c, "handshake", "too many non-fatal handshake events");
    return fail(c, PZ_EPROTO, err);
}

/* ------------------------------------------------------------------------ */
/* Records */

int pz_tls_conn_fd(void *conn)
{
    return ((pz_tls_conn *)conn)->fd;
}

int pz_tls_conn_events(void *conn)
{
    return ((pz_tls_conn *)conn)->events;
}

static int not_open(pz_tls_conn *c, pz_err *err)
{
    return c->core->error(c->core, err, c->phase == PHASE_FAILED ? PZ_ECLOSED : PZ_EINVAL,
                          "tls: connection %s %s is not established", c->server ? "from" : "to", peer(c));
}

int pz_tls_read(void *conn, void *buf, size_t len, size_t *nread, pz_err *err)
{
    pz_tls_conn *c = conn;
    *nread = 0;
    if (c->phase != PHASE_OPEN)
        return not_open(c, err);
    if (len == 0)
        return c->core->error(c->core, err, PZ_EINVAL, "tls: read of 0 bytes");
    for (int tries = 0; tries < 16; tries++) {
        ssize_t n = gnutls_record_recv(c->sess, buf, len);
        if (n > 0) {
            *nread = (size_t)n;
            return 0;
        }
        if (n == 0)
            return PZ_EOF;
        switch (n) {
        case GNUTLS_E_AGAIN:
        case GNUTLS_E_INTERRUPTED:
            c->events = gnutls_record_get_direction(c->sess) ? PZ_IO_WRITE : PZ_IO_READ;
            return PZ_EAGAIN;
        case GNUTLS_E_REHANDSHAKE:
            /* TLS 1.2 renegotiation is not supported: say so and go on. */
            gnutls_alert_send(c->sess, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
            continue;
        case GNUTLS_E_PREMATURE_TERMINATION:
            /* GnuTLS says this for an end of stream with no byte of a
             * further record read: the peer dropped the connection between
             * records without close_notify (a killed process, a reset, a
             * NAT timeout). Nothing it sent is lost or altered, so it is a
             * plain end of stream; whether it cut an application frame short
             * is the framing layer's call (core/rpc_chan.c). */
            c->phase = PHASE_FAILED;
            return PZ_EOF;
        case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
            /* The stream ended (or lied) inside a record: truncation. */
            c->phase = PHASE_FAILED;
            return c->core->error(c->core, err, PZ_EPROTO, "tls: %s closed the connection inside a TLS record",
                                  peer(c));
        case GNUTLS_E_PULL_ERROR:
            c->phase = PHASE_FAILED;
            return c->core->error(c->core, err, PZ_EIO, "tls: read from %s: %s", peer(c), strerror(errno));
        default:
            if (!gnutls_error_is_fatal((int)n))
                continue;
            c->phase = PHASE_FAILED;
            return c->core->error(c->core, err, PZ_EPROTO, "tls: read from %s: %s", peer(c),
                                  gnutls_strerror((int)n));
        }
    }
    c->events = PZ_IO_READ;
    return PZ_EAGAIN;
}

int pz_tls_write(void *conn, const void *buf, size_t len, size_t *nwritten, pz_err *err)
{
    pz_tls_conn *c = conn;
    *nwritten = 0;
    if (c->phase != PHASE_OPEN)
        return not_open(c, err);
    if (len == 0 || !buf)
        return c->core->error(c->core, err, PZ_EINVAL, "tls: write of 0 bytes");
    /* After PZ_EAGAIN GnuTLS holds the encrypted record: the caller offers
     * the same bytes again and GnuTLS finishes sending them. */
    if (c->wpending && len < c->wpending)
        return c->core->error(c->core, err, PZ_EINVAL,
                              "tls: write retried with %zu bytes after a blocked write of %zu; offer the same "
                              "bytes again",
                              len, c->wpending);
    ssize_t n = gnutls_record_send(c->sess, buf, len);
    if (n > 0) {
        c->wpending = 0;
        *nwritten = (size_t)n;
        return 0;
    }
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
        if (!c->wpending)
            c->wpending = len > 16384 ? 16384 : len;
        c->events = gnutls_record_get_direction(c->sess) ? PZ_IO_WRITE : PZ_IO_READ;
        return PZ_EAGAIN;
    }
    c->phase = PHASE_FAILED;
    return c->core->error(c->core, err, n == GNUTLS_E_PUSH_ERROR ? PZ_EIO : PZ_EPROTO, "tls: write to %s: %s",
                          peer(c), gnutls_strerror((int)n));
}

void pz_tls_close(void *conn)
{
    pz_tls_conn *c = conn;
    if (!c)
        return;
    if (c->sess) {
        if (c->phase == PHASE_OPEN) {
            if (!c->server && c->cr->tickets && c->resume_key &&
                (gnutls_session_get_flags(c->sess) & GNUTLS_SFLAGS_SESSION_TICKET)) {
                gnutls_datum_t d = {NULL, 0};
                if (gnutls_session_get_data2(c->sess, &d) == 0) {
                    pz_tls_resume_put(c->st, c->resume_key, &d);
                    gnutls_memset(d.data, 0, d.size);
                    gnutls_free(d.data);
                }
            }
            gnutls_bye(c->sess, GNUTLS_SHUT_WR); /* one non-blocking attempt */
        }
        gnutls_deinit(c->sess);
    }
    if (c->fd >= 0)
        close(c->fd);
    release_pending(c);
    for (size_t i = 0; i < c->n_certs; i++)
        free(c->der[i]);
    gnutls_memset(c->cb, 0, sizeof(c->cb));
    pz_tls_creds_unref(c->cr);
    free(c->resume_key);
    free(c->expected);
    free(c);
}

/* ------------------------------------------------------------------------ */
/* What the auth chain sees */

int pz_tls_peer_credentials(void *conn, pz_auth_credentials *cred)
{
    pz_tls_conn *c = conn;
    if (!c || !cred || c->phase != PHASE_OPEN)
        return PZ_EINVAL;
    memset(cred, 0, sizeof(*cred));
    cred->struct_size = sizeof(*cred);
    cred->transport = "tls";
    cred->addr = &c->remote;
    cred->n_certs = c->n_certs;
    cred->cert_der = (const uint8_t *const *)c->der;
    cred->cert_der_len = c->der_len;
    cred->channel_binding = c->cb;
    cred->channel_binding_len = PZ_TLS_CB_LEN;
    cred->expected_node_id = c->server ? NULL : c->expected;
    if (c->unverified && c->n_certs > 0) {
        cred->flags |= PZ_AUTH_CRED_UNVERIFIED_CHAIN;
        cred->chain_note = c->chain_note;
    }
    return 0;
}

int pz_tls_channel_binding(void *conn, const char *label, uint8_t *out, size_t len, pz_err *err)
{
    pz_tls_conn *c = conn;
    if (c->phase != PHASE_OPEN)
        return not_open(c, err);
    if (!label || !*label || !out || len == 0 || len > 1024)
        return c->core->error(c->core, err, PZ_EINVAL, "tls: channel binding needs a label and 1..1024 bytes");
    int g = gnutls_prf_rfc5705(c->sess, strlen(label), label, 0, NULL, len, (char *)out);
    if (g < 0)
        return c->core->error(c->core, err, PZ_ECRYPTO, "tls: exporter: %s", gnutls_strerror(g));
    return 0;
}
