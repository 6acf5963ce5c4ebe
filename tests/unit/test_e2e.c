/* tests/unit/test_e2e.c — E2E envelopes (core/e2e.c) through the public
 * API: round trips for every suite and both sender modes, every open
 * failure path with its own error code, key rotation as seen by open, the
 * codec's structural checks, and the bounded replay cache (core/replay.c).
 * Time is passed in: no test reads the clock or asserts on timings. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>

#include <prozsec/e2e.h>

#include "e2e.h"
#include "err.h"
#include "nodekeys.h"
#include "pki.h"
#include "replay.h"
#include "../testutil.h"

#define SEC G_GUINT64_CONSTANT(1000000000)
#define MS G_GUINT64_CONSTANT(1000000)
static const uint64_t T0 = G_GUINT64_CONSTANT(1700000000) * SEC;

typedef struct node {
    char *dir;
    pz_e2e *e2e;
    uint8_t sign_pub[32], e2e_pub[32];
} node;

typedef struct fixture {
    char *tmp;
    node alice, bob, carol;
} fixture;

static void node_make(fixture *f, node *n, const char *id, const pz_e2e_options *opts)
{
    pz_err err;
    GError *gerr = NULL;
    pz_err_init(&err);
    n->dir = g_build_filename(f->tmp, id, NULL);
    assert_int_equal(pz_nodekeys_generate(n->dir, 0, n->sign_pub, n->e2e_pub, &err), 0);
    if (pz_e2e_new(id, n->dir, opts, &n->e2e, &gerr))
        fail_msg("pz_e2e_new(%s): %s", id, gerr->message);
    pz_err_clear(&err);
}

static void meet(node *a, node *b)
{
    assert_int_equal(pz_e2e_add_peer(a->e2e, pz_e2e_node_id(b->e2e), b->sign_pub, b->e2e_pub, NULL), 0);
    assert_int_equal(pz_e2e_add_peer(b->e2e, pz_e2e_node_id(a->e2e), a->sign_pub, a->e2e_pub, NULL), 0);
}

static int setup_opts(void **state, const pz_e2e_options *opts)
{
    fixture *f = g_new0(fixture, 1);
    f->tmp = g_dir_make_tmp("pz-e2e-XXXXXX", NULL);
    if (!f->tmp)
        return -1;
    node_make(f, &f->alice, "alice", opts);
    node_make(f, &f->bob, "bob", opts);
    node_make(f, &f->carol, "carol.node-3", opts);
    meet(&f->alice, &f->bob);
    /* carol knows alice, bob knows nothing of carol */
    assert_int_equal(pz_e2e_add_peer(f->carol.e2e, "alice", f->alice.sign_pub, f->alice.e2e_pub, NULL), 0);
    assert_int_equal(pz_e2e_add_peer(f->alice.e2e, "carol.node-3", f->carol.sign_pub, f->carol.e2e_pub, NULL), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_opts(state, NULL);
}

static int teardown(void **state)
{
    fixture *f = *state;
    node *nodes[] = {&f->alice, &f->bob, &f->carol};
    for (size_t i = 0; i < 3; i++) {
        pz_e2e_free(nodes[i]->e2e);
        g_free(nodes[i]->dir);
    }
    pz_test_rm_rf(f->tmp);
    g_free(f->tmp);
    g_free(f);
    return 0;
}

/* Seal MSG from A to RECIPIENT at NOW with PARAMS; the envelope is g_malloc'd. */
static uint8_t *seal(node *a, const char *recipient, const pz_e2e_seal_params *params, const char *msg,
                     uint64_t now, size_t *len)
{
    uint8_t *out = NULL;
    GError *gerr = NULL;
    if (pz_e2e_seal(a->e2e, recipient, params, (const uint8_t *)msg, strlen(msg), now, &out, len, &gerr))
        fail_msg("seal: %s", gerr->message);
    return out;
}

/* Open and expect failure with RC and GError CODE; checks nothing leaks. */
static void expect_refusal(node *n, const uint8_t *env, size_t len, const pz_e2e_open_params *params, uint64_t now,
                           int rc, pz_e2e_error code)
{
    uint8_t *msg = (uint8_t *)"sentinel";
    size_t msg_len = 99;
    GError *gerr = NULL;
    int got = pz_e2e_open(n->e2e, env, len, params, now, &msg, &msg_len, NULL, &gerr);
    if (got != rc || !gerr || gerr->code != (int)code)
        fail_msg("open: expected rc %d code %d, got rc %d code %d (%s)", rc, code, got, gerr ? gerr->code : 0,
                 gerr ? gerr->message : "no error");
    assert_true(g_error_matches(gerr, PZ_E2E_ERROR, (gint)code));
    assert_null(msg);
    assert_int_equal(msg_len, 0);
    g_error_free(gerr);
}

static void expect_open(node *n, const uint8_t *env, size_t len, const pz_e2e_open_params *params, uint64_t now,
                        const char *want, pz_e2e_meta *meta)
{
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    GError *gerr = NULL;
    if (pz_e2e_open(n->e2e, env, len, params, now, &msg, &msg_len, meta, &gerr))
        fail_msg("open: %s", gerr->message);
    assert_int_equal(msg_len, strlen(want));
    assert_memory_equal(msg, want, msg_len);
    pz_e2e_free_bytes(msg, msg_len);
}

/* --- round trips -------------------------------------------------------- */

