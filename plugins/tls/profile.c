/* plugins/tls/profile.c — TLS profiles: configuration, suite table and the
 * GnuTLS priority string. See profile.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "profile.h"

/* Every suite this transport can negotiate: ECDHE key exchange (TLS 1.2) or
 * TLS 1.3, AEAD ciphers only. The order is the order of the built-in
 * preference where a profile lists no suites of its own. */
static const pz_tls_suite suites[] = {
    {0x1302, "TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", PZ_TLS_V13, NULL, "AES-256-GCM"},
    {0x1303, "TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256", PZ_TLS_V13, NULL,
     "CHACHA20-POLY1305"},
    {0x1301, "TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", PZ_TLS_V13, NULL, "AES-128-GCM"},
    {0x1304, "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_SHA256", PZ_TLS_V13, NULL, "AES-128-CCM"},
    {0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", PZ_TLS_V12,
     "ECDHE-ECDSA", "AES-256-GCM"},
    {0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", PZ_TLS_V12,
     "ECDHE-ECDSA", "CHACHA20-POLY1305"},
    {0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", PZ_TLS_V12, "ECDHE-RSA",
     "AES-256-GCM"},
    {0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", PZ_TLS_V12,
     "ECDHE-ECDSA", "AES-128-GCM"},
    {0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", PZ_TLS_V12, "ECDHE-RSA",
     "AES-128-GCM"},
    {0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", PZ_TLS_V12,
     "ECDHE-RSA", "CHACHA20-POLY1305"},
};

#define N_SUITES (sizeof(suites) / sizeof(suites[0]))

/* The default: TLS 1.3's AEAD suites, then the seed's three TLS 1.2 suites. */
static const uint16_t default_suites[] = {0x1302, 0x1303, 0x1301, 0xC02C, 0xCCA9, 0xC030};

/* Signature algorithms offered and accepted in handshakes: SHA-256 or
 * stronger only (certificate signatures are checked by the validation
 * service, which applies the same floor). */
static const char sign_algorithms[] =
    "+SIGN-ECDSA-SECP384R1-SHA384:+SIGN-ECDSA-SECP521R1-SHA512:+SIGN-ECDSA-SECP256R1-SHA256:"
    "+SIGN-ECDSA-SHA384:+SIGN-ECDSA-SHA512:+SIGN-ECDSA-SHA256:"
    "+SIGN-RSA-PSS-RSAE-SHA384:+SIGN-RSA-PSS-RSAE-SHA512:+SIGN-RSA-PSS-RSAE-SHA256:"
    "+SIGN-RSA-PSS-SHA384:+SIGN-RSA-PSS-SHA512:+SIGN-RSA-PSS-SHA256:"
    "+SIGN-RSA-SHA384:+SIGN-RSA-SHA512:+SIGN-RSA-SHA256";

/* ECDHE groups only: no finite-field DHE, even in TLS 1.3. */
static const char groups[] = "+GROUP-X25519:+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-SECP256R1";

const pz_tls_suite *pz_tls_suite_by_id(uint16_t id)
{
    for (size_t i = 0; i < N_SUITES; i++)
        if (suites[i].id == id)
            return &suites[i];
    return NULL;
}

