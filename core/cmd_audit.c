/* core/cmd_audit.c — `prozsec audit verify FILE`: check an RPC audit log's
 * hash chain and every recorded call context's signature against the
 * callers' keys, taken from their certificates (--cert) or a key list
 * (--keys). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <glib.h>

#include <prozsec/rpc.h>

#include "cmd.h"
#include "err.h"
#include "pki.h"

/* Read a key list: "NODE_ID KEY" per line, KEY as 64 hex digits or
 * base64 of 32 bytes; '#' starts a comment. */
static int load_keys(const char *path, GHashTable *keys)
{
    gchar *text = NULL;
    GError *gerr = NULL;
    int rc = 0;
    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        pz_cmd_fail("%s", gerr->message);
        g_error_free(gerr);
        return PZ_EXIT_USAGE;
    }
    gchar **lines = g_strsplit(text, "\n", -1);
    for (size_t i = 0; lines[i]; i++) {
        char *line = g_strstrip(lines[i]);
        if (!line[0] || line[0] == '#')
            continue;
        gchar **f = g_strsplit_set(line, " \t", -1);
        const char *id = NULL, *key = NULL;
        for (size_t j = 0; f[j]; j++) {
            if (!f[j][0])
                continue;
            if (!id)
                id = f[j];
            else if (!key)
                key = f[j];
        }
        uint8_t *raw = NULL;
        gsize rawlen = 0;
        if (key && strlen(key) == 64) {
            raw = g_malloc(32);
            rawlen = 32;
            for (size_t k = 0; k < 32; k++) {
                int hi = g_ascii_xdigit_value(key[2 * k]), lo = g_ascii_xdigit_value(key[2 * k + 1]);
                if (hi < 0 || lo < 0)
                    rawlen = 0;
                raw[k] = (uint8_t)(hi << 4 | lo);
            }
        } else if (key) {
            raw = g_base64_decode(key, &rawlen);
        }
        if (!id || rawlen != 32) {
            pz_cmd_fail("%s:%zu: expected 'NODE_ID KEY' with a 32-byte Ed25519 key in hex or base64", path, i + 1);
            rc = PZ_EXIT_USAGE;
        } else {
            g_hash_table_insert(keys, g_strdup(id), g_memdup2(raw, 32));
        }
        g_free(raw);
        g_strfreev(f);
        if (rc)
            break;
    }
    g_strfreev(lines);
    g_free(text);
    return rc;
}

static int load_cert(const char *path, GHashTable *keys)
{
    uint8_t *der = NULL;
    size_t len = 0;
    pz_cert_info info;
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cert_load_der(path, &der, &len, &err);
    if (rc == 0)
        rc = pz_cert_node_info(der, len, &info, &err);
    if (rc == 0 && !info.has_keys)
        rc = pz_err_set(&err, PZ_EINVAL, "the certificate carries no node signing key");
    if (rc) {
        pz_cmd_fail("%s: %s", path, pz_err_msg(&err));
    } else {
        g_hash_table_insert(keys, g_strdup(info.node_id), g_memdup2(info.sign_pub, 32));
    }
    g_free(der);
    pz_err_clear(&err);
    return rc ? PZ_EXIT_USAGE : 0;
}

static int lookup(void *ud, const char *caller, uint8_t pub[32])
{
    const uint8_t *k = g_hash_table_lookup(ud, caller);
    if (!k)
        return PZ_ENOENT;
    memcpy(pub, k, 32);
    return 0;
}

static void print_line(void *ud, const char *line)
{
    (void)ud;
    printf("%s\n", line);
}

static int audit_verify(int argc, char **argv)
{
    gchar **certs = NULL, **keyfiles = NULL;
    const GOptionEntry entries[] = {
        {"cert", 'c', 0, G_OPTION_ARG_FILENAME_ARRAY, &certs,
         "A caller's certificate (PEM or DER); its node signing key checks that caller's records", "FILE"},
        {"keys", 'k', 0, G_OPTION_ARG_FILENAME_ARRAY, &keyfiles,
         "A key list: lines 'NODE_ID KEY' (Ed25519 public key, hex or base64)", "FILE"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    int rc = pz_cmd_parse("audit verify", "FILE",
                          "Check an RPC audit log: the hash chain linking its records, and the caller's Ed25519\n"
                          "signature over every recorded call context. Exit 0 when every record is intact and\n"
                          "signed by its caller, 1 when any is not, 2 on a usage error.",
                          entries, &argc, &argv);
    GHashTable *keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (rc)
        goto out;
    if (argc != 2) {
        pz_cmd_fail("audit verify: expected one FILE (try --help)");
        rc = PZ_EXIT_USAGE;
        goto out;
    }
    if (!certs && !keyfiles) {
        pz_cmd_fail("audit verify: give the callers' keys with --cert FILE or --keys FILE");
        rc = PZ_EXIT_USAGE;
        goto out;
    }
    for (size_t i = 0; certs && certs[i] && !rc; i++)
        rc = load_cert(certs[i], keys);
    for (size_t i = 0; keyfiles && keyfiles[i] && !rc; i++)
        rc = load_keys(keyfiles[i], keys);
    if (rc)
        goto out;
    pz_audit_report r;
    GError *gerr = NULL;
    if (pz_audit_verify(argv[1], lookup, keys, print_line, NULL, &r, &gerr) != 0) {
        pz_cmd_fail("%s", gerr->message);
        g_error_free(gerr);
        rc = PZ_EXIT_USAGE;
        goto out;
    }
    printf("%s: %" G_GUINT64_FORMAT " records: %" G_GUINT64_FORMAT " valid, %" G_GUINT64_FORMAT
           " bad signature, %" G_GUINT64_FORMAT " unknown caller, %" G_GUINT64_FORMAT " chain breaks%s\n",
           argv[1], r.records, r.valid, r.bad_signature, r.unknown_caller, r.chain_breaks,
           r.truncated ? ", truncated" : "");
    rc = (r.valid == r.records && !r.chain_breaks && !r.truncated) ? PZ_EXIT_OK : PZ_EXIT_NO;
out:
    g_hash_table_destroy(keys);
    g_strfreev(certs);
    g_strfreev(keyfiles);
    return rc;
}

int pz_cmd_audit(int argc, char **argv)
{
    static const pz_cmd table[] = {
        {"verify", "check an RPC audit log against the callers' keys", audit_verify},
        {NULL, NULL, NULL},
    };
    return pz_cmd_dispatch("audit", table, argc, argv);
}