static void test_round_trips(void **state)
{
    fixture *f = *state;
    static const pz_e2e_suite suites[] = {PZ_E2E_SUITE_DEFAULT, PZ_E2E_SUITE_CHACHA20_POLY1305,
                                          PZ_E2E_SUITE_AES_256_GCM, PZ_E2E_SUITE_AES_128_GCM};
    static const size_t sizes[] = {0, 1, 1024, 100000};
    uint64_t now = T0;
    unsigned n = 0;

    for (size_t s = 0; s < G_N_ELEMENTS(suites); s++) {
        for (int sealed = 0; sealed < 2; sealed++) {
            for (size_t z = 0; z < G_N_ELEMENTS(sizes); z++) {
                for (int with_aad = 0; with_aad < 2; with_aad++) {
                    g_autofree uint8_t *msg = g_malloc(sizes[z] + 1);
                    for (size_t i = 0; i < sizes[z]; i++)
                        msg[i] = (uint8_t)(i * 7 + s);
                    pz_e2e_seal_params sp = {sizeof(sp), suites[s], sealed, with_aad ? (const uint8_t *)"hdr" : NULL,
                                             with_aad ? 3 : 0};
                    uint8_t *env = NULL, *out = NULL;
                    size_t env_len = 0, out_len = 0;
                    pz_e2e_meta meta = {sizeof(meta)};
                    now += MS;
                    assert_int_equal(pz_e2e_seal(f->alice.e2e, "bob", &sp, msg, sizes[z], now, &env, &env_len, NULL), 0);
                    assert_int_equal(pz_e2e_open(f->bob.e2e, env, env_len, NULL, now + 5 * SEC, &out, &out_len, &meta, NULL), 0);
                    assert_int_equal(out_len, sizes[z]);
                    if (sizes[z])
                        assert_memory_equal(out, msg, sizes[z]);
                    assert_string_equal(meta.sender_id, "alice");
                    assert_int_equal(meta.timestamp_ns, now);
                    assert_int_equal(meta.suite, suites[s] ? suites[s] : PZ_E2E_SUITE_CHACHA20_POLY1305);
                    assert_int_equal(meta.sealed_sender, sealed);
                    assert_int_equal(meta.aad_len, with_aad ? 3 : 0);
                    if (with_aad)
                        assert_memory_equal(meta.aad, "hdr", 3);
                    /* What a relay sees: the recipient always; the sender only
                     * without sealed sender. */
                    assert_non_null(memmem(env, env_len, "bob", 3));
                    if (sealed)
                        assert_null(memmem(env, env_len, "alice", 5));
                    else
                        assert_non_null(memmem(env, env_len, "alice", 5));
                    pz_e2e_free_bytes(out, out_len);
                    free(env);
                    n++;
                }
            }
        }
    }
    printf("# %u round trips (4 suites x 2 sender modes x 4 sizes x AAD or not)\n", n);

    /* To ourselves, and back and forth. */
    size_t len;
    g_autofree uint8_t *self = seal(&f->bob, "bob", NULL, "note to self", T0, &len);
    expect_open(&f->bob, self, len, NULL, T0, "note to self", NULL);
    g_autofree uint8_t *back = seal(&f->bob, "alice", NULL, "reply", T0, &len);
    expect_open(&f->alice, back, len, NULL, T0, "reply", NULL);
    /* Two seals of the same message differ (fresh ephemeral key, id). */
    size_t l1, l2;
    g_autofree uint8_t *e1 = seal(&f->alice, "bob", NULL, "same", T0, &l1);
    g_autofree uint8_t *e2 = seal(&f->alice, "bob", NULL, "same", T0, &l2);
    assert_int_equal(l1, l2);
    assert_memory_not_equal(e1, e2, l1);
}

static void test_open_params(void **state)
{
    fixture *f = *state;
    size_t len;
    pz_e2e_seal_params sp = {sizeof(sp), 0, 0, (const uint8_t *)"ctx", 3};
    uint8_t *env = NULL;
    assert_int_equal(pz_e2e_seal(f->alice.e2e, "bob", &sp, (const uint8_t *)"hi", 2, T0, &env, &len, NULL), 0);

    /* Expected sender and AAD: a mismatch is refused before any crypto. */
    pz_e2e_open_params op = {sizeof(op), "carol.node-3", 0, NULL, 0};
    expect_refusal(&f->bob, env, len, &op, T0, PZ_EREFUSED, PZ_E2E_ERROR_SENDER_UNEXPECTED);
    pz_e2e_open_params aad = {sizeof(aad), NULL, 1, (const uint8_t *)"CTX", 3};
    expect_refusal(&f->bob, env, len, &aad, T0, PZ_EREFUSED, PZ_E2E_ERROR_AAD);
    pz_e2e_open_params noaad = {sizeof(noaad), NULL, 1, NULL, 0};
    expect_refusal(&f->bob, env, len, &noaad, T0, PZ_EREFUSED, PZ_E2E_ERROR_AAD);
    pz_e2e_open_params good = {sizeof(good), "alice", 1, (const uint8_t *)"ctx", 3};
    expect_open(&f->bob, env, len, &good, T0, "hi", NULL);
    pz_e2e_open_params zero = {0};
    expect_refusal(&f->bob, env, len, &zero, T0, PZ_EINVAL, PZ_E2E_ERROR_INVALID);
    free(env);
}

/* --- every open failure ------------------------------------------------- */

static void test_wrong_recipient(void **state)
{
    fixture *f = *state;
    size_t len;
    g_autofree uint8_t *env = seal(&f->alice, "bob", NULL, "for bob", T0, &len);
    expect_refusal(&f->carol, env, len, NULL, T0, PZ_EREFUSED, PZ_E2E_ERROR_RECIPIENT);
    pz_e2e_seal_params sealed = {sizeof(sealed), 0, 1, NULL, 0};
    g_autofree uint8_t *env2 = seal(&f->alice, "bob", &sealed, "for bob", T0, &len);
    expect_refusal(&f->carol, env2, len, NULL, T0, PZ_EREFUSED, PZ_E2E_ERROR_RECIPIENT);
}

/* The errors (a bit mask of pz_e2e_error codes) a one-byte change at
 * OFFSET of an outer-signed envelope may give, by field. */
#define BIT(c) (1u << (c))
static unsigned field_errors(const pz__e2e_env *e, const uint8_t *base, size_t off)
{
    size_t sender_off = 4, recip_len_off = 4 + e->sender_len;
    size_t key_off = (size_t)(e->key_id - base), ts_off = key_off + PZ_E2E_KEY_ID_LEN;
    size_t aad_len_off = e->header_len - e->aad_len - 4, ct_len_off = e->header_len;
    if (off == 0)
        return BIT(PZ_E2E_ERROR_VERSION);
    if (off == 1)
        return BIT(PZ_E2E_ERROR_SUITE);
    if (off == 2 || off == 3 || off == recip_len_off || (off >= aad_len_off && off < aad_len_off + 4) ||
        (off >= ct_len_off && off < ct_len_off + 4))
        return BIT(PZ_E2E_ERROR_MALFORMED); /* flags, lengths */
    /* An id byte may become an invalid character (MALFORMED) or another id. */
    if (off >= sender_off && off < recip_len_off)
        return BIT(PZ_E2E_ERROR_SENDER_UNKNOWN) | BIT(PZ_E2E_ERROR_MALFORMED);
    if (off > recip_len_off && off < key_off)
        return BIT(PZ_E2E_ERROR_RECIPIENT) | BIT(PZ_E2E_ERROR_MALFORMED);
    if (off >= key_off && off < ts_off)
        return BIT(PZ_E2E_ERROR_KEY_UNKNOWN);
    /* The timestamp is checked before the signature: a high bit moves it out
     * of the window. */
    if (off >= ts_off && off < ts_off + 8)
        return BIT(PZ_E2E_ERROR_FUTURE) | BIT(PZ_E2E_ERROR_EXPIRED) | BIT(PZ_E2E_ERROR_SIGNATURE);
    return BIT(PZ_E2E_ERROR_SIGNATURE); /* message id, enc, aad, ct, signature */
}