static int contains(const char *s, const char *needle)
{
    return strstr(s, needle) != NULL;
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Why NAME (upper-cased) is weak, or NULL when no weakness is recognised. */
static const char *weakness(const char *name)
{
    if (contains(name, "NULL"))
        return "NULL cipher (no encryption)";
    if (contains(name, "EXPORT") || starts(name, "EXP-") || starts(name, "EXP1024"))
        return "export-grade cipher";
    if (contains(name, "RC4"))
        return "RC4 cipher (broken)";
    if (contains(name, "DES") || contains(name, "RC2") || contains(name, "IDEA"))
        return "64-bit block cipher (DES/3DES/RC2/IDEA)";
    if (contains(name, "ANON") || starts(name, "ADH-") || starts(name, "AECDH-"))
        return "anonymous key exchange (no server authentication)";
    if (contains(name, "PSK") || contains(name, "SRP") || contains(name, "KRB5"))
        return "key exchange without certificates (PSK/SRP/Kerberos)";
    /* Past this point only judge names that look like suites at all. */
    static const char *const ciphers[] = {"AES", "CHACHA20", "CAMELLIA", "ARIA", "SEED", "GOST", "SM4"};
    int cipher = 0;
    for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++)
        cipher |= contains(name, ciphers[i]);
    if (!cipher)
        return NULL;
    int tls13 = starts(name, "TLS_") && !contains(name, "_WITH_");
    if (!tls13) {
        int ecdhe = starts(name, "TLS_ECDHE_ECDSA_WITH_") || starts(name, "TLS_ECDHE_RSA_WITH_") ||
                    starts(name, "ECDHE-ECDSA-") || starts(name, "ECDHE-RSA-");
        if (!ecdhe)
            return "non-ECDHE key exchange (no forward secrecy, or static/finite-field DH)";
    }
    if (!contains(name, "GCM") && !contains(name, "CCM") && !contains(name, "CHACHA20"))
        return "CBC (non-AEAD) cipher";
    if (contains(name, "CCM_8") || contains(name, "CCM8"))
        return "AEAD with a truncated 8-byte tag (CCM_8)";
    return NULL;
}

int pz_tls_suite_lookup(const char *name, const pz_tls_suite **out, const char **why)
{
    if (out)
        *out = NULL;
    if (why)
        *why = NULL;
    if (!name)
        return PZ_ENOENT;
    for (size_t i = 0; i < N_SUITES; i++) {
        if (!strcmp(name, suites[i].iana) || !strcmp(name, suites[i].openssl)) {
            if (out)
                *out = &suites[i];
            return 0;
        }
    }
    char upper[128];
    size_t n = strlen(name);
    if (n >= sizeof(upper))
        n = sizeof(upper) - 1;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        upper[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    upper[n] = '\0';
    const char *weak = weakness(upper);
    if (weak) {
        if (why)
            *why = weak;
        return PZ_EREFUSED;
    }
    if (why)
        *why = "not a cipher suite this transport supports (ECDHE with AES-GCM or ChaCha20-Poly1305 for "
               "TLS 1.2, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256 or "
               "TLS_AES_128_CCM_SHA256 for TLS 1.3; names are case-sensitive)";
    return PZ_ENOENT;
}

void pz_tls_profiles_default(pz_tls_profiles *profiles)
{
    memset(profiles, 0, sizeof(*profiles));
    pz_tls_profile *p = &profiles->v[0];
    snprintf(p->name, sizeof(p->name), "default");
    p->min_version = PZ_TLS_V12;
    p->client_auth = PZ_TLS_CLIENT_AUTH_REQUIRED;
    for (size_t i = 0; i < sizeof(default_suites) / sizeof(default_suites[0]); i++)
        p->suites[p->n_suites++] = pz_tls_suite_by_id(default_suites[i]);
    profiles->n = 1;
}

/* The value node of KEY in MAP, for messages; NULL when absent. */
static const pz_conf *child(const pz_core *core, const pz_conf *map, const char *key)
{
    size_t n = core->conf_len(map);
    for (size_t i = 0; i < n; i++) {
        const char *k = NULL;
        const pz_conf *node = core->conf_at(map, i, &k);
        if (k && !strcmp(k, key))
            return node;
    }
    return NULL;
}

/* Report MSG about KEY of MAP at the value's position (or the map's). */
static int bad_value(const pz_core *core, const pz_conf *map, const char *key, pz_err *err, const char *msg,
                     const char *value)
{
    const pz_conf *node = child(core, map, key);
    return core->conf_error(node ? node : map, err, "\"%s\" %s", value, msg);
}

static int parse_version(const char *s, int *out)
{
    static const struct {
        const char *name;
        int version;
    } names[] = {
        {"tls1.2", PZ_TLS_V12}, {"tls1.3", PZ_TLS_V13}, {"TLSv1.2", PZ_TLS_V12}, {"TLSv1.3", PZ_TLS_V13},
        {"1.2", PZ_TLS_V12},    {"1.3", PZ_TLS_V13},    {"tls1.0", 10},         {"tls1.1", 11},
        {"TLSv1", 10},          {"TLSv1.0", 10},        {"TLSv1.1", 11},        {"1.0", 10},
        {"1.1", 11},            {"tls1", 10},           {"ssl3", 3},            {"SSLv3", 3},
        {"sslv3", 3},           {"ssl2", 2},            {"SSLv2", 2},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcmp(s, names[i].name)) {
            *out = names[i].version;
            return 0;
        }
    }
    return PZ_EINVAL;
}

