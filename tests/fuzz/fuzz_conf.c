/* tests/fuzz/fuzz_conf.c — libFuzzer target: untrusted YAML through the
 * configuration loader (core/conf.h), then every node of an accepted
 * document through the typed readers a provider would use. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Deeper documents are legal but walking them adds nothing. */
#define WALK_DEPTH_MAX 64

static void walk(const pz_conf *node, unsigned depth)
{
    pz_err err;
    if (!node || depth > WALK_DEPTH_MAX)
        return;
    (void)pz_conf_path(node);
    (void)pz_conf_file(node);
    (void)pz_conf_where(node);
    (void)pz_conf_is_null(node);
    pz_err_init(&err);
    switch (pz_conf_kind(node)) {
    case PZ_CONF_NODE_SCALAR: {
        const char *s = pz_conf_scalar(node);
        uint64_t u;
        int64_t i;
        if (s) {
            (void)pz_parse_duration(s, &u);
            (void)pz_parse_size(s, &u);
        }
        (void)pz_conf_as_int(node, INT64_MIN, INT64_MAX, &i, &err);
        (void)pz_conf_expected(node, &err, "a map");
        break;
    }
    case PZ_CONF_NODE_MAP: {
        const char *key = NULL;
        for (size_t k = 0; k < 4096; k++) {
            const pz_conf *child = pz_conf_at(node, k, &key);
            if (!child)
                break;
            /* Every typed reader on the same key: each must refuse cleanly. */
            if (key) {
                const char *s;
                int64_t i;
                double d;
                int b;
                uint64_t u;
                const pz_conf *c;
                (void)pz_conf_has(node, key);
                (void)pz_conf_child(node, key);
                (void)pz_conf_string(node, key, NULL, &s, &err);
                (void)pz_conf_int(node, key, 0, -1000, 1000, &i, &err);
                (void)pz_conf_double(node, key, 0, -1e9, 1e9, &d, &err);
                (void)pz_conf_bool(node, key, 0, &b, &err);
                (void)pz_conf_duration(node, key, 0, &u, &err);
                (void)pz_conf_size(node, key, 0, &u, &err);
                (void)pz_conf_map(node, key, &c, &err);
                (void)pz_conf_list(node, key, &c, &err);
            }
            walk(child, depth + 1);
        }
        break;
    }
    case PZ_CONF_NODE_LIST:
        for (size_t k = 0; k < 4096; k++) {
            const pz_conf *child = pz_conf_at(node, k, NULL);
            if (!child)
                break;
            walk(child, depth + 1);
        }
        break;
    }
    pz_err_clear(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pz_conf_doc *doc = NULL;
    pz_err err;
    pz_err_init(&err);
    if (pz_conf_load_string("fuzz.yaml", (const char *)data, size, &doc, &err) == 0) {
        const pz_conf *root = pz_conf_root(doc);
        walk(root, 0);
        (void)pz_conf_check_unused(root, &err);
        pz_conf_doc_free(doc);
    }
    pz_err_clear(&err);
    return 0;
}
