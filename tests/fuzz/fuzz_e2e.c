/* tests/fuzz/fuzz_e2e.c — libFuzzer target for E2E envelopes and key
 * records: the envelope codec (pz__e2e_parse, the sealed-sender inner
 * parser, the HPKE info builder), the whole of pz_e2e_open on a node whose
 * keys are fixed (so seeds sealed with them reach signature checking,
 * decryption and the replay cache), and pz_keyrec_verify (raw and PEM).
 *
 * Built with -DPZ_FUZZ_MAIN (no libFuzzer), it is a small tool:
 *   fuzz_e2e --write-corpus DIR   write seed envelopes and records to DIR
 *   fuzz_e2e FILE...              run files through the target once
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <prozsec/e2e.h>

#include "e2e.h"
#include "nodekeys.h"
#include "../testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char *tmp;
static pz_e2e *alice, *bob;
static pz_verify_key *bob_verify;

/* Fixed keys: write DIR/sign.key and DIR/e2e.key from SIGN_BYTE and E2E_BYTE
 * repeated (RFC 8410 PKCS#8, the format of core/nodekeys.c). */
static void write_key(const char *dir, const char *name, int x25519, uint8_t byte)
{
    uint8_t der[48] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                       0x03, 0x2b, 0x65, (uint8_t)(x25519 ? 0x6e : 0x70), 0x04, 0x22, 0x04, 0x20};
    memset(der + 16, byte, 32);
    g_autofree char *b64 = g_base64_encode(der, sizeof(der));
    g_autofree char *pem = g_strdup_printf("-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n", b64);
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (!g_file_set_contents(path, pem, -1, NULL) || g_chmod(path, 0600))
        abort();
}

static pz_e2e *make_node(const char *id, uint8_t sign_byte, uint8_t e2e_byte)
{
    g_autofree char *dir = g_build_filename(tmp, id, NULL);
    pz_e2e *e = NULL;
    pz_e2e_options o;
    if (g_mkdir(dir, 0700))
        abort();
    write_key(dir, "sign.key", 0, sign_byte);
    write_key(dir, "e2e.key", 1, e2e_byte);
    pz_e2e_options_init(&o);
    o.replay_capacity = 4096;
    o.max_message = 1u << 20;
    if (pz_e2e_new(id, dir, &o, &e, NULL))
        abort();
    return e;
}

static void cleanup(void)
{
    pz_e2e_free(alice);
    pz_e2e_free(bob);
    pz_verify_key_free(bob_verify);
    if (tmp)
        pz_test_rm_rf(tmp);
    g_free(tmp);
}

/* The public keys of a node made by make_node, read back from its files. */
static void node_pubs(const char *id, uint8_t sign_pub[32], uint8_t e2e_pub[32])
{
    g_autofree char *dir = g_build_filename(tmp, id, NULL);
    pz_nodekeys *k = NULL;
    if (pz_nodekeys_load(dir, &k, NULL))
        abort();
    memcpy(sign_pub, pz_nodekeys_sign_pub(k), 32);
    memcpy(e2e_pub, pz_nodekeys_long_term(k)->pub, 32);
    pz_nodekeys_free(k);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t as[32], ae[32], bs[32], be[32];
    (void)argc;
    (void)argv;
    tmp = g_dir_make_tmp("pz-fuzz-e2e-XXXXXX", NULL);
    if (!tmp)
        abort();
    alice = make_node("alice", 0x11, 0x22);
    bob = make_node("bob", 0x33, 0x44);
    node_pubs("alice", as, ae);
    node_pubs("bob", bs, be);
    if (pz_e2e_add_peer(alice, "bob", bs, be, NULL) || pz_e2e_add_peer(bob, "alice", as, ae, NULL) ||
        pz_verify_key_new(bs, &bob_verify))
        abort();
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pz__e2e_env env;
    pz__e2e_inner in;
    pz_keyrec rec;
    uint8_t info[PZ__E2E_INFO_MAX];
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    /* Open "now" = the envelope's own time, so freshness passes and the
     * later checks are reached. */
    uint64_t now = G_GUINT64_CONSTANT(1700000000000) * 1000000u;

    if (pz__e2e_parse(data, size, &env) == 0) {
        if (pz__e2e_info(&env, info) > sizeof(info))
            abort();
        if (env.timestamp_ms < UINT64_MAX / 1000000u)
            now = env.timestamp_ms * 1000000u;
        (void)pz__e2e_parse_inner(env.ct, env.ct_len, &in);
    }
    (void)pz__e2e_parse_inner(data, size, &in);
    if (pz_e2e_open(bob, data, size, NULL, now, &msg, &msg_len, NULL, NULL) == 0)
        pz_e2e_free_bytes(msg, msg_len);
    else if (msg)
        abort(); /* plaintext released on failure */
    (void)pz_keyrec_verify(bob_verify, data, size, &rec, NULL);
    return 0;
}

#ifdef PZ_FUZZ_MAIN
static void put(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (!g_file_set_contents(path, (const char *)buf, (gssize)len, NULL))
        abort();
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    if (argc == 3 && !strcmp(argv[1], "--write-corpus")) {
        static const char *const msgs[] = {"", "x", "a message of a few words"};
        const uint64_t now = G_GUINT64_CONSTANT(1700000000000) * 1000000u;
        int k = 0;
        g_mkdir_with_parents(argv[2], 0755);
        for (int suite = 1; suite <= 3; suite++) {
            for (int sealed = 0; sealed < 2; sealed++) {
                for (size_t m = 0; m < G_N_ELEMENTS(msgs); m++) {
                    pz_e2e_seal_params p = {sizeof(p), (pz_e2e_suite)suite, sealed,
                                            m == 2 ? (const uint8_t *)"aad" : NULL, m == 2 ? 3 : 0};
                    uint8_t *env = NULL;
                    size_t len = 0;
                    if (pz_e2e_seal(alice, "bob", &p, (const uint8_t *)msgs[m], strlen(msgs[m]), now, &env, &len,
                                    NULL))
                        abort();
                    char name[32];
                    snprintf(name, sizeof(name), "envelope-%02d", k++);
                    put(argv[2], name, env, len);
                    free(env);
                }
            }
        }
        /* bob's key record, raw and PEM. */
        g_autofree char *bobdir = g_build_filename(tmp, "bob", NULL);
        pz_nodekeys *nk = NULL;
        if (pz_nodekeys_load(bobdir, &nk, NULL) || pz_nodekeys_rotate(nk, now / 1000000u, 3600000, 0, NULL, NULL, NULL))
            abort();
        const pz_recv_key *rk = pz_nodekeys_current(nk, now / 1000000u);
        put(argv[2], "keyrec-raw", rk->record, PZ_KEYREC_LEN);
        g_autofree char *b64 = g_base64_encode(rk->record, PZ_KEYREC_LEN);
        g_autofree char *pem = g_strdup_printf("-----BEGIN PROZSEC E2E KEY RECORD-----\n%s\n"
                                               "-----END PROZSEC E2E KEY RECORD-----\n",
                                               b64);
        put(argv[2], "keyrec-pem", (const uint8_t *)pem, strlen(pem));
        pz_nodekeys_free(nk);
        printf("wrote %d envelopes and 2 key records to %s\n", k, argv[2]);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        gchar *buf = NULL;
        gsize len = 0;
        if (!g_file_get_contents(argv[i], &buf, &len, NULL))
            return 1;
        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
        g_free(buf);
    }
    return 0;
}
#endif