static void test_tamper_every_byte(void **state)
{
    fixture *f = *state;
    size_t len;
    pz_e2e_seal_params sp = {sizeof(sp), 0, 0, (const uint8_t *)"aad", 3};
    uint8_t *env = NULL;
    pz__e2e_env parsed;
    unsigned by_code[32] = {0};

    assert_int_equal(pz_e2e_seal(f->alice.e2e, "bob", &sp, (const uint8_t *)"payload", 7, T0, &env, &len, NULL), 0);
    assert_int_equal(pz__e2e_parse(env, len, &parsed), 0);
    for (size_t off = 0; off < len; off++) {
        /* Flip the lowest bit: keeps ids within [A-Za-z0-9._-] mostly
         * ('a'<->'`' is not, which is MALFORMED); suite 3 -> 2 is a valid
         * suite, so use a value out of range there. */
        uint8_t saved = env[off];
        env[off] = off == 1 ? 0x7f : (uint8_t)(env[off] ^ 0x01);
        uint8_t *msg = NULL;
        size_t msg_len = 0;
        GError *gerr = NULL;
        int rc = pz_e2e_open(f->bob.e2e, env, len, NULL, T0, &msg, &msg_len, NULL, &gerr);
        if (rc == 0)
            fail_msg("tampered byte %zu accepted", off);
        assert_null(msg);
        unsigned want = field_errors(&parsed, env, off);
        pz_e2e_error got = (pz_e2e_error)gerr->code;
        if (!(want & BIT(got)))
            fail_msg("tampered byte %zu: error %d not among the expected 0x%x (%s)", off, got, want, gerr->message);
        by_code[got]++;
        g_error_free(gerr);
        env[off] = saved;
    }
    printf("# %zu single-byte tamperings refused: version %u, suite %u, malformed %u, recipient %u, "
           "key id %u, timestamp %u, unknown sender %u, signature %u\n",
           len, by_code[PZ_E2E_ERROR_VERSION], by_code[PZ_E2E_ERROR_SUITE], by_code[PZ_E2E_ERROR_MALFORMED],
           by_code[PZ_E2E_ERROR_RECIPIENT], by_code[PZ_E2E_ERROR_KEY_UNKNOWN],
           by_code[PZ_E2E_ERROR_FUTURE] + by_code[PZ_E2E_ERROR_EXPIRED], by_code[PZ_E2E_ERROR_SENDER_UNKNOWN],
           by_code[PZ_E2E_ERROR_SIGNATURE]);
    /* Untouched, it still opens (nothing was remembered as seen). */
    expect_open(&f->bob, env, len, NULL, T0, "payload", NULL);
    free(env);
}

static void test_tamper_sealed_sender(void **state)
{
    fixture *f = *state;
    size_t len;
    pz_e2e_seal_params sp = {sizeof(sp), PZ_E2E_SUITE_AES_256_GCM, 1, (const uint8_t *)"aad", 3};
    uint8_t *env = NULL;
    pz__e2e_env parsed;
    assert_int_equal(pz_e2e_seal(f->alice.e2e, "bob", &sp, (const uint8_t *)"payload", 7, T0, &env, &len, NULL), 0);
    assert_int_equal(pz__e2e_parse(env, len, &parsed), 0);
    assert_null(parsed.sig);
    assert_int_equal(parsed.sender_len, 0);
    size_t key_off = (size_t)(parsed.key_id - env);
    for (size_t off = 0; off < len; off++) {
        env[off] ^= 0x01;
        uint8_t *msg = NULL;
        size_t msg_len = 0;
        GError *gerr = NULL;
        assert_int_not_equal(pz_e2e_open(f->bob.e2e, env, len, NULL, T0, &msg, &msg_len, NULL, &gerr), 0);
        assert_null(msg);
        /* Everything after the key id is bound by the AEAD (header as
         * associated data, info): DECRYPT, or MALFORMED for lengths. */
        int ts = off >= key_off + PZ_E2E_KEY_ID_LEN && off < key_off + PZ_E2E_KEY_ID_LEN + 8;
        if (off >= key_off + PZ_E2E_KEY_ID_LEN && gerr->code != PZ_E2E_ERROR_DECRYPT &&
            gerr->code != PZ_E2E_ERROR_MALFORMED &&
            !(ts && (gerr->code == PZ_E2E_ERROR_FUTURE || gerr->code == PZ_E2E_ERROR_EXPIRED)))
            fail_msg("sealed sender, byte %zu: error %d (%s)", off, gerr->code, gerr->message);
        g_error_free(gerr);
        env[off] ^= 0x01;
    }
    expect_open(&f->bob, env, len, NULL, T0, "payload", NULL);
    free(env);
}

static void test_truncated_and_extended(void **state)
{
    fixture *f = *state;
    size_t len;
    g_autofree uint8_t *env = seal(&f->alice, "bob", NULL, "x", T0, &len);
    for (size_t l = 0; l < len; l++)
        expect_refusal(&f->bob, env, l, NULL, T0, PZ_EINVAL, PZ_E2E_ERROR_MALFORMED);
    g_autofree uint8_t *longer = g_malloc(len + 1);
    memcpy(longer, env, len);
    longer[len] = 0;
    expect_refusal(&f->bob, longer, len + 1, NULL, T0, PZ_EINVAL, PZ_E2E_ERROR_MALFORMED);
    /* Version 2, suite 0 and 4. */
    env[0] = 2;
    expect_refusal(&f->bob, env, len, NULL, T0, PZ_ENOTSUP, PZ_E2E_ERROR_VERSION);
    expect_refusal(&f->bob, env, 1, NULL, T0, PZ_ENOTSUP, PZ_E2E_ERROR_VERSION);
    env[0] = 1;
    env[1] = 0;
    expect_refusal(&f->bob, env, len, NULL, T0, PZ_ENOTSUP, PZ_E2E_ERROR_SUITE);
    env[1] = 4;
    expect_refusal(&f->bob, env, len, NULL, T0, PZ_ENOTSUP, PZ_E2E_ERROR_SUITE);
    expect_refusal(&f->bob, NULL, 0, NULL, T0, PZ_EINVAL, PZ_E2E_ERROR_MALFORMED);
}