static int parse_suites(const pz_core *core, const pz_conf *pmap, pz_tls_profile *p, pz_err *err)
{
    const pz_conf *list = NULL;
    int rc = core->conf_list(pmap, "cipher_suites", &list, err);
    if (rc != 0 || !list)
        return rc;
    size_t n = core->conf_len(list);
    if (n == 0)
        return core->conf_error(list, err, "empty cipher suite list; remove the key to use the default suites");
    if (n > PZ_TLS_MAX_SUITES)
        return core->conf_error(list, err, "%zu cipher suites listed; at most %d", n, PZ_TLS_MAX_SUITES);
    p->n_suites = 0;
    for (size_t i = 0; i < n; i++) {
        const pz_conf *elem = core->conf_at(list, i, NULL);
        const char *name = elem ? core->conf_scalar(elem) : NULL;
        if (!name)
            return core->conf_error(elem ? elem : list, err, "expected a cipher suite name");
        const pz_tls_suite *s = NULL;
        const char *why = NULL;
        rc = pz_tls_suite_lookup(name, &s, &why);
        if (rc == PZ_EREFUSED)
            return core->conf_error(elem, err, "cipher suite \"%s\" refused: %s", name, why);
        if (rc != 0)
            return core->conf_error(elem, err, "cipher suite \"%s\": %s", name, why);
        for (size_t j = 0; j < p->n_suites; j++)
            if (p->suites[j] == s)
                return core->conf_error(elem, err, "cipher suite \"%s\" listed twice", name);
        p->suites[p->n_suites++] = s;
    }
    return 0;
}

static int parse_profile(const pz_core *core, const pz_conf *pmap, pz_tls_profile *p, pz_err *err)
{
    int rc = 0;
    if (core->conf_has(pmap, "min_version")) {
        const char *s = NULL;
        int v = 0;
        rc = core->conf_string(pmap, "min_version", NULL, &s, err);
        if (rc != 0)
            goto out;
        if (parse_version(s, &v) != 0) {
            rc = bad_value(core, pmap, "min_version", err, "is not a TLS version; expected tls1.2 or tls1.3", s);
            goto out;
        }
        if (v < PZ_TLS_V12) {
            rc = bad_value(core, pmap, "min_version", err,
                           "is below the TLS 1.2 floor; expected tls1.2 or tls1.3", s);
            goto out;
        }
        p->min_version = v;
    }
    rc = parse_suites(core, pmap, p, err);
    if (rc != 0)
        goto out;
    if (core->conf_has(pmap, "client_auth")) {
        const char *s = NULL;
        rc = core->conf_string(pmap, "client_auth", NULL, &s, err);
        if (rc != 0)
            goto out;
        if (!strcmp(s, "required"))
            p->client_auth = PZ_TLS_CLIENT_AUTH_REQUIRED;
        else if (!strcmp(s, "optional"))
            p->client_auth = PZ_TLS_CLIENT_AUTH_OPTIONAL;
        else if (!strcmp(s, "none"))
            p->client_auth = PZ_TLS_CLIENT_AUTH_NONE;
        else {
            rc = bad_value(core, pmap, "client_auth", err, "is not a client_auth mode; expected required, "
                           "optional or none", s);
            goto out;
        }
    }
    /* Every profile must be able to negotiate something at its floor. */
    int usable = 0;
    for (size_t i = 0; i < p->n_suites; i++)
        if (p->suites[i]->version >= p->min_version)
            usable = 1;
    if (!usable) {
        const pz_conf *where = child(core, pmap, "cipher_suites");
        rc = core->conf_error(where ? where : pmap, err,
                              "no cipher suite usable with min_version %s; list a TLS 1.3 suite "
                              "(TLS_AES_256_GCM_SHA384) or lower min_version to tls1.2",
                              pz_tls_version_name(p->min_version));
    }
out:
    return rc;
}

