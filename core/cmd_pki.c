/* core/cmd_pki.c — `prozsec ca init` and `prozsec cert
 * issue|self-signed|revoke|show|verify`. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "certval.h"
#include "cmd.h"
#include "pki.h"

static uint64_t now_s(void)
{
    return (uint64_t)(g_get_real_time() / G_USEC_PER_SEC);
}

/* Exit code for a failed library call: a usage/config error (2). */
static int fail(const char *what, pz_err *err)
{
    pz_cmd_fail("%s: %s", what, pz_err_msg(err));
    pz_err_clear(err);
    return PZ_EXIT_USAGE;
}

static int parse_days(const char *opt, int value, unsigned *out)
{
    if (value < 0) {
        pz_cmd_fail("%s: expected a positive number of days", opt);
        return PZ_EXIT_USAGE;
    }
    *out = (unsigned)value;
    return 0;
}

static int no_positional(const char *name, int argc, char **argv)
{
    if (argc > 1) {
        pz_cmd_fail("%s: unexpected argument '%s' (try --help)", name, argv[1]);
        return PZ_EXIT_USAGE;
    }
    return 0;
}

/* ---- ca init ---- */

static int ca_init(int argc, char **argv)
{
    static char *dir, *org, *key;
    static int days, node_days;
    static gboolean force;
    static const GOptionEntry entries[] = {
        {"dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir, "Directory of the CA (created if missing)", "DIR"},
        {"org", 'o', 0, G_OPTION_ARG_STRING, &org, "Organisation name (default ProzChain)", "O"},
        {"key", 'k', 0, G_OPTION_ARG_STRING, &key, "ecdsa-p384 (default), ecdsa-p521, rsa-3072 or rsa-4096", "TYPE"},
        {"days", 0, 0, G_OPTION_ARG_INT, &days, "Validity of the CA certificate (default 3650)", "N"},
        {"node-days", 0, 0, G_OPTION_ARG_INT, &node_days, "Default validity of node certificates (default 365)", "N"},
        {"force", 'f', 0, G_OPTION_ARG_NONE, &force, "Replace an existing CA in DIR", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cmd_parse("ca init", NULL,
                          "Create a CA: DIR/ca.crt, DIR/ca.key (0600), an empty signed DIR/ca.crl and DIR/ca.yaml.",
                          entries, &argc, &argv);
    if (rc || (rc = no_positional("ca init", argc, argv)))
        return rc;
    if (!dir) {
        pz_cmd_fail("ca init: --dir is required");
        return PZ_EXIT_USAGE;
    }
    pz_ca_init_opts o = {.dir = dir, .org = org, .key = PZ_PKI_KEY_ECDSA_P384, .force = force};
    if ((rc = parse_days("--days", days, &o.days)) || (rc = parse_days("--node-days", node_days, &o.node_days)))
        return rc;
    if (key && pz_pki_key_parse(key, &o.key, &err) < 0)
        return fail("ca init: --key", &err);
    if (pz_ca_init(&o, now_s(), &err) < 0)
        return fail("ca init", &err);
    printf("CA created in %s: ca.crt, ca.key (0600), ca.crl, ca.yaml (%s)\n", dir, pz_pki_key_name(o.key));
    return PZ_EXIT_OK;
}

/* ---- cert issue ---- */

static int cert_issue(int argc, char **argv)
{
    static char *ca, *id, *type, *out, *key, *country, *state, *locality;
    static int days;
    static gboolean force;
    static const GOptionEntry entries[] = {
        {"ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "Directory of the CA (prozsec ca init)", "DIR"},
        {"node-id", 'n', 0, G_OPTION_ARG_STRING, &id, "Node id: 1-64 of A-Z a-z 0-9 . _ -, not starting with . or -", "ID"},
        {"node-type", 't', 0, G_OPTION_ARG_STRING, &type, "Node type: 1-32 of a-z 0-9 _ -", "TYPE"},
        {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Directory for node.crt, node.key and the node's keys", "DIR"},
        {"key", 'k', 0, G_OPTION_ARG_STRING, &key, "TLS key: ecdsa-p384, ecdsa-p521, rsa-3072, rsa-4096 (default: the CA's node_key)", "TYPE"},
        {"days", 0, 0, G_OPTION_ARG_INT, &days, "Validity (default: the CA's node_days)", "N"},
        {"country", 0, 0, G_OPTION_ARG_STRING, &country, "Country (C), two letters", "C"},
        {"state", 0, 0, G_OPTION_ARG_STRING, &state, "State or province (ST)", "ST"},
        {"locality", 0, 0, G_OPTION_ARG_STRING, &locality, "Locality (L)", "L"},
        {"force", 'f', 0, G_OPTION_ARG_NONE, &force, "Replace existing node files in DIR", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cmd_parse("cert issue", NULL,
                          "Issue a node certificate and generate the node's TLS, signing and E2E keys.", entries,
                          &argc, &argv);
    if (rc || (rc = no_positional("cert issue", argc, argv)))
        return rc;
    if (!ca || !id || !type || !out) {
        pz_cmd_fail("cert issue: --ca, --node-id, --node-type and --out are required");
        return PZ_EXIT_USAGE;
    }
    pz_cert_issue_opts o = {.ca_dir = ca, .node_id = id, .node_type = type, .out_dir = out, .country = country,
                            .state = state, .locality = locality, .force = force};
    if ((rc = parse_days("--days", days, &o.days)))
        return rc;
    if (key) {
        if (pz_pki_key_parse(key, &o.key, &err) < 0)
            return fail("cert issue: --key", &err);
        o.key_set = 1;
    }
    if (pz_cert_issue(&o, now_s(), &err) < 0)
        return fail("cert issue", &err);
    printf("issued node:%s (%s) in %s: node.crt, node.key (0600) and the node's signing and E2E keys\n", id, type, out);
    return PZ_EXIT_OK;
}

/* ---- cert self-signed ---- */

static void print_hex(const char *label, const uint8_t *b, size_t n)
{
    printf("%s", label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
    printf("\n");
}

static int cert_self_signed(int argc, char **argv)
{
    static char *id, *type, *out, *key, *country, *state, *locality;
    static int days;
    static gboolean force;
    static const GOptionEntry entries[] = {
        {"node-id", 'n', 0, G_OPTION_ARG_STRING, &id, "Node id: 1-64 of A-Z a-z 0-9 . _ -, not starting with . or -", "ID"},
        {"node-type", 't', 0, G_OPTION_ARG_STRING, &type, "Node type: 1-32 of a-z 0-9 _ - (default validator)", "TYPE"},
        {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Directory for node.crt, node.key and the node's keys", "DIR"},
        {"key", 'k', 0, G_OPTION_ARG_STRING, &key, "TLS key: ecdsa-p384 (default), ecdsa-p521, rsa-3072, rsa-4096", "TYPE"},
        {"days", 0, 0, G_OPTION_ARG_INT, &days, "Validity (default 365)", "N"},
        {"country", 0, 0, G_OPTION_ARG_STRING, &country, "Country (C), two letters", "C"},
        {"state", 0, 0, G_OPTION_ARG_STRING, &state, "State or province (ST)", "ST"},
        {"locality", 0, 0, G_OPTION_ARG_STRING, &locality, "Locality (L)", "L"},
        {"force", 'f', 0, G_OPTION_ARG_NONE, &force, "Replace existing node files in DIR", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cmd_parse("cert self-signed", NULL,
                          "Make a self-signed node certificate and the node's TLS, signing and E2E keys,\n"
                          "for nodes that pin each other's keys (the key-pin provider, tls verify:\n"
                          "auth-chain) instead of trusting a CA. Prints the certificate's pin\n"
                          "(spki_sha256, for a peer's key-pin pins or peer directory) and the public\n"
                          "keys it carries.",
                          entries, &argc, &argv);
    if (rc || (rc = no_positional("cert self-signed", argc, argv)))
        return rc;
    if (!id || !out) {
        pz_cmd_fail("cert self-signed: --node-id and --out are required");
        return PZ_EXIT_USAGE;
    }
    pz_cert_issue_opts o = {.node_id = id, .node_type = type ? type : "validator", .out_dir = out,
                            .country = country, .state = state, .locality = locality, .force = force};
    if ((rc = parse_days("--days", days, &o.days)))
        return rc;
    if (key) {
        if (pz_pki_key_parse(key, &o.key, &err) < 0)
            return fail("cert self-signed: --key", &err);
        o.key_set = 1;
    }
    uint8_t spki[32], sign_pub[32], e2e_pub[32];
    if (pz_cert_self_sign(&o, now_s(), spki, sign_pub, e2e_pub, &err) < 0)
        return fail("cert self-signed", &err);
    char *b64 = g_base64_encode(spki, sizeof(spki));
    printf("self-signed node:%s (%s) in %s: node.crt, node.key (0600) and the node's signing and E2E keys\n", id,
           o.node_type, out);
    printf("spki_sha256: sha256//%s\n", b64);
    print_hex("sign_pub: ", sign_pub, sizeof(sign_pub));
    print_hex("e2e_pub: ", e2e_pub, sizeof(e2e_pub));
    g_free(b64);
    return PZ_EXIT_OK;
}

/* ---- cert revoke ---- */

static int cert_revoke(int argc, char **argv)
{
    static char *ca;
    static const GOptionEntry entries[] = {
        {"ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "Directory of the CA that issued CERT", "DIR"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cmd_parse("cert revoke", "CERT", "Add CERT to the CA's CRL, bump the CRL number and re-sign it.",
                          entries, &argc, &argv);
    if (rc)
        return rc;
    if (!ca || argc != 2) {
        pz_cmd_fail("cert revoke: usage: prozsec cert revoke --ca DIR CERT");
        return PZ_EXIT_USAGE;
    }
    rc = pz_cert_revoke(ca, argv[1], now_s(), &err);
    if (rc == PZ_EEXIST) {
        pz_cmd_fail("cert revoke: %s", pz_err_msg(&err));
        pz_err_clear(&err);
        return PZ_EXIT_NO;
    }
    if (rc < 0)
        return fail("cert revoke", &err);
    g_autofree char *crl = g_build_filename(ca, "ca.crl", NULL);
    printf("%s: revoked; %s re-signed\n", argv[1], crl);
    return PZ_EXIT_OK;
}

/* ---- cert show ---- */

static int cert_show(int argc, char **argv)
{
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cmd_parse("cert show", "CERT", "Print a certificate's node identity, validity, key, fingerprints and embedded keys.",
                          NULL, &argc, &argv);
    if (rc)
        return rc;
    if (argc != 2) {
        pz_cmd_fail("cert show: usage: prozsec cert show CERT");
        return PZ_EXIT_USAGE;
    }
    uint8_t *der = NULL;
    size_t len = 0;
    char *text = NULL;
    if (pz_cert_load_der(argv[1], &der, &len, &err) < 0 || pz_cert_describe(der, len, &text, &err) < 0) {
        g_free(der);
        return fail("cert show", &err);
    }
    printf("%s:\n%s", argv[1], text);
    g_free(text);
    g_free(der);
    return PZ_EXIT_OK;
}

/* ---- cert verify ---- */

/* Read every certificate of PATH (PEM bundle or one DER) as DER. */
static int load_chain(const char *path, GPtrArray *ders, GArray *lens)
{
    char *data = NULL;
    gsize size = 0;
    GError *gerr = NULL;
    if (!g_file_get_contents(path, &data, &size, &gerr)) {
        pz_cmd_fail("cert verify: %s", gerr->message);
        g_error_free(gerr);
        return PZ_EXIT_USAGE;
    }
    gnutls_datum_t d = {(unsigned char *)data, (unsigned)size};
    gnutls_x509_crt_t *list = NULL;
    unsigned n = 0;
    int grc = gnutls_x509_crt_list_import2(&list, &n, &d,
                                           memmem(data, size, "-----BEGIN", 10) ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER,
                                           0);
    g_free(data);
    if (grc < 0 || n == 0) {
        pz_cmd_fail("cert verify: %s: no certificate could be read", path);
        return PZ_EXIT_USAGE;
    }
    int rc = 0;
    for (unsigned i = 0; i < n; i++) {
        gnutls_datum_t out = {NULL, 0};
        if (!rc && gnutls_x509_crt_export2(list[i], GNUTLS_X509_FMT_DER, &out) == 0) {
            g_ptr_array_add(ders, g_memdup2(out.data, out.size));
            size_t l = out.size;
            g_array_append_val(lens, l);
            gnutls_free(out.data);
        } else if (!rc) {
            pz_cmd_fail("cert verify: %s: certificate %u cannot be exported", path, i);
            rc = PZ_EXIT_USAGE;
        }
        gnutls_x509_crt_deinit(list[i]);
    }
    gnutls_free(list);
    return rc;
}

static int cert_verify(int argc, char **argv)
{
    static char *ca, *crl, *purpose;
    static const GOptionEntry entries[] = {
        {"ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "Directory of the trusted CA (its ca.crt, and ca.crl when present)", "DIR"},
        {"crl", 0, 0, G_OPTION_ARG_FILENAME, &crl, "CRL file to use instead of DIR/ca.crl", "FILE"},
        {"purpose", 0, 0, G_OPTION_ARG_STRING, &purpose, "client, server or both (default)", "P"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    pz_err err;
    pz_err_init(&err);
    int rc = pz_cmd_parse("cert verify", "CERT",
                          "Validate CERT (PEM, may hold intermediates after the leaf) as the node services do. Exit 0 "
                          "when valid, 1 when invalid (with the reason).",
                          entries, &argc, &argv);
    if (rc)
        return rc;
    if (!ca || argc != 2) {
        pz_cmd_fail("cert verify: usage: prozsec cert verify --ca DIR [--crl FILE] CERT");
        return PZ_EXIT_USAGE;
    }
    int purp = PZ_CERTVAL_CLIENT | PZ_CERTVAL_SERVER;
    if (purpose && !strcmp(purpose, "client"))
        purp = PZ_CERTVAL_CLIENT;
    else if (purpose && !strcmp(purpose, "server"))
        purp = PZ_CERTVAL_SERVER;
    else if (purpose && strcmp(purpose, "both")) {
        pz_cmd_fail("cert verify: --purpose: expected client, server or both, got \"%s\"", purpose);
        return PZ_EXIT_USAGE;
    }
    g_autofree char *ca_file = g_build_filename(ca, "ca.crt", NULL);
    g_autofree char *def_crl = g_build_filename(ca, "ca.crl", NULL);
    const char *ca_files[1] = {ca_file};
    const char *crl_files[1] = {crl ? crl : def_crl};
    pz_certval_opts opts = {.ca_files = ca_files, .n_ca_files = 1, .crl_files = crl_files,
                            .n_crl_files = crl || g_file_test(def_crl, G_FILE_TEST_EXISTS) ? 1 : 0};
    pz_certval *cv = NULL;
    if (pz_certval_new(&opts, &cv, &err) < 0)
        return fail("cert verify", &err);

    GPtrArray *ders = g_ptr_array_new_with_free_func(g_free);
    GArray *lens = g_array_new(FALSE, FALSE, sizeof(size_t));
    pz_certval_result res;
    if (!(rc = load_chain(argv[1], ders, lens))) {
        if (pz_certval_verify(cv, (const uint8_t *const *)ders->pdata, (const size_t *)(void *)lens->data, ders->len,
                              now_s(), purp, &res) < 0) {
            pz_cmd_fail("cert verify: %s", res.reason_text);
            rc = PZ_EXIT_USAGE;
        } else if (res.valid) {
            printf("%s: valid (node %s, type %s)\n", argv[1], res.node_id, res.node_type);
            rc = PZ_EXIT_OK;
        } else {
            printf("%s: invalid: %s [%s]\n", argv[1], res.reason_text, pz_certval_reason_name(res.reason));
            rc = PZ_EXIT_NO;
        }
    }
    g_ptr_array_unref(ders);
    g_array_unref(lens);
    pz_certval_free(cv);
    return rc;
}

static const pz_cmd ca_cmds[] = {
    {"init", "create a CA (certificate, key, empty CRL, settings)", ca_init},
    {NULL, NULL, NULL},
};

static const pz_cmd cert_cmds[] = {
    {"issue", "issue a node certificate and generate the node's keys", cert_issue},
    {"self-signed", "make a self-signed node certificate (key pinning, no CA) and print its pin", cert_self_signed},
    {"revoke", "revoke a certificate (adds it to the CA's CRL)", cert_revoke},
    {"show", "print a certificate's identity, validity, key and embedded keys", cert_show},
    {"verify", "validate a certificate as the node services do", cert_verify},
    {NULL, NULL, NULL},
};

int pz_cmd_ca(int argc, char **argv)
{
    return pz_cmd_dispatch("ca", ca_cmds, argc, argv);
}

int pz_cmd_cert(int argc, char **argv)
{
    return pz_cmd_dispatch("cert", cert_cmds, argc, argv);
}