static void test_swapped_signature(void **state)
{
    fixture *f = *state;
    size_t l1, l2;
    g_autofree uint8_t *e1 = seal(&f->alice, "bob", NULL, "first", T0, &l1);
    g_autofree uint8_t *e2 = seal(&f->alice, "bob", NULL, "other", T0, &l2);
    assert_int_equal(l1, l2);
    /* Alice's own signature from another envelope. */
    memcpy(e1 + l1 - 64, e2 + l2 - 64, 64);
    expect_refusal(&f->bob, e1, l1, NULL, T0, PZ_ECRYPTO, PZ_E2E_ERROR_SIGNATURE);

    /* Re-attribution: carol strips alice's signature, writes her own id and
     * signs. Bob knows carol here, so the signature verifies, but HPKE's
     * info binds the sender: decryption fails. */
    assert_int_equal(pz_e2e_add_peer(f->bob.e2e, "carol.node-3", f->carol.sign_pub, f->carol.e2e_pub, NULL), 0);
    size_t len;
    g_autofree uint8_t *env = seal(&f->alice, "bob", NULL, "secret", T0, &len);
    pz__e2e_env p;
    assert_int_equal(pz__e2e_parse(env, len, &p), 0);
    const char *mallory = "carol.node-3";
    size_t ml = strlen(mallory);
    size_t nlen = len - p.sender_len + ml;
    g_autofree uint8_t *forged = g_malloc(nlen);
    forged[0] = env[0];
    forged[1] = env[1];
    forged[2] = env[2];
    forged[3] = (uint8_t)ml;
    memcpy(forged + 4, mallory, ml);
    memcpy(forged + 4 + ml, env + 4 + p.sender_len, len - 4 - p.sender_len - 64);
    /* carol signs DOMAIN || forged-without-signature with her key file. */
    pz_nodekeys *ck = NULL;
    assert_int_equal(pz_nodekeys_load(f->carol.dir, &ck, NULL), 0);
    size_t dom = sizeof(PZ__E2E_SIG_DOMAIN);
    g_autofree uint8_t *tbs = g_malloc(dom + nlen - 64);
    memcpy(tbs, PZ__E2E_SIG_DOMAIN, dom);
    memcpy(tbs + dom, forged, nlen - 64);
    assert_int_equal(pz_sign(pz_nodekeys_sign_key(ck), tbs, dom + nlen - 64, forged + nlen - 64), 0);
    pz_nodekeys_free(ck);
    expect_refusal(&f->bob, forged, nlen, NULL, T0, PZ_ECRYPTO, PZ_E2E_ERROR_DECRYPT);
    /* The original still opens: the forgery did not consume its id. */
    expect_open(&f->bob, env, len, NULL, T0, "secret", NULL);
}

static void test_freshness(void **state)
{
    fixture *f = *state;
    pz_e2e_options o;
    pz_e2e_options_init(&o);
    size_t len;
    g_autofree uint8_t *env = seal(&f->alice, "bob", NULL, "m", T0, &len);
    /* Expired: older than max age (5 min by default); the edge still opens. */
    expect_refusal(&f->bob, env, len, NULL, T0 + o.max_age_ns + MS, PZ_ESTALE, PZ_E2E_ERROR_EXPIRED);
    expect_open(&f->bob, env, len, NULL, T0 + o.max_age_ns, "m", NULL);
    /* From the future beyond the skew (30 s); within it is fine. */
    g_autofree uint8_t *fut = seal(&f->alice, "bob", NULL, "f", T0 + o.max_skew_ns + SEC, &len);
    expect_refusal(&f->bob, fut, len, NULL, T0, PZ_ESTALE, PZ_E2E_ERROR_FUTURE);
    g_autofree uint8_t *near = seal(&f->alice, "bob", NULL, "n", T0 + o.max_skew_ns, &len);
    expect_open(&f->bob, near, len, NULL, T0, "n", NULL);
}

static void test_replay(void **state)
{
    fixture *f = *state;
    size_t len;
    g_autofree uint8_t *env = seal(&f->alice, "bob", NULL, "once", T0, &len);
    expect_open(&f->bob, env, len, NULL, T0, "once", NULL);
    expect_refusal(&f->bob, env, len, NULL, T0 + SEC, PZ_EREPLAY, PZ_E2E_ERROR_REPLAY);
    /* Sealed sender too. */
    pz_e2e_seal_params sp = {sizeof(sp), 0, 1, NULL, 0};
    g_autofree uint8_t *s = seal(&f->alice, "bob", &sp, "sealed once", T0, &len);
    expect_open(&f->bob, s, len, NULL, T0, "sealed once", NULL);
    expect_refusal(&f->bob, s, len, NULL, T0, PZ_EREPLAY, PZ_E2E_ERROR_REPLAY);
}

static void test_unknown_sender(void **state)
{
    fixture *f = *state;
    size_t len;
    /* carol learns bob's keys and writes to him; bob has never heard of her. */
    assert_int_equal(pz_e2e_add_peer(f->carol.e2e, "bob", f->bob.sign_pub, f->bob.e2e_pub, NULL), 0);
    g_autofree uint8_t *env = seal(&f->carol, "bob", NULL, "hello", T0, &len);
    size_t env_len = len;
    expect_refusal(&f->bob, env, len, NULL, T0, PZ_ENOENT, PZ_E2E_ERROR_SENDER_UNKNOWN);
    pz_e2e_seal_params sp = {sizeof(sp), 0, 1, NULL, 0};
    g_autofree uint8_t *s = seal(&f->carol, "bob", &sp, "hello", T0, &len);
    expect_refusal(&f->bob, s, len, NULL, T0, PZ_ENOENT, PZ_E2E_ERROR_SENDER_UNKNOWN);
    /* Once bob learns carol's keys, both open. */
    assert_int_equal(pz_e2e_add_peer(f->bob.e2e, "carol.node-3", f->carol.sign_pub, f->carol.e2e_pub, NULL), 0);
    expect_open(&f->bob, env, env_len, NULL, T0, "hello", NULL);
    expect_open(&f->bob, s, len, NULL, T0, "hello", NULL);
}

/* Rotation as open sees it: the current key, a retired one within grace,
 * one past grace, an unknown key id. */
static int setup_rotating(void **state)
{
    pz_e2e_options o;
    pz_e2e_options_init(&o);
    o.rotate_interval_ns = 3600 * SEC; /* 1 h */
    o.grace_ns = 600 * SEC;            /* 10 min */
    o.max_age_ns = 3600 * SEC * 24;    /* lenient, to test the key checks alone */
    return setup_opts(state, &o);
}

