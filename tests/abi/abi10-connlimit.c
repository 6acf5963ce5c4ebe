/* tests/abi/abi10-connlimit.c — a connection limiter built against the
 * FROZEN ABI 1.0 headers (tests/abi/1.0/include), as a third party's plugin
 * compiled before ABI 1.1 would be. The core (1.1) must load it and drive
 * it through the 1.0 part of its table only.
 *
 * What it does: admits at most `max_open` connections at once (by address,
 * then by identity), counts releases, and keeps, per node, the number of
 * bad behaviour events: peer_status says probation after one, blocked
 * after `block_after`. Metrics (through the core): open (gauge),
 * released_total, events_total{behaviour number}.
 *
 * The trap: the table is stored inside a larger object whose next word —
 * where ABI 1.1 put peer_info — points to abi10_trap(). A core that
 * ignored struct_size and called peer_info on this table would call the
 * trap, which counts metric peer_info_trap_total and answers a bogus score
 * of 99, both of which tests/unit/test_abi_compat.c looks for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <prozsec/connlimit.h>

#if PZ_ABI_MAJOR != 1 || PZ_ABI_MINOR != 0
#error "abi10-connlimit must be compiled against tests/abi/1.0/include (ABI 1.0)"
#endif

#define MAX_NODES 64

typedef struct node_slot {
    char id[PZ_NODE_ID_MAX + 1];
    int64_t bad;
} node_slot;

typedef struct abi10 {
    const pz_core *core;
    int64_t max_open, block_after;
    int64_t open;
    node_slot nodes[MAX_NODES];
    size_t n_nodes;
} abi10;

static node_slot *node_find(abi10 *s, const char *id, int create)
{
    for (size_t i = 0; i < s->n_nodes; i++)
        if (strcmp(s->nodes[i].id, id) == 0)
            return &s->nodes[i];
    if (!create || s->n_nodes == MAX_NODES || strlen(id) > PZ_NODE_ID_MAX)
        return NULL;
    node_slot *n = &s->nodes[s->n_nodes++];
    snprintf(n->id, sizeof(n->id), "%s", id);
    n->bad = 0;
    return n;
}

static int abi10_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    abi10 *s = calloc(1, sizeof(*s));
    if (!s)
        return core->error(core, err, PZ_ENOMEM, "out of memory");
    s->core = core;
    int rc = core->conf_int(conf, "max_open", 2, 1, 1000000, &s->max_open, err);
    if (rc == 0)
        rc = core->conf_int(conf, "block_after", 2, 1, 1000000, &s->block_after, err);
    if (rc) {
        free(s);
        return rc;
    }
    *state = s;
    return 0;
}

static void abi10_destroy(void *state)
{
    free(state);
}

static void refuse(pz_admit_result *out, int reason, const char *detail)
{
    out->admitted = 0;
    out->reason = reason;
    snprintf(out->detail, sizeof(out->detail), "%s", detail);
}

static int abi10_admit_address(void *state, const pz_addr *addr, uint64_t now_ns, pz_admit_result *out)
{
    abi10 *s = state;
    (void)addr;
    (void)now_ns;
    if (s->open >= s->max_open) {
        refuse(out, 1, "abi10: max_open reached");
        return 0;
    }
    s->open++;
    s->core->metric_set(s->core, "open", NULL, s->open);
    out->admitted = 1;
    return 0;
}

static int abi10_admit_identity(void *state, const pz_addr *addr, const pz_identity *id, uint64_t now_ns,
                                pz_admit_result *out)
{
    abi10 *s = state;
    (void)addr;
    (void)now_ns;
    node_slot *n = node_find(s, id->node_id, 0);
    if (n && n->bad >= s->block_after) {
        /* The connection stops being pending either way, and a limiter that
         * refuses is not released for it (connlimit.h): stop counting it. */
        if (s->open > 0)
            s->open--;
        s->core->metric_set(s->core, "open", NULL, s->open);
        refuse(out, 2, "abi10: node blocked");
        return 0;
    }
    out->admitted = 1;
    return 0;
}

static void abi10_release(void *state, const pz_addr *addr, const pz_identity *id, pz_conn_stage stage,
                          uint64_t now_ns)
{
    abi10 *s = state;
    (void)addr;
    (void)id;
    (void)stage;
    (void)now_ns;
    if (s->open > 0)
        s->open--;
    s->core->metric_set(s->core, "open", NULL, s->open);
    s->core->metric_add(s->core, "released_total", NULL, 1);
}

static void abi10_on_behavior(void *state, const pz_behavior_event *ev)
{
    abi10 *s = state;
    char label[16];
    snprintf(label, sizeof(label), "%d", (int)ev->behavior);
    s->core->metric_add(s->core, "events_total", label, 1);
    if (!ev->node_id || ev->behavior == PZ_BEHAVIOR_VALID_REQUEST)
        return;
    node_slot *n = node_find(s, ev->node_id, 1);
    if (n)
        n->bad++;
}

static int abi10_peer_status(void *state, const char *node_id, uint64_t now_ns, pz_peer_status *out)
{
    abi10 *s = state;
    (void)now_ns;
    node_slot *n = node_find(s, node_id, 0);
    *out = !n ? PZ_STATUS_UNKNOWN
              : n->bad >= s->block_after ? PZ_STATUS_BLOCKED : n->bad > 0 ? PZ_STATUS_PROBATION : PZ_STATUS_NEUTRAL;
    return 0;
}

/* Shaped like ABI 1.1's peer_info; the 1.0 headers do not know that type,
 * so OUT is only written as far as its first two fields, whose layout
 * (uint32_t struct_size, then a double score) the trap assumes. */
static int abi10_trap(void *state, const char *node_id, uint64_t now_ns, void *out)
{
    abi10 *s = state;
    (void)node_id;
    (void)now_ns;
    s->core->metric_add(s->core, "peer_info_trap_total", NULL, 1);
    if (out) {
        double bogus = 99;
        memcpy((char *)out + 8, &bogus, sizeof(bogus));
    }
    return 0;
}

/* The 1.0 table, followed in memory by the trap pointer. */
static const struct {
    pz_connlimit_provider table;
    int (*after_1_0)(void *state, const char *node_id, uint64_t now_ns, void *out);
} tables = {
    .table =
        {
            .struct_size = sizeof(pz_connlimit_provider),
            .create = abi10_create,
            .destroy = abi10_destroy,
            .admit_address = abi10_admit_address,
            .admit_identity = abi10_admit_identity,
            .release = abi10_release,
            .on_behavior = abi10_on_behavior,
            .peer_status = abi10_peer_status,
        },
    .after_1_0 = abi10_trap,
};

static const pz_conf_key schema[] = {
    {"max_open", PZ_CONF_INT, "2", "connections admitted at once"},
    {"block_after", PZ_CONF_INT, "2", "bad behaviour events after which a node is blocked"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor desc = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "abi10-connlimit",
    .version = "1.0.0",
    .description = "ABI test: a connection limiter built against the frozen 1.0 headers",
    .kind = PZ_KIND_CONNLIMIT,
    .provider = &tables.table,
    .config_schema = schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &desc;
}
