/* geo-deny — an example prozsec connection limiter, built out of tree.
 *
 * It refuses connections, before any handshake, from address ranges the
 * operator names as "regions" (for example exported from a GeoIP database):
 *
 *     config:
 *       regions:
 *         test-net-3: [203.0.113.0/24]
 *         doc-v6: ["2001:db8::/32"]
 *       deny: [test-net-3, doc-v6]   # regions refused
 *       allow: [203.0.113.7]         # exceptions, checked first
 *       retry_after: 1h              # hint returned with a refusal
 *
 * Only the remote address is looked at; authenticated peers, behaviour
 * events and releases do not change anything, so those functions are
 * trivial. Local (Unix socket) connections have no address and are always
 * admitted.
 *
 * Thread safety: the instance is read-only after create(), so it would be
 * safe from any number of threads; the core calls a connection limiter from
 * one thread at a time anyway (connlimit.h).
 *
 * Everything this file uses from prozsec comes from <prozsec/connlimit.h>
 * (which includes <prozsec/plugin.h>): build with
 * `pkg-config --cflags prozsec-plugin`; nothing to link.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <prozsec/connlimit.h>

#include "geo-deny.h"

/* One address range. */
typedef struct range {
    pz_addr_family family; /* PZ_AF_INET or PZ_AF_INET6 */
    uint8_t bytes[16];     /* network address, host bits cleared */
    unsigned len;          /* prefix length */
    const char *region;    /* owned by the configuration; NULL for allow ranges */
} range;

typedef struct geo {
    const pz_core *core;
    range *deny;
    size_t n_deny;
    range *allow;
    size_t n_allow;
    uint64_t retry_after_ns;
} geo;

/* ---- ranges ---------------------------------------------------------------- */

/* Parse "203.0.113.0/24", "2001:db8::/32" or a bare address (a /32 or
 * /128) into R. Returns 0, or -1 when TEXT is neither. */
static int range_parse(const char *text, range *r)
{
    char buf[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof(buf))
        return -1;
    memcpy(buf, text, alen);
    buf[alen] = '\0';
    memset(r, 0, sizeof(*r));
    unsigned max;
    if (inet_pton(AF_INET, buf, r->bytes) == 1) {
        r->family = PZ_AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, r->bytes) == 1) {
        r->family = PZ_AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    r->len = max;
    if (slash) {
        char *end = NULL;
        const char *digits = slash + 1;
        if (*digits < '0' || *digits > '9')
            return -1;
        unsigned long len = strtoul(digits, &end, 10);
        if (*end || len > max)
            return -1;
        r->len = (unsigned)len;
    }
    /* Clear the host bits, so "203.0.113.9/24" means 203.0.113.0/24. */
    for (unsigned bit = r->len; bit < max; bit++)
        r->bytes[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    return 0;
}

static int range_contains(const range *r, const pz_addr *a)
{
    if (r->family != a->family)
        return 0;
    unsigned full = r->len / 8, rest = r->len % 8;
    if (memcmp(r->bytes, a->bytes, full) != 0)
        return 0;
    if (rest) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rest));
        if ((r->bytes[full] & mask) != (a->bytes[full] & mask))
            return 0;
    }
    return 1;
}

/* Append the ranges of the list node LIST to *V (growing it), each tagged
 * with REGION. Errors name the element: "FILE:LINE:COL: path: ...". */
static int ranges_add(const pz_core *core, const pz_conf *list, const char *region, range **v, size_t *n,
                      pz_err *err)
{
    size_t count = core->conf_len(list);
    if (*n + count > GEO_DENY_MAX_RANGES)
        return core->conf_error(list, err, "too many ranges (at most %d in all)", GEO_DENY_MAX_RANGES);
    range *grown = realloc(*v, (*n + count + 1) * sizeof(**v));
    if (!grown)
        return core->error(core, err, PZ_ENOMEM, "out of memory");
    *v = grown;
    for (size_t i = 0; i < count; i++) {
        const pz_conf *item = core->conf_at(list, i, NULL);
        const char *text = item ? core->conf_scalar(item) : NULL;
        if (!text)
            return core->conf_error(item ? item : list, err, "expected an address or CIDR such as 203.0.113.0/24");
        range *r = &(*v)[*n];
        if (range_parse(text, r) != 0)
            return core->conf_error(item, err,
                                    "expected an address or CIDR such as 203.0.113.0/24 or 2001:db8::/32, found \"%s\"",
                                    text);
        r->region = region;
        (*n)++;
    }
    return 0;
}

/* ---- configuration ---------------------------------------------------------- */

static int region_name_valid(const char *name)
{
    if (!name || !*name)
        return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
            return 0;
    return 1;
}