static void test_rotation(void **state)
{
    fixture *f = *state;
    int created = 0;
    uint8_t rec[PZ_E2E_KEY_RECORD_LEN];
    size_t len;
    GError *gerr = NULL;
    const uint64_t H = 3600 * SEC;

    /* Before any rotation only the certificate's key is in use. */
    assert_int_equal(pz_e2e_current_record(f->bob.e2e, T0, rec), PZ_ENOENT);
    assert_int_equal(pz_e2e_rotate(f->bob.e2e, T0, &created, &gerr), 0);
    assert_int_equal(created, 1);
    assert_int_equal(pz_e2e_current_record(f->bob.e2e, T0, rec), 0);
    /* alice learns bob's record: it is verified with bob's signing key. */
    assert_int_equal(pz_e2e_add_key_record(f->alice.e2e, "bob", rec, sizeof(rec), T0, &gerr), 0);
    rec[20] ^= 1;
    assert_int_equal(pz_e2e_add_key_record(f->alice.e2e, "bob", rec, sizeof(rec), T0, &gerr), PZ_EINVAL);
    assert_true(g_error_matches(gerr, PZ_E2E_ERROR, PZ_E2E_ERROR_KEYS));
    g_clear_error(&gerr);
    assert_int_equal(pz_e2e_add_key_record(f->alice.e2e, "nobody", rec, sizeof(rec), T0, &gerr), PZ_ENOENT);
    g_clear_error(&gerr);
    rec[20] ^= 1;

    pz_e2e_meta meta = {sizeof(meta)};
    g_autofree uint8_t *k1 = seal(&f->alice, "bob", NULL, "to k1", T0 + SEC, &len);
    size_t k1_len = len;
    expect_open(&f->bob, k1, len, NULL, T0 + SEC, "to k1", &meta);
    uint8_t k1_id[PZ_E2E_KEY_ID_LEN];
    memcpy(k1_id, meta.key_id, sizeof(k1_id));
    /* Messages to the certificate's key still open. */
    g_autofree uint8_t *lt = seal(&f->carol, "alice", NULL, "long-term", T0, &len);
    expect_open(&f->alice, lt, len, NULL, T0, "long-term", NULL);

    /* An hour later bob rotates; alice has not yet heard. A message sealed
     * to k1 just before it expired opens within the grace period... */
    g_autofree uint8_t *late = seal(&f->alice, "bob", NULL, "late", T0 + H - SEC, &len);
    size_t late_len = len;
    assert_int_equal(pz_e2e_rotate(f->bob.e2e, T0 + H, &created, NULL), 0);
    assert_int_equal(created, 1);
    g_autofree uint8_t *late2 = seal(&f->alice, "bob", NULL, "late2", T0 + H - 2 * SEC, &len);
    size_t late2_len = len;
    expect_open(&f->bob, late, late_len, NULL, T0 + H + 599 * SEC, "late", NULL);
    /* ...but not past it, even before bob's rotation timer destroyed it. */
    expect_refusal(&f->bob, late2, late2_len, NULL, T0 + H + 600 * SEC, PZ_ESTALE, PZ_E2E_ERROR_KEY_RETIRED);
    /* After the rotation that destroys k1: still "retired", not "unknown". */
    assert_int_equal(pz_e2e_rotate(f->bob.e2e, T0 + H + 600 * SEC, &created, NULL), 0);
    assert_int_equal(created, 0);
    expect_refusal(&f->bob, k1, k1_len, NULL, T0 + H + 601 * SEC, PZ_ESTALE, PZ_E2E_ERROR_KEY_RETIRED);
    /* The new key is in use once alice gets the new record. */
    assert_int_equal(pz_e2e_current_record(f->bob.e2e, T0 + H, rec), 0);
    assert_int_equal(pz_e2e_add_key_record(f->alice.e2e, "bob", rec, sizeof(rec), T0 + H, NULL), 0);
    g_autofree uint8_t *k2 = seal(&f->alice, "bob", NULL, "to k2", T0 + H + 700 * SEC, &len);
    expect_open(&f->bob, k2, len, NULL, T0 + H + 700 * SEC, "to k2", &meta);
    assert_memory_not_equal(meta.key_id, k1_id, sizeof(k1_id));
    /* An unknown key id: a key bob never had. */
    pz__e2e_env p;
    assert_int_equal(pz__e2e_parse(k2, len, &p), 0);
    memset((uint8_t *)p.key_id, 0xee, PZ_E2E_KEY_ID_LEN);
    expect_refusal(&f->bob, k2, len, NULL, T0 + H + 700 * SEC, PZ_ENOENT, PZ_E2E_ERROR_KEY_UNKNOWN);
    /* A restart of bob's node sees the same key set on disk. */
    pz_e2e_free(f->bob.e2e);
    assert_int_equal(pz_e2e_new("bob", f->bob.dir, NULL, &f->bob.e2e, NULL), 0);
    assert_int_equal(pz_e2e_add_peer(f->bob.e2e, "alice", f->alice.sign_pub, f->alice.e2e_pub, NULL), 0);
    expect_refusal(&f->bob, k1, k1_len, NULL, T0 + H + 601 * SEC, PZ_ESTALE, PZ_E2E_ERROR_KEY_RETIRED);
    g_autofree uint8_t *k2b = seal(&f->alice, "bob", NULL, "after restart", T0 + H + 800 * SEC, &len);
    expect_open(&f->bob, k2b, len, NULL, T0 + H + 800 * SEC, "after restart", NULL);
}

/* Peers from real node certificates (core/pki.c issues them, with the
 * node-keys extension). */
static void test_peer_cert(void **state)
{
    fixture *f = *state;
    pz_err err;
    GError *gerr = NULL;
    pz_e2e *dave = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0, len;
    pz_err_init(&err);
    g_autofree char *ca = g_build_filename(f->tmp, "ca", NULL);
    g_autofree char *dir = g_build_filename(f->tmp, "dave", NULL);
    g_autofree char *crt = g_build_filename(dir, "node.crt", NULL);
    pz_ca_init_opts co = {.dir = ca};
    assert_int_equal(pz_ca_init(&co, T0 / SEC, &err), 0);
    pz_cert_issue_opts io = {.ca_dir = ca, .node_id = "dave", .node_type = "validator", .out_dir = dir};
    assert_int_equal(pz_cert_issue(&io, T0 / SEC, &err), 0);
    assert_int_equal(pz_cert_load_der(crt, &der, &der_len, &err), 0);
    assert_int_equal(pz_e2e_new("dave", dir, NULL, &dave, NULL), 0);
    assert_int_equal(pz_e2e_add_peer(dave, "bob", f->bob.sign_pub, f->bob.e2e_pub, NULL), 0);
    assert_int_equal(pz_e2e_add_peer_cert(f->bob.e2e, der, der_len, &gerr), 0);
    uint8_t *env = NULL;
    assert_int_equal(pz_e2e_seal(dave, "bob", NULL, (const uint8_t *)"from dave", 9, T0, &env, &len, NULL), 0);
    expect_open(&f->bob, env, len, NULL, T0, "from dave", NULL);
    free(env);
    /* Not a certificate. */
    assert_int_equal(pz_e2e_add_peer_cert(f->bob.e2e, (const uint8_t *)"junk", 4, &gerr), PZ_EINVAL);
    assert_true(g_error_matches(gerr, PZ_E2E_ERROR, PZ_E2E_ERROR_INVALID));
    g_clear_error(&gerr);
    assert_int_equal(pz_e2e_add_peer_cert(f->bob.e2e, NULL, 4, &gerr), PZ_EINVAL);
    g_clear_error(&gerr);
    g_free(der);
    pz_e2e_free(dave);
    pz_err_clear(&err);
}