static int valid_profile_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PZ_NODE_TYPE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '-' || c == '_'));
        if (!ok)
            return 0;
    }
    return 1;
}

int pz_tls_profiles_parse(const pz_core *core, const pz_conf *conf, pz_tls_profiles *profiles, pz_err *err)
{
    pz_tls_profiles_default(profiles);
    if (!conf)
        return 0;
    const pz_conf *pm = NULL;
    int rc = core->conf_map(conf, "profiles", &pm, err);
    if (rc != 0 || !pm)
        return rc;
    size_t n = core->conf_len(pm);
    /* "default" first: the node-type profiles start from it. */
    if (core->conf_has(pm, "default")) {
        const pz_conf *dm = NULL;
        rc = core->conf_map(pm, "default", &dm, err);
        if (rc != 0)
            return rc;
        if (dm) {
            rc = parse_profile(core, dm, &profiles->v[0], err);
            if (rc != 0)
                return rc;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        const pz_conf *node = core->conf_at(pm, i, &name);
        if (!name || !node)
            continue;
        if (!strcmp(name, "default"))
            continue;
        if (!valid_profile_name(name))
            return core->conf_error(node, err,
                                    "profile name \"%s\" is not a node type ([a-z0-9][a-z0-9_-]{0,%d})", name,
                                    PZ_NODE_TYPE_MAX - 1);
        if (profiles->n == PZ_TLS_MAX_PROFILES)
            return core->conf_error(node, err, "too many profiles; at most %d", PZ_TLS_MAX_PROFILES);
        const pz_conf *m = NULL;
        rc = core->conf_map(pm, name, &m, err);
        if (rc != 0)
            return rc;
        pz_tls_profile *p = &profiles->v[profiles->n];
        *p = profiles->v[0];
        snprintf(p->name, sizeof(p->name), "%s", name);
        if (m) {
            rc = parse_profile(core, m, p, err);
            if (rc != 0)
                return rc;
        }
        profiles->n++;
    }
    return 0;
}

const pz_tls_profile *pz_tls_profiles_find(const pz_tls_profiles *profiles, const char *node_type)
{
    if (node_type && *node_type)
        for (size_t i = 1; i < profiles->n; i++)
            if (!strcmp(profiles->v[i].name, node_type))
                return &profiles->v[i];
    return &profiles->v[0];
}

int pz_tls_profile_has_suite(const pz_tls_profile *profile, uint16_t id)
{
    for (size_t i = 0; i < profile->n_suites; i++)
        if (profile->suites[i]->id == id && profile->suites[i]->version >= profile->min_version)
            return 1;
    return 0;
}

int pz_tls_profiles_have_suite(const pz_tls_profiles *profiles, uint16_t id)
{
    for (size_t i = 0; i < profiles->n; i++)
        if (pz_tls_profile_has_suite(&profiles->v[i], id))
            return 1;
    return 0;
}

/* Append ":TOKEN" (or "TOKEN" first) to BUF unless already there. */
static int append(char *buf, size_t len, size_t *used, const char *token)
{
    size_t tl = strlen(token);
    /* Tokens are unique names; look for ":TOKEN:" or ":TOKEN" at the end. */
    for (const char *p = buf; (p = strstr(p, token)) != NULL; p += tl) {
        if ((p == buf || p[-1] == ':') && (p[tl] == ':' || p[tl] == '\0'))
            return 0;
    }
    int n = snprintf(buf + *used, len - *used, "%s%s", *used ? ":" : "", token);
    if (n < 0 || (size_t)n >= len - *used)
        return PZ_ERANGE;
    *used += (size_t)n;
    return 0;
}

int pz_tls_priority_string(const pz_tls_profiles *profiles, char *buf, size_t len)
{
    int rc = PZ_ERANGE;
    size_t used = 0;
    int v13 = 0, v12 = 0;
    if (!buf || len == 0)
        return PZ_ERANGE;
    buf[0] = '\0';
    for (size_t i = 0; i < profiles->n; i++) {
        const pz_tls_profile *p = &profiles->v[i];
        for (size_t j = 0; j < p->n_suites; j++) {
            if (p->suites[j]->version == PZ_TLS_V13)
                v13 = 1;
            else if (p->min_version <= PZ_TLS_V12)
                v12 = 1;
        }
    }
    if (append(buf, len, &used, "NONE") != 0)
        goto out;
    if (v13 && append(buf, len, &used, "+VERS-TLS1.3") != 0)
        goto out;
    if (v12 && append(buf, len, &used, "+VERS-TLS1.2") != 0)
        goto out;
    /* Key exchanges, then ciphers, in preference order (default first). */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < profiles->n; i++) {
            const pz_tls_profile *p = &profiles->v[i];
            for (size_t j = 0; j < p->n_suites; j++) {
                const pz_tls_suite *s = p->suites[j];
                if (s->version < p->min_version)
                    continue;
                char tok[48];
                if (pass == 0 && !s->gnutls_kx)
                    continue;
                snprintf(tok, sizeof(tok), "+%s", pass == 0 ? s->gnutls_kx : s->gnutls_cipher);
                if (append(buf, len, &used, tok) != 0)
                    goto out;
            }
        }
    }
    if (append(buf, len, &used, "+AEAD") != 0 || append(buf, len, &used, sign_algorithms) != 0 ||
        append(buf, len, &used, groups) != 0 || append(buf, len, &used, "+CTYPE-X509") != 0 ||
        append(buf, len, &used, "+COMP-NULL") != 0 || append(buf, len, &used, "%SERVER_PRECEDENCE") != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        buf[0] = '\0';
    return rc;
}

