/* core/cmd_e2e.c — `prozsec e2e seal|open|keygen|rotate`: end-to-end
 * encrypted envelopes from the command line (include/prozsec/e2e.h).
 *
 * seal and open read stdin and write stdout; on any failure they write
 * nothing to stdout and one line to stderr, and exit 1 (refused or failed)
 * or 2 (usage, key directory or certificate problem). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <prozsec/e2e.h>

#include "cmd.h"
#include "conf.h"
#include "err.h"
#include "nodekeys.h"
#include "pki.h"

/* Largest envelope or plaintext read from stdin. */
#define STDIN_MAX ((size_t)(16u << 20) + PZ_E2E_AAD_MAX + 4096)

static uint64_t now_ns(void)
{
    return (uint64_t)g_get_real_time() * 1000u;
}

static int no_positional(const char *name, int argc, char **argv)
{
    if (argc > 1) {
        pz_cmd_fail("%s: unexpected argument '%s' (try --help)", name, argv[1]);
        return PZ_EXIT_USAGE;
    }
    return 0;
}

/* Read all of stdin (at most STDIN_MAX bytes) into a malloc'd buffer. */
static int read_stdin(const char *name, uint8_t **out, size_t *len)
{
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap);
    *out = NULL;
    *len = 0;
    if (!buf) {
        pz_cmd_fail("%s: out of memory", name);
        return PZ_EXIT_NO;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= STDIN_MAX) {
                pz_e2e_free_bytes(buf, n);
                pz_cmd_fail("%s: input larger than %zu bytes", name, (size_t)STDIN_MAX);
                return PZ_EXIT_NO;
            }
            size_t ncap = cap * 2 > STDIN_MAX ? STDIN_MAX : cap * 2;
            uint8_t *nbuf = malloc(ncap);
            if (!nbuf) {
                pz_e2e_free_bytes(buf, n);
                pz_cmd_fail("%s: out of memory", name);
                return PZ_EXIT_NO;
            }
            memcpy(nbuf, buf, n);
            pz_e2e_free_bytes(buf, n); /* may be plaintext: wipe the old copy */
            buf = nbuf;
            cap = ncap;
        }
        ssize_t r = read(STDIN_FILENO, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            pz_e2e_free_bytes(buf, n);
            pz_cmd_fail("%s: reading stdin: %s", name, g_strerror(errno));
            return PZ_EXIT_NO;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int write_stdout(const char *name, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t w = write(STDOUT_FILENO, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            pz_cmd_fail("%s: writing stdout: %s", name, g_strerror(errno));
            return PZ_EXIT_NO;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The node id and keys of the certificate at PATH (PEM or DER). */
static int load_cert(const char *name, const char *path, pz_cert_info *info)
{
    pz_err err;
    uint8_t *der = NULL;
    size_t len = 0;
    int rc;
    pz_err_init(&err);
    rc = pz_cert_load_der(path, &der, &len, &err);
    if (rc == 0)
        rc = pz_cert_node_info(der, len, info, &err);
    g_free(der);
    if (rc) {
        pz_cmd_fail("%s: %s", name, pz_err_msg(&err));
        pz_err_clear(&err);
        return PZ_EXIT_USAGE;
    }
    pz_err_clear(&err);
    if (!info->has_keys) {
        pz_cmd_fail("%s: %s: the certificate of node %s carries no E2E keys", name, path, info->node_id);
        return PZ_EXIT_USAGE;
    }
    return 0;
}

/* This node's id: --id, else the certificate in DIR (node.crt) whose
 * signing key is the one in DIR/sign.key. */
static int own_id(const char *name, const char *dir, const char *id_opt, char **out)
{
    pz_cert_info info;
    pz_nodekeys *keys = NULL;
    pz_err err;
    int rc;

    if (id_opt) {
        *out = g_strdup(id_opt);
        return 0;
    }
    g_autofree char *crt = g_build_filename(dir, "node.crt", NULL);
    if (!g_file_test(crt, G_FILE_TEST_EXISTS)) {
        pz_cmd_fail("%s: %s not found: give this node's id with --id", name, crt);
        return PZ_EXIT_USAGE;
    }
    rc = load_cert(name, crt, &info);
    if (rc)
        return rc;
    pz_err_init(&err);
    rc = pz_nodekeys_load(dir, &keys, &err);
    if (rc) {
        pz_cmd_fail("%s: %s", name, pz_err_msg(&err));
        pz_err_clear(&err);
        return PZ_EXIT_USAGE;
    }
    rc = memcmp(pz_nodekeys_sign_pub(keys), info.sign_pub, 32) ? PZ_EXIT_USAGE : 0;
    pz_nodekeys_free(keys);
    if (rc) {
        pz_cmd_fail("%s: %s does not carry the signing key in %s/sign.key", name, crt, dir);
        return rc;
    }
    *out = g_strdup(info.node_id);
    return 0;
}

static int open_context(const char *name, const char *dir, const char *id_opt, pz_e2e **out)
{
    g_autofree char *id = NULL;
    GError *gerr = NULL;
    int rc = own_id(name, dir, id_opt, &id);
    if (rc)
        return rc;
    if (pz_e2e_new(id, dir, NULL, out, &gerr)) {
        pz_cmd_fail("%s: %s", name, gerr->message);
        g_error_free(gerr);
        return PZ_EXIT_USAGE;
    }
    return 0;
}

static int add_cert_peer(const char *name, pz_e2e *e2e, const char *path, char node_id[PZ_E2E_ID_MAX + 1])
{
    pz_cert_info info;
    GError *gerr = NULL;
    int rc = load_cert(name, path, &info);
    if (rc)
        return rc;
    if (pz_e2e_add_peer(e2e, info.node_id, info.sign_pub, info.e2e_pub, &gerr)) {
        pz_cmd_fail("%s: %s: %s", name, path, gerr->message);
        g_error_free(gerr);
        return PZ_EXIT_USAGE;
    }
    g_strlcpy(node_id, info.node_id, PZ_E2E_ID_MAX + 1);
    return 0;
}

static int parse_suite(const char *text, pz_e2e_suite *out)
{
    if (!text || !strcmp(text, "chacha20-poly1305"))
        *out = PZ_E2E_SUITE_CHACHA20_POLY1305;
    else if (!strcmp(text, "aes-256-gcm"))
        *out = PZ_E2E_SUITE_AES_256_GCM;
    else if (!strcmp(text, "aes-128-gcm"))
        *out = PZ_E2E_SUITE_AES_128_GCM;
    else
        return -1;
    return 0;
}

/* ---- seal ---- */

static int e2e_seal(int argc, char **argv)
{
    static char *dir, *to, *aad, *suite, *record, *id;
    static gboolean sealed_sender;
    static const GOptionEntry entries[] = {
        {"key-dir", 'k', 0, G_OPTION_ARG_FILENAME, &dir, "This node's key directory", "DIR"},
        {"to", 't', 0, G_OPTION_ARG_FILENAME, &to, "The recipient's certificate (PEM or DER)", "CERT"},
        {"aad", 'a', 0, G_OPTION_ARG_STRING, &aad, "Associated data: sent in clear, authenticated", "TEXT"},
        {"suite", 's', 0, G_OPTION_ARG_STRING, &suite,
         "chacha20-poly1305 (default), aes-256-gcm or aes-128-gcm", "SUITE"},
        {"sealed-sender", 0, 0, G_OPTION_ARG_NONE, &sealed_sender,
         "Hide the sender id and signature inside the ciphertext", NULL},
        {"record", 'r', 0, G_OPTION_ARG_FILENAME, &record,
         "The recipient's signed key record (from its `prozsec e2e rotate`)", "FILE"},
        {"id", 0, 0, G_OPTION_ARG_STRING, &id, "This node's id (default: from DIR/node.crt)", "ID"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    int rc = pz_cmd_parse("e2e seal", NULL,
                          "Seal stdin for the node of CERT; the envelope goes to stdout.", entries, &argc, &argv);
    pz_e2e *e2e = NULL;
    uint8_t *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    char recipient[PZ_E2E_ID_MAX + 1];
    GError *gerr = NULL;
    pz_e2e_seal_params sp = {sizeof(sp), PZ_E2E_SUITE_DEFAULT, 0, NULL, 0};

    if (rc || (rc = no_positional("e2e seal", argc, argv)))
        return rc;
    if (!dir || !to) {
        pz_cmd_fail("e2e seal: --key-dir and --to are required");
        return PZ_EXIT_USAGE;
    }
    if (parse_suite(suite, &sp.suite)) {
        pz_cmd_fail("e2e seal: --suite: expected chacha20-poly1305, aes-256-gcm or aes-128-gcm, got \"%s\"", suite);
        return PZ_EXIT_USAGE;
    }
    sp.sealed_sender = sealed_sender;
    sp.aad = (const uint8_t *)aad;
    sp.aad_len = aad ? strlen(aad) : 0;
    if ((rc = open_context("e2e seal", dir, id, &e2e)) || (rc = add_cert_peer("e2e seal", e2e, to, recipient)))
        goto out;
    if (record) {
        g_autofree char *text = NULL;
        gsize len = 0;
        GError *ferr = NULL;
        if (!g_file_get_contents(record, &text, &len, &ferr)) {
            pz_cmd_fail("e2e seal: --record: %s", ferr->message);
            g_error_free(ferr);
            rc = PZ_EXIT_USAGE;
            goto out;
        }
        if (pz_e2e_add_key_record(e2e, recipient, (const uint8_t *)text, len, now_ns(), &gerr)) {
            pz_cmd_fail("e2e seal: %s: %s", record, gerr->message);
            rc = PZ_EXIT_USAGE;
            goto out;
        }
    }
    if ((rc = read_stdin("e2e seal", &in, &in_len)))
        goto out;
    if (pz_e2e_seal(e2e, recipient, &sp, in, in_len, now_ns(), &out, &out_len, &gerr)) {
        pz_cmd_fail("e2e seal: %s", gerr->message);
        rc = PZ_EXIT_NO;
        goto out;
    }
    rc = write_stdout("e2e seal", out, out_len);
out:
    if (gerr)
        g_error_free(gerr);
    pz_e2e_free_bytes(in, in_len);
    free(out);
    pz_e2e_free(e2e);
    return rc;
}

/* ---- open: the replay memory across runs ----
 *
 * Each run of `prozsec e2e open` is a new process with an empty replay
 * cache, so the tool keeps what it opened in KEY_DIR/e2e.seen, one line
 * per envelope: "TIMESTAMP_MS SENDER MESSAGE_ID_HEX". A run holds an
 * exclusive lock (KEY_DIR/.e2e.seen.lock) from loading the file to
 * appending its envelope, so two runs cannot both accept one envelope.
 * Lines older than the maximum age are dropped when the file is
 * rewritten. */

#define SEEN_FILE "e2e.seen"
#define SEEN_LOCK ".e2e.seen.lock"

static int seen_lock(const char *dir)
{
    g_autofree char *path = g_build_filename(dir, SEEN_LOCK, NULL);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Feed DIR/e2e.seen to E2E; returns the number of live lines, or -1 when
 * the file exists but cannot be read. *TOTAL gets all lines. */
static long seen_load(pz_e2e *e2e, const char *dir, uint64_t now, long *total)
{
    g_autofree char *path = g_build_filename(dir, SEEN_FILE, NULL);
    g_autofree char *text = NULL;
    long live = 0;
    *total = 0;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return g_file_test(path, G_FILE_TEST_EXISTS) ? -1 : 0;
    for (char *line = text, *next; line && *line; line = next) {
        uint64_t ts;
        char sender[PZ_E2E_ID_MAX + 1], hex[2 * PZ_E2E_MESSAGE_ID_LEN + 1];
        uint8_t id[PZ_E2E_MESSAGE_ID_LEN];
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        (*total)++;
        if (sscanf(line, "%" SCNu64 " %64s %32s", &ts, sender, hex) != 3 || strlen(hex) != 32)
            continue;
        for (int i = 0; i < PZ_E2E_MESSAGE_ID_LEN; i++)
            id[i] = (uint8_t)(g_ascii_xdigit_value(hex[2 * i]) << 4 | g_ascii_xdigit_value(hex[2 * i + 1]));
        int rc = pz_e2e_mark_seen(e2e, sender, id, ts * 1000000u, now);
        if (rc == 0 || rc == PZ_EREPLAY)
            live++;
    }
    return live;
}

static void seen_line(GString *s, const pz_e2e_meta *m)
{
    g_string_append_printf(s, "%" PRIu64 " %s ", m->timestamp_ns / 1000000u, m->sender_id);
    for (int i = 0; i < PZ_E2E_MESSAGE_ID_LEN; i++)
        g_string_append_printf(s, "%02x", m->message_id[i]);
    g_string_append_c(s, '\n');
}

/* Append M; rewrite the file without expired lines when they dominate. */
static int seen_store(const char *dir, const pz_e2e_meta *m, long live, long total, uint64_t now)
{
    g_autofree char *path = g_build_filename(dir, SEEN_FILE, NULL);
    g_autoptr(GString) line = g_string_new(NULL);
    int rc = 0;
    seen_line(line, m);
    if (total > 64 && total > 2 * live) {
        /* Rewrite: keep lines whose envelopes could still be replayed. */
        pz_e2e_options o;
        g_autofree char *text = NULL;
        g_autoptr(GString) keep = g_string_new(NULL);
        pz_e2e_options_init(&o);
        if (g_file_get_contents(path, &text, NULL, NULL)) {
            for (char *l = text, *next; l && *l; l = next) {
                uint64_t ts;
                next = strchr(l, '\n');
                if (next)
                    *next++ = 0;
                if (sscanf(l, "%" SCNu64, &ts) == 1 && ts * 1000000u + o.max_age_ns >= now)
                    g_string_append_printf(keep, "%s\n", l);
            }
        }
        g_string_append(keep, line->str);
        GError *gerr = NULL;
        if (!g_file_set_contents_full(path, keep->str, (gssize)keep->len, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                      &gerr)) {
            g_error_free(gerr);
            rc = -1;
        }
        return rc;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (write(fd, line->str, line->len) != (ssize_t)line->len || fsync(fd))
        rc = -1;
    close(fd);
    return rc;
}

/* ---- open ---- */

static int e2e_open(int argc, char **argv)
{
    static char *dir, *from, *aad, *id;
    static const GOptionEntry entries[] = {
        {"key-dir", 'k', 0, G_OPTION_ARG_FILENAME, &dir, "This node's key directory", "DIR"},
        {"from", 'f', 0, G_OPTION_ARG_FILENAME, &from, "The sender's certificate (PEM or DER)", "CERT"},
        {"aad", 'a', 0, G_OPTION_ARG_STRING, &aad,
         "The associated data expected (default: none)", "TEXT"},
        {"id", 0, 0, G_OPTION_ARG_STRING, &id, "This node's id (default: from DIR/node.crt)", "ID"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    int rc = pz_cmd_parse("e2e open", NULL,
                          "Check and open the envelope on stdin from the node of CERT; the plaintext goes to "
                          "stdout, and only if every check passes.",
                          entries, &argc, &argv);
    pz_e2e *e2e = NULL;
    uint8_t *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    char sender[PZ_E2E_ID_MAX + 1];
    GError *gerr = NULL;
    int lock = -1;

    if (rc || (rc = no_positional("e2e open", argc, argv)))
        return rc;
    if (!dir || !from) {
        pz_cmd_fail("e2e open: --key-dir and --from are required");
        return PZ_EXIT_USAGE;
    }
    if ((rc = open_context("e2e open", dir, id, &e2e)) || (rc = add_cert_peer("e2e open", e2e, from, sender)))
        goto out;
    if ((rc = read_stdin("e2e open", &in, &in_len)))
        goto out;
    lock = seen_lock(dir);
    if (lock < 0) {
        pz_cmd_fail("e2e open: %s/%s: cannot lock: %s", dir, SEEN_LOCK, g_strerror(errno));
        rc = PZ_EXIT_USAGE;
        goto out;
    }
    uint64_t now = now_ns();
    long total = 0, live = seen_load(e2e, dir, now, &total);
    if (live < 0) {
        pz_cmd_fail("e2e open: %s/%s: cannot read it", dir, SEEN_FILE);
        rc = PZ_EXIT_USAGE;
        goto out;
    }
    pz_e2e_open_params op = {sizeof(op), sender, 1, (const uint8_t *)aad, aad ? strlen(aad) : 0};
    pz_e2e_meta meta = {sizeof(meta)};
    if (pz_e2e_open(e2e, in, in_len, &op, now, &out, &out_len, &meta, &gerr)) {
        pz_cmd_fail("e2e open: refused: %s", gerr->message);
        rc = PZ_EXIT_NO;
        goto out;
    }
    /* Remember it before releasing the plaintext. */
    if (seen_store(dir, &meta, live, total, now)) {
        pz_cmd_fail("e2e open: %s/%s: cannot record the message id: %s", dir, SEEN_FILE, g_strerror(errno));
        rc = PZ_EXIT_NO;
        goto out;
    }
    rc = write_stdout("e2e open", out, out_len);
out:
    if (lock >= 0)
        close(lock); /* releases the flock */
    if (gerr)
        g_error_free(gerr);
    free(in);
    pz_e2e_free_bytes(out, out_len);
    pz_e2e_free(e2e);
    return rc;
}

/* ---- keygen ---- */

static void print_hex(const char *label, const uint8_t *b, size_t n)
{
    printf("%s", label);
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
    putchar('\n');
}

static int e2e_keygen(int argc, char **argv)
{
    static char *dir;
    static gboolean force;
    static const GOptionEntry entries[] = {
        {"key-dir", 'k', 0, G_OPTION_ARG_FILENAME, &dir, "Key directory (created 0700 if missing)", "DIR"},
        {"force", 0, 0, G_OPTION_ARG_NONE, &force, "Replace existing keys (destroys rotated E2E keys)", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    uint8_t sign_pub[32], e2e_pub[32];
    pz_err err;
    int rc = pz_cmd_parse("e2e keygen", NULL,
                          "Generate the node's Ed25519 signing key and X25519 E2E key (`prozsec cert issue` "
                          "does this too).",
                          entries, &argc, &argv);
    if (rc || (rc = no_positional("e2e keygen", argc, argv)))
        return rc;
    if (!dir) {
        pz_cmd_fail("e2e keygen: --key-dir is required");
        return PZ_EXIT_USAGE;
    }
    pz_err_init(&err);
    if (pz_nodekeys_generate(dir, force, sign_pub, e2e_pub, &err)) {
        pz_cmd_fail("e2e keygen: %s", pz_err_msg(&err));
        pz_err_clear(&err);
        return PZ_EXIT_USAGE;
    }
    print_hex("sign_pub ", sign_pub, 32);
    print_hex("e2e_pub  ", e2e_pub, 32);
    return PZ_EXIT_OK;
}

/* ---- rotate ---- */

static int e2e_rotate(int argc, char **argv)
{
    static char *dir, *interval, *grace, *id;
    static const GOptionEntry entries[] = {
        {"key-dir", 'k', 0, G_OPTION_ARG_FILENAME, &dir, "This node's key directory", "DIR"},
        {"interval", 'i', 0, G_OPTION_ARG_STRING, &interval, "A new receiving key this often (default 7d)", "DURATION"},
        {"grace", 'g', 0, G_OPTION_ARG_STRING, &grace, "A retired key still opens this long (default 2d)", "DURATION"},
        {"id", 0, 0, G_OPTION_ARG_STRING, &id, "This node's id (default: from DIR/node.crt)", "ID"},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    pz_e2e_options o;
    pz_e2e *e2e = NULL;
    GError *gerr = NULL;
    g_autofree char *node = NULL;
    uint8_t rec[PZ_E2E_KEY_RECORD_LEN];
    int created = 0;
    int rc = pz_cmd_parse("e2e rotate", NULL,
                          "Rotate the receiving keys as scheduled (run it from a timer): create a new key when "
                          "the newest is older than the interval, destroy keys retired past the grace period, "
                          "and print the current signed key record (PEM) for peers.",
                          entries, &argc, &argv);
    if (rc || (rc = no_positional("e2e rotate", argc, argv)))
        return rc;
    if (!dir) {
        pz_cmd_fail("e2e rotate: --key-dir is required");
        return PZ_EXIT_USAGE;
    }
    pz_e2e_options_init(&o);
    if ((interval && pz_parse_duration(interval, &o.rotate_interval_ns)) ||
        (grace && pz_parse_duration(grace, &o.grace_ns))) {
        pz_cmd_fail("e2e rotate: expected a duration such as 7d, 12h or 30m");
        return PZ_EXIT_USAGE;
    }
    if ((rc = own_id("e2e rotate", dir, id, &node)))
        return rc;
    if (pz_e2e_new(node, dir, &o, &e2e, &gerr) || pz_e2e_rotate(e2e, now_ns(), &created, &gerr)) {
        pz_cmd_fail("e2e rotate: %s", gerr->message);
        g_error_free(gerr);
        pz_e2e_free(e2e);
        return PZ_EXIT_USAGE;
    }
    fprintf(stderr, "prozsec: e2e rotate: %s\n", created ? "new receiving key created" : "no new key due");
    if (pz_e2e_current_record(e2e, now_ns(), rec) == 0) {
        g_autofree char *b64 = g_base64_encode(rec, sizeof(rec));
        printf("-----BEGIN PROZSEC E2E KEY RECORD-----\n");
        for (size_t i = 0; i < strlen(b64); i += 64)
            printf("%.64s\n", b64 + i);
        printf("-----END PROZSEC E2E KEY RECORD-----\n");
    }
    pz_e2e_free(e2e);
    return PZ_EXIT_OK;
}

static const pz_cmd e2e_cmds[] = {
    {"seal", "encrypt and sign stdin for a node", e2e_seal},
    {"open", "check and decrypt an envelope from a node", e2e_open},
    {"keygen", "generate the node's signing and E2E keys", e2e_keygen},
    {"rotate", "rotate E2E receiving keys; print the current key record", e2e_rotate},
    {NULL, NULL, NULL},
};

int pz_cmd_e2e(int argc, char **argv)
{
    return pz_cmd_dispatch("e2e", e2e_cmds, argc, argv);
}