/* What a tool persisted as opened is refused as a replay after a restart. */
static void test_mark_seen(void **state)
{
    fixture *f = *state;
    size_t len;
    pz_e2e_meta meta = {sizeof(meta)};
    g_autofree uint8_t *env = seal(&f->alice, "bob", NULL, "m", T0, &len);
    expect_open(&f->bob, env, len, NULL, T0, "m", &meta);
    pz_e2e_free(f->bob.e2e);
    assert_int_equal(pz_e2e_new("bob", f->bob.dir, NULL, &f->bob.e2e, NULL), 0);
    assert_int_equal(pz_e2e_add_peer(f->bob.e2e, "alice", f->alice.sign_pub, f->alice.e2e_pub, NULL), 0);
    assert_int_equal(pz_e2e_mark_seen(f->bob.e2e, meta.sender_id, meta.message_id, meta.timestamp_ns, T0), 0);
    assert_int_equal(pz_e2e_mark_seen(f->bob.e2e, meta.sender_id, meta.message_id, meta.timestamp_ns, T0),
                     PZ_EREPLAY);
    expect_refusal(&f->bob, env, len, NULL, T0, PZ_EREPLAY, PZ_E2E_ERROR_REPLAY);
    assert_int_equal(pz_e2e_mark_seen(f->bob.e2e, "alice", meta.message_id, T0 - 3600 * SEC, T0), PZ_ESTALE);
    assert_int_equal(pz_e2e_mark_seen(f->bob.e2e, "bad id", meta.message_id, T0, T0), PZ_EINVAL);
    assert_int_equal(pz_e2e_mark_seen(NULL, "alice", meta.message_id, T0, T0), PZ_EINVAL);
    assert_int_equal(pz_e2e_mark_seen(f->bob.e2e, "alice", NULL, T0, T0), PZ_EINVAL);
}

/* --- bad arguments ------------------------------------------------------ */

static void test_seal_refusals(void **state)
{
    fixture *f = *state;
    uint8_t *out = (uint8_t *)"x";
    size_t len = 1;
    GError *gerr = NULL;
#define SEAL_FAILS(rcv, codev, ...)                                                                                    \
    do {                                                                                                               \
        assert_int_equal(pz_e2e_seal(__VA_ARGS__, &gerr), rcv);                                                        \
        assert_true(g_error_matches(gerr, PZ_E2E_ERROR, codev));                                                       \
        g_clear_error(&gerr);                                                                                          \
    } while (0)
    SEAL_FAILS(PZ_ENOENT, PZ_E2E_ERROR_RECIPIENT_UNKNOWN, f->bob.e2e, "carol.node-3", NULL, (const uint8_t *)"m", 1,
               T0, &out, &len);
    assert_null(out);
    assert_int_equal(len, 0);
    SEAL_FAILS(PZ_EINVAL, PZ_E2E_ERROR_INVALID, f->bob.e2e, "bad id!", NULL, (const uint8_t *)"m", 1, T0, &out, &len);
    SEAL_FAILS(PZ_EINVAL, PZ_E2E_ERROR_INVALID, f->bob.e2e, NULL, NULL, (const uint8_t *)"m", 1, T0, &out, &len);
    SEAL_FAILS(PZ_EINVAL, PZ_E2E_ERROR_INVALID, NULL, "alice", NULL, (const uint8_t *)"m", 1, T0, &out, &len);
    SEAL_FAILS(PZ_EINVAL, PZ_E2E_ERROR_INVALID, f->bob.e2e, "alice", NULL, NULL, 1, T0, &out, &len);
    SEAL_FAILS(PZ_EINVAL, PZ_E2E_ERROR_INVALID, f->bob.e2e, "alice", NULL, (const uint8_t *)"m", 1, T0, NULL, &len);
    pz_e2e_seal_params bad_suite = {sizeof(bad_suite), (pz_e2e_suite)4, 0, NULL, 0};
    SEAL_FAILS(PZ_EINVAL, PZ_E2E_ERROR_INVALID, f->bob.e2e, "alice", &bad_suite, (const uint8_t *)"m", 1, T0, &out,
               &len);
    pz_e2e_seal_params bad_suite2 = {sizeof(bad_suite2), (pz_e2e_suite)259, 0, NULL, 0};
    SEAL_FAILS(PZ_EINVAL, PZ_E2E_ERROR_INVALID, f->bob.e2e, "alice", &bad_suite2, (const uint8_t *)"m", 1, T0, &out,
               &len);
    pz_e2e_seal_params no_size = {0};
    SEAL_FAILS(PZ_EINVAL, PZ_E2E_ERROR_INVALID, f->bob.e2e, "alice", &no_size, (const uint8_t *)"m", 1, T0, &out,
               &len);
    g_autofree uint8_t *big_aad = g_malloc0(PZ_E2E_AAD_MAX + 1);
    pz_e2e_seal_params aad = {sizeof(aad), 0, 0, big_aad, PZ_E2E_AAD_MAX + 1};
    SEAL_FAILS(PZ_ERANGE, PZ_E2E_ERROR_TOO_LARGE, f->bob.e2e, "alice", &aad, (const uint8_t *)"m", 1, T0, &out, &len);
    pz_e2e_seal_params null_aad = {sizeof(null_aad), 0, 0, NULL, 4};
    SEAL_FAILS(PZ_EINVAL, PZ_E2E_ERROR_INVALID, f->bob.e2e, "alice", &null_aad, (const uint8_t *)"m", 1, T0, &out,
               &len);
    pz_e2e_options o;
    pz_e2e_options_init(&o);
    g_autofree uint8_t *big = g_malloc0(o.max_message + 1);
    SEAL_FAILS(PZ_ERANGE, PZ_E2E_ERROR_TOO_LARGE, f->bob.e2e, "alice", NULL, big, o.max_message + 1, T0, &out, &len);
    /* The largest AAD is fine. */
    aad.aad_len = PZ_E2E_AAD_MAX;
    assert_int_equal(pz_e2e_seal(f->bob.e2e, "alice", &aad, (const uint8_t *)"m", 1, T0, &out, &len, NULL), 0);
    expect_open(&f->alice, out, len, NULL, T0, "m", NULL);
    free(out);

    /* open's own argument checks. */
    uint8_t *msg;
    size_t msg_len;
    assert_int_equal(pz_e2e_open(NULL, (const uint8_t *)"x", 1, NULL, T0, &msg, &msg_len, NULL, NULL), PZ_EINVAL);
    assert_int_equal(pz_e2e_open(f->bob.e2e, (const uint8_t *)"x", 1, NULL, T0, NULL, &msg_len, NULL, NULL), PZ_EINVAL);
    assert_int_equal(pz_e2e_open(f->bob.e2e, NULL, 5, NULL, T0, &msg, &msg_len, NULL, NULL), PZ_EINVAL);
    pz_e2e_free_bytes(NULL, 4);
#undef SEAL_FAILS
}