pz_tls_client_auth pz_tls_profiles_request_mode(const pz_tls_profiles *profiles)
{
    int all_required = 1, any = 0;
    for (size_t i = 0; i < profiles->n; i++) {
        if (profiles->v[i].client_auth != PZ_TLS_CLIENT_AUTH_REQUIRED)
            all_required = 0;
        if (profiles->v[i].client_auth != PZ_TLS_CLIENT_AUTH_NONE)
            any = 1;
    }
    if (all_required)
        return PZ_TLS_CLIENT_AUTH_REQUIRED;
    return any ? PZ_TLS_CLIENT_AUTH_OPTIONAL : PZ_TLS_CLIENT_AUTH_NONE;
}

const char *pz_tls_version_name(int version)
{
    switch (version) {
    case PZ_TLS_V12: return "tls1.2";
    case PZ_TLS_V13: return "tls1.3";
    default: return "?";
    }
}

const char *pz_tls_client_auth_name(pz_tls_client_auth mode)
{
    switch (mode) {
    case PZ_TLS_CLIENT_AUTH_REQUIRED: return "required";
    case PZ_TLS_CLIENT_AUTH_OPTIONAL: return "optional";
    case PZ_TLS_CLIENT_AUTH_NONE: return "none";
    default: return "?";
    }
}