static int configure(geo *g, const pz_conf *conf, pz_err *err)
{
    const pz_core *core = g->core;
    const pz_conf *regions = NULL, *deny = NULL, *allow = NULL;
    int rc = 0;

    /* Every key is read through a getter, present or not: a key no getter
     * read is reported to the operator as "unknown key" after create(). */
    if ((rc = core->conf_map(conf, "regions", &regions, err)) ||
        (rc = core->conf_list(conf, "deny", &deny, err)) ||
        (rc = core->conf_list(conf, "allow", &allow, err)) ||
        (rc = core->conf_duration(conf, "retry_after", 3600ull * 1000000000ull, &g->retry_after_ns, err)))
        return rc;

    /* regions: each value must be a list (conf_list says so, with
     * FILE:LINE:COL, when it is not). Names are plain words, so they are
     * never taken for a dotted path. */
    for (size_t i = 0; regions && i < core->conf_len(regions); i++) {
        const char *name = NULL;
        const pz_conf *value = core->conf_at(regions, i, &name);
        const pz_conf *list = NULL;
        if (!region_name_valid(name))
            return core->conf_error(value, err, "region name \"%s\": expected [a-z0-9_-]+", name ? name : "");
        if ((rc = core->conf_list(regions, name, &list, err)))
            return rc;
    }

    /* deny: names of regions, whose ranges are refused. */
    for (size_t i = 0; deny && i < core->conf_len(deny); i++) {
        const pz_conf *item = core->conf_at(deny, i, NULL);
        const char *name = core->conf_scalar(item);
        const pz_conf *list = NULL;
        if (!name)
            return core->conf_error(item, err, "expected a region name");
        if (!region_name_valid(name) || !regions || !core->conf_has(regions, name))
            return core->conf_error(item, err, "no region \"%s\" under regions:", name);
        if ((rc = core->conf_list(regions, name, &list, err)) ||
            (rc = ranges_add(core, list, name, &g->deny, &g->n_deny, err)))
            return rc;
    }

    /* A region nobody denies is most likely a typo in deny:. Its ranges are
     * still checked, and the operator is told. */
    for (size_t i = 0; regions && i < core->conf_len(regions); i++) {
        const char *name = NULL;
        const pz_conf *list = core->conf_at(regions, i, &name);
        int used = 0;
        for (size_t j = 0; j < g->n_deny && !used; j++)
            used = strcmp(g->deny[j].region, name) == 0;
        if (used)
            continue;
        range *none = NULL;
        size_t n_none = 0;
        rc = ranges_add(core, list, name, &none, &n_none, err);
        free(none);
        if (rc)
            return rc;
        core->log(core, PZ_LOG_WARNING, "%s: region \"%s\" is not listed in deny: it has no effect",
                  core->conf_where(list), name);
    }

    if (allow && (rc = ranges_add(core, allow, NULL, &g->allow, &g->n_allow, err)))
        return rc;
    core->metric_set(core, "ranges", "deny", (int64_t)g->n_deny);
    core->metric_set(core, "ranges", "allow", (int64_t)g->n_allow);
    return 0;
}

/* ---- the provider table ------------------------------------------------------ */

static void geo_destroy(void *state)
{
    geo *g = state;
    if (!g)
        return;
    free(g->deny);
    free(g->allow);
    free(g);
}

static int geo_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    geo *g = calloc(1, sizeof(*g));
    if (!g)
        return core->error(core, err, PZ_ENOMEM, "out of memory");
    g->core = core;
    int rc = configure(g, conf, err);
    if (rc) {
        geo_destroy(g);
        return rc;
    }
    *state = g;
    return 0;
}

static int geo_admit_address(void *state, const pz_addr *addr, uint64_t now_ns, pz_admit_result *out)
{
    geo *g = state;
    (void)now_ns; /* time is passed in; this limiter does not need it */
    out->admitted = 1;
    if (addr->family != PZ_AF_INET && addr->family != PZ_AF_INET6)
        return 0;
    for (size_t i = 0; i < g->n_allow; i++)
        if (range_contains(&g->allow[i], addr))
            return 0;
    for (size_t i = 0; i < g->n_deny; i++) {
        if (range_contains(&g->deny[i], addr)) {
            out->admitted = 0;
            out->reason = GEO_DENY_REASON_REGION;
            out->retry_after_ns = g->retry_after_ns;
            snprintf(out->detail, sizeof(out->detail), "address in denied region %s", g->deny[i].region);
            g->core->metric_add(g->core, "refused_total", g->deny[i].region, 1);
            return 0;
        }
    }
    return 0;
}

static int geo_admit_identity(void *state, const pz_addr *addr, const pz_identity *id, uint64_t now_ns,
                              pz_admit_result *out)
{
    (void)state;
    (void)addr;
    (void)id;
    (void)now_ns;
    out->admitted = 1; /* decided by address already */
    return 0;
}

static void geo_release(void *state, const pz_addr *addr, const pz_identity *id, pz_conn_stage stage,
                        uint64_t now_ns)
{
    /* Nothing is counted per connection. */
    (void)state;
    (void)addr;
    (void)id;
    (void)stage;
    (void)now_ns;
}

static void geo_on_behavior(void *state, const pz_behavior_event *event)
{
    /* Behaviour does not move regions. Must not block or emit events. */
    (void)state;
    (void)event;
}

static const pz_connlimit_provider table = {
    /* The size of the table as these headers define it: the core reads no
     * member beyond it, so a plugin built against older headers keeps
     * working with a newer core. */
    .struct_size = sizeof(pz_connlimit_provider),
    .create = geo_create,
    .destroy = geo_destroy,
    .admit_address = geo_admit_address,
    .admit_identity = geo_admit_identity,
    .release = geo_release,
    .on_behavior = geo_on_behavior,
    /* peer_status, ban, unban, flush, peer_info: optional, left NULL. */
};

/* What `prozsec plugins list --verbose` shows operators. */
static const pz_conf_key schema[] = {
    {"regions", PZ_CONF_MAP, "{}", "region name -> list of addresses or CIDRs"},
    {"regions.<name>", PZ_CONF_LIST, "[]", "ranges of one region, e.g. [203.0.113.0/24, \"2001:db8::/32\"]"},
    {"deny", PZ_CONF_LIST, "[]", "names of regions whose addresses are refused before the handshake"},
    {"allow", PZ_CONF_LIST, "[]", "addresses or CIDRs always admitted (checked before deny)"},
    {"retry_after", PZ_CONF_DURATION, "1h", "retry hint given with a refusal"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "geo-deny",
    .version = GEO_DENY_VERSION,
    .description = "example: refuses connections from denied address regions before the handshake",
    .kind = PZ_KIND_CONNLIMIT,
    .provider = &table,
    .config_schema = schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &descriptor;
}