static void test_new_refusals(void **state)
{
    fixture *f = *state;
    pz_e2e *e = (pz_e2e *)1;
    GError *gerr = NULL;
    pz_e2e_options o;

    assert_int_equal(pz_e2e_new("bad id", f->bob.dir, NULL, &e, &gerr), PZ_EINVAL);
    assert_null(e);
    assert_true(g_error_matches(gerr, PZ_E2E_ERROR, PZ_E2E_ERROR_INVALID));
    g_clear_error(&gerr);
    assert_int_equal(pz_e2e_new(NULL, f->bob.dir, NULL, &e, &gerr), PZ_EINVAL);
    g_clear_error(&gerr);
    assert_int_equal(pz_e2e_new("bob", f->bob.dir, NULL, NULL, &gerr), PZ_EINVAL);
    g_clear_error(&gerr);
    g_autofree char *missing = g_build_filename(f->tmp, "missing", NULL);
    assert_int_equal(pz_e2e_new("dave", missing, NULL, &e, &gerr), PZ_ENOENT);
    assert_true(g_error_matches(gerr, PZ_E2E_ERROR, PZ_E2E_ERROR_KEYS));
    assert_non_null(strstr(gerr->message, "sign.key"));
    g_clear_error(&gerr);
    pz_e2e_options_init(&o);
    o.replay_capacity = 0;
    assert_int_equal(pz_e2e_new("bob", f->bob.dir, &o, &e, &gerr), PZ_EINVAL);
    g_clear_error(&gerr);
    pz_e2e_options_init(&o);
    o.max_age_ns = 0;
    assert_int_equal(pz_e2e_new("bob", f->bob.dir, &o, &e, &gerr), PZ_EINVAL);
    g_clear_error(&gerr);
    o.struct_size = 0;
    assert_int_equal(pz_e2e_new("bob", f->bob.dir, &o, &e, &gerr), PZ_EINVAL);
    g_clear_error(&gerr);
    /* A caller built against a shorter options struct (only the first
     * fields): the rest keep their defaults. */
    pz_e2e_options_init(&o);
    o.struct_size = offsetof(pz_e2e_options, max_age_ns);
    o.max_age_ns = 0;
    assert_int_equal(pz_e2e_new("bob", f->bob.dir, &o, &e, &gerr), 0);
    pz_e2e_free(e);
    pz_e2e_free(NULL);
    pz_e2e_options_init(NULL);
    assert_null(pz_e2e_node_id(NULL));
    assert_int_equal(pz_e2e_add_peer(NULL, "x", f->bob.sign_pub, f->bob.e2e_pub, NULL), PZ_EINVAL);
    assert_int_equal(pz_e2e_add_peer(f->bob.e2e, "bad id", f->bob.sign_pub, f->bob.e2e_pub, &gerr), PZ_EINVAL);
    g_clear_error(&gerr);
    assert_int_equal(pz_e2e_add_key_record(NULL, "x", NULL, 0, T0, NULL), PZ_EINVAL);
    assert_int_equal(pz_e2e_rotate(NULL, T0, NULL, NULL), PZ_EINVAL);
    uint8_t rec[PZ_E2E_KEY_RECORD_LEN];
    assert_int_equal(pz_e2e_current_record(NULL, T0, rec), PZ_EINVAL);
    assert_int_equal(pz_e2e_rotate(f->bob.e2e, T0, NULL, NULL), 0);
}

/* Several threads sealing and opening on shared contexts. */
typedef struct thread_arg {
    fixture *f;
    int id;
    int ok;
} thread_arg;

static gpointer worker(gpointer data)
{
    thread_arg *a = data;
    for (int i = 0; i < 50; i++) {
        char msg[64];
        uint8_t *env = NULL, *out = NULL;
        size_t len = 0, out_len = 0;
        snprintf(msg, sizeof(msg), "thread %d message %d", a->id, i);
        if (pz_e2e_seal(a->f->alice.e2e, "bob", NULL, (const uint8_t *)msg, strlen(msg), T0, &env, &len, NULL))
            return NULL;
        if (pz_e2e_open(a->f->bob.e2e, env, len, NULL, T0, &out, &out_len, NULL, NULL) == 0 &&
            out_len == strlen(msg) && !memcmp(out, msg, out_len))
            a->ok++;
        pz_e2e_free_bytes(out, out_len);
        free(env);
    }
    return NULL;
}

static void test_threads(void **state)
{
    fixture *f = *state;
    thread_arg args[4];
    GThread *t[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){f, i, 0};
        t[i] = g_thread_new("e2e", worker, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        g_thread_join(t[i]);
        assert_int_equal(args[i].ok, 50);
    }
}

/* --- codec -------------------------------------------------------------- */

