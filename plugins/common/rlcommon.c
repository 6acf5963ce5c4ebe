/* plugins/common/rlcommon.c — keys, status factors and shared settings of
 * the rate-limiter plugins (see rlcommon.h). */
#include "config.h"

#include <string.h>

#include "ktable.h"
#include "rlcommon.h"

static const char *const status_keys[PZ_RL_NSTATUS] = {
    [PZ_STATUS_UNKNOWN] = "status_factors.unknown",
    [PZ_STATUS_BLOCKED] = "status_factors.blocked",
    [PZ_STATUS_PROBATION] = "status_factors.probation",
    [PZ_STATUS_NEUTRAL] = "status_factors.neutral",
    [PZ_STATUS_TRUSTED] = "status_factors.trusted",
};

static const double status_defaults[PZ_RL_NSTATUS] = {
    [PZ_STATUS_UNKNOWN] = 1.0,  [PZ_STATUS_BLOCKED] = 0.0, [PZ_STATUS_PROBATION] = 0.25,
    [PZ_STATUS_NEUTRAL] = 1.0,  [PZ_STATUS_TRUSTED] = 2.0,
};

static const char *const keymode_names[] = {"peer", "address", "peer_method"};

const char *pz__rl_keymode_name(pz_rl_keymode mode)
{
    return (unsigned)mode < 3 ? keymode_names[mode] : "?";
}

int pz__rl_common_parse(const pz_core *core, const pz_conf *conf, pz_rl_common *out, pz_err *err)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < PZ_RL_NSTATUS; i++)
        out->factor[i] = status_defaults[i];
    out->max_keys = PZ_RL_DEFAULT_MAX_KEYS;
    if (!conf)
        goto out;

    const char *key = NULL;
    rc = core->conf_string(conf, "key", "peer", &key, err);
    if (rc)
        goto out;
    int found = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(key, keymode_names[i]))
            found = i;
    if (found < 0) {
        const pz_conf *node = core->conf_at(conf, 0, NULL);
        /* Point at the value itself: find the "key" entry. */
        for (size_t i = 0; i < core->conf_len(conf); i++) {
            const char *k = NULL;
            const pz_conf *v = core->conf_at(conf, i, &k);
            if (k && !strcmp(k, "key"))
                node = v;
        }
        rc = core->conf_error(node, err, "expected peer, address or peer_method, found \"%s\"", key);
        goto out;
    }
    out->key = (pz_rl_keymode)found;

    int64_t mk = 0;
    rc = core->conf_int(conf, "max_keys", PZ_RL_DEFAULT_MAX_KEYS, PZ_KT_MIN_KEYS, (int64_t)PZ_KT_MAX_KEYS, &mk,
                        err);
    if (rc)
        goto out;
    out->max_keys = (uint64_t)mk;

    const pz_conf *sf = NULL;
    rc = core->conf_map(conf, "status_factors", &sf, err);
    if (rc)
        goto out;
    for (int i = 0; i < PZ_RL_NSTATUS; i++) {
        rc = core->conf_double(conf, status_keys[i], status_defaults[i], 0.0, 1000.0, &out->factor[i], err);
        if (rc)
            goto out;
    }
out:
    return rc;
}

void pz__rl_keys_init(pz_rl_keys *k, const uint8_t secret[PZ_KHASH_SECRET_LEN])
{
    pz__khash_key_init(&k->peer, secret, 'P');
    pz__khash_key_init(&k->tagged, secret, 'T');
}

uint64_t pz__rl_key_hash_tagged(const pz_rl_keys *keys, pz_rl_keymode mode, const pz_rl_request *req)
{
    /* Tag byte first so an address key can never equal a node-id key. */
    uint8_t buf[1 + 1 + 16 + 1 + PZ_NODE_ID_MAX + 1 + 64];
    size_t n = 0;
    const char *id = mode == PZ_RLKEY_ADDRESS ? NULL : req->node_id;
    size_t idlen = id ? strlen(id) : 0;
    const char *method = mode == PZ_RLKEY_PEER_METHOD && req->method ? req->method : "";
    size_t mlen = strlen(method);

    if (id) {
        if (idlen + mlen + 2 > sizeof(buf))
            goto slow;
        buf[n++] = 'P';
        memcpy(buf + n, id, idlen);
        n += idlen;
    } else {
        const pz_addr *a = req->addr;
        buf[n++] = 'A';
        if (!a) {
            buf[n++] = 0;
        } else {
            buf[n++] = (uint8_t)a->family;
            size_t alen = a->family == PZ_AF_INET ? 4 : a->family == PZ_AF_INET6 ? 16 : 0;
            memcpy(buf + n, a->bytes, alen);
            n += alen;
        }
        if (n + mlen + 1 > sizeof(buf))
            goto slow;
    }
    if (mode == PZ_RLKEY_PEER_METHOD) {
        buf[n++] = 0;
        memcpy(buf + n, method, mlen);
        n += mlen;
    }
    return pz__khash(&keys->tagged, buf, n);

slow: {
    /* Longer than any valid node id + method: stream the same bytes through
     * SipHash-1-3 under the key pz__khash uses for long messages. */
    pz_siphash s;
    pz__siphash_init(&s, keys->tagged.sip);
    if (id) {
        pz__siphash_update(&s, "P", 1);
        pz__siphash_update(&s, id, idlen);
    } else {
        pz__siphash_update(&s, buf, n); /* tag + family + address, already built */
    }
    if (mode == PZ_RLKEY_PEER_METHOD) {
        pz__siphash_update(&s, "", 1);
        pz__siphash_update(&s, method, mlen);
    }
    return pz__siphash_final(&s);
}
}