static void test_codec(void **state)
{
    (void)state;
    pz__e2e_env e;
    pz__e2e_inner in;
    assert_int_equal(pz__e2e_parse(NULL, 0, &e), PZ_E2E_ERROR_MALFORMED);
    assert_int_equal(pz__e2e_parse((const uint8_t *)"\x01", 1, &e), PZ_E2E_ERROR_MALFORMED);
    assert_int_equal(pz__e2e_parse((const uint8_t *)"\x09", 1, &e), PZ_E2E_ERROR_VERSION);
    assert_int_equal(pz__e2e_parse((const uint8_t *)"\x01\x03\x02", 3, &e), PZ_E2E_ERROR_MALFORMED); /* flags */
    /* Sealed sender with a sender; no sender without sealed sender. */
    assert_int_equal(pz__e2e_parse((const uint8_t *)"\x01\x03\x01\x01x", 5, &e), PZ_E2E_ERROR_MALFORMED);
    assert_int_equal(pz__e2e_parse((const uint8_t *)"\x01\x03\x00\x00", 4, &e), PZ_E2E_ERROR_MALFORMED);
    assert_int_equal(pz__e2e_parse_inner(NULL, 0, &in), PZ_E2E_ERROR_MALFORMED);
    assert_int_equal(pz__e2e_parse_inner((const uint8_t *)"\x00", 1, &in), PZ_E2E_ERROR_MALFORMED);
    assert_int_equal(pz__e2e_parse_inner((const uint8_t *)"\x03" "abc", 4, &in), PZ_E2E_ERROR_MALFORMED);
    uint8_t inner[1 + 3 + 64 + 2] = {3, 'a', 'b', 'c'};
    inner[68] = 'h';
    inner[69] = 'i';
    assert_int_equal(pz__e2e_parse_inner(inner, sizeof(inner), &in), 0);
    assert_int_equal(in.msg_len, 2);
    assert_memory_equal(in.msg, "hi", 2);
    assert_true(pz__e2e_id_valid("a.b_c-9", 7));
    assert_false(pz__e2e_id_valid(".a", 2));
    assert_false(pz__e2e_id_valid("-a", 2));
    assert_false(pz__e2e_id_valid("a b", 3));
    assert_false(pz__e2e_id_valid("", 0));
    assert_false(pz__e2e_id_valid(NULL, 3));
}

/* --- replay cache ------------------------------------------------------- */

static void test_replay_cache(void **state)
{
    (void)state;
    pz_replay *c = NULL;
    assert_int_equal(pz_replay_new(0, &c), PZ_EINVAL);
    assert_int_equal(pz_replay_new(PZ_REPLAY_CAPACITY_MAX + 1, &c), PZ_EINVAL);
    assert_int_equal(pz_replay_new(4, NULL), PZ_EINVAL);
    assert_int_equal(pz_replay_new(4, &c), 0);

    assert_int_equal(pz_replay_check(NULL, "a", 1, 10, 0), PZ_EINVAL);
    assert_int_equal(pz_replay_check(c, NULL, 1, 10, 0), PZ_EINVAL);
    assert_int_equal(pz_replay_check(c, "a", 1, 10, 10), PZ_ESTALE);
    assert_int_equal(pz_replay_check(c, "a", 1, 100, 0), 0);
    assert_int_equal(pz_replay_check(c, "a", 1, 100, 1), PZ_EREPLAY);
    assert_int_equal(pz_replay_check(c, "a", 1, 999, 1), PZ_EREPLAY); /* another expiry, same id */
    assert_true(pz_replay_contains(c, "a", 1, 50));
    assert_false(pz_replay_contains(c, "b", 1, 50));
    assert_false(pz_replay_contains(NULL, "b", 1, 50));
    /* Expired entries are forgotten. */
    assert_int_equal(pz_replay_count(c, 99), 1);
    assert_int_equal(pz_replay_count(c, 100), 0);
    assert_int_equal(pz_replay_check(c, "a", 1, 200, 100), 0);
    assert_int_equal(pz_replay_count(NULL, 0), 0);

    /* Full of live entries: the soonest-expiring one is evicted and becomes
     * the watermark; ids not expiring later than it are refused. */
    assert_int_equal(pz_replay_check(c, "b", 1, 300, 100), 0);
    assert_int_equal(pz_replay_check(c, "c", 1, 400, 100), 0);
    assert_int_equal(pz_replay_check(c, "d", 1, 500, 100), 0);
    assert_int_equal(pz_replay_count(c, 100), 4);
    assert_int_equal(pz_replay_watermark(c), 0);
    /* Not later than everything held: refused, nothing evicted. */
    assert_int_equal(pz_replay_check(c, "e", 1, 150, 100), PZ_EREPLAY);
    assert_int_equal(pz_replay_watermark(c), 0);
    assert_int_equal(pz_replay_check(c, "f", 1, 600, 100), 0); /* evicts "a" (200) */
    assert_int_equal(pz_replay_watermark(c), 200);
    assert_false(pz_replay_contains(c, "a", 1, 100));
    /* "a" again with its own expiry: refused by the watermark, as it must be. */
    assert_int_equal(pz_replay_check(c, "a", 1, 200, 100), PZ_EREPLAY);
    /* Later than the watermark but not than the soonest live entry ("b",
     * 300): refused rather than evicting a longer-lived id. */
    assert_int_equal(pz_replay_check(c, "g", 1, 250, 100), PZ_EREPLAY);
    assert_int_equal(pz_replay_check(c, "h", 1, 301, 100), 0); /* evicts "b" */
    assert_int_equal(pz_replay_watermark(c), 300);
    pz_replay_free(c);
    pz_replay_free(NULL);

    /* A flood through a small cache, replays mixed in: never a message
     * accepted twice. A message is (id, timestamp); its expiry is a
     * function of its timestamp, as for envelopes (replay.h). */
    assert_int_equal(pz_replay_new(16, &c), 0);
    GHashTable *accepted = g_hash_table_new(g_direct_hash, g_direct_equal);
    GRand *rnd = g_rand_new_with_seed(42);
    unsigned acc = 0, ref = 0;
    for (unsigned step = 0; step < 20000; step++) {
        uint64_t now = 1000 + step / 4;
        unsigned newest = (unsigned)(now - 1000) / 2; /* one new message every 2 ticks */
        unsigned oldest = newest > 40 ? newest - 40 : 0;
        unsigned id = (unsigned)g_rand_int_range(rnd, (gint32)oldest, (gint32)newest + 1);
        uint64_t expires = 1000 + 2 * (uint64_t)id + 60; /* timestamp + window */
        if (expires <= now)
            continue; /* the caller refuses it as stale first */
        int rc = pz_replay_check(c, &id, sizeof(id), expires, now);
        if (rc == 0) {
            if (g_hash_table_contains(accepted, GUINT_TO_POINTER(id + 1)))
                fail_msg("message %u accepted twice", id);
            g_hash_table_add(accepted, GUINT_TO_POINTER(id + 1));
            acc++;
        } else {
            assert_int_equal(rc, PZ_EREPLAY);
            ref++;
        }
    }
    g_rand_free(rnd);
    printf("# replay cache (16 entries, ~30 live messages, replays mixed in): %u accepted, %u refused, "
           "watermark %" G_GUINT64_FORMAT "\n",
           acc, ref, pz_replay_watermark(c));
    assert_true(pz_replay_count(c, 0) <= 16);
    assert_true(acc > 0);
    assert_true(pz_replay_watermark(c) > 0); /* the flood did overflow it */
    g_hash_table_destroy(accepted);
    pz_replay_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_recipient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_sealed_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_extended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swapped_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freshness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup_rotating, teardown),
        cmocka_unit_test_setup_teardown(test_peer_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mark_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test(test_codec),
        cmocka_unit_test(test_replay_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
