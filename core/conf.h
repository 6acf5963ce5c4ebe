/* core/conf.h — configuration: YAML (libyaml) parsed into a core-owned tree
 * that keeps FILE:LINE:COL on every node, typed getters, and the
 * "unknown key" check (a key nobody read is an error).
 *
 * The getters have exactly the signatures of the pz_core table's conf_*
 * members (plugin.h), which point at them. Every error message reads
 * "FILE:LINE:COL: key.path: expected ..., found ...".
 *
 * Thread safety: a document is immutable once loaded except for the "used"
 * marks, which the getters set; read one document from one thread at a
 * time.
 */
#ifndef PZ_CORE_CONF_H
#define PZ_CORE_CONF_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/plugin.h>

typedef struct pz_conf_doc pz_conf_doc;

typedef enum pz_conf_node_kind {
    PZ_CONF_NODE_SCALAR = 1,
    PZ_CONF_NODE_MAP = 2,
    PZ_CONF_NODE_LIST = 3,
} pz_conf_node_kind;

/* Parse the YAML file PATH. A missing, empty or null document gives an
 * empty map. Errors (unreadable file, YAML syntax, duplicate keys,
 * anchors/aliases, tags, several documents, non-scalar keys) go to ERR with
 * FILE:LINE:COL and return PZ_ECONFIG or PZ_EIO; *OUT is then NULL. */
int pz_conf_load_file(const char *path, pz_conf_doc **out, pz_err *err);

/* Same from a string; NAME stands for the file name in messages. */
int pz_conf_load_string(const char *name, const char *text, size_t len, pz_conf_doc **out, pz_err *err);

void pz_conf_doc_free(pz_conf_doc *doc);

/* The root node (a map). Valid until pz_conf_doc_free. */
const pz_conf *pz_conf_root(const pz_conf_doc *doc);

pz_conf_node_kind pz_conf_kind(const pz_conf *node);
/* Dotted path of NODE from the root ("dos.rate_limiters[0].provider"). */
const char *pz_conf_path(const pz_conf *node);
const char *pz_conf_file(const pz_conf *node);
unsigned pz_conf_line(const pz_conf *node); /* 1-based */
unsigned pz_conf_col(const pz_conf *node);  /* 1-based */

/* Typed getters: see the conf_* members of pz_core in plugin.h. */
int pz_conf_has(const pz_conf *map, const char *key);
int pz_conf_string(const pz_conf *map, const char *key, const char *def, const char **out, pz_err *err);
int pz_conf_int(const pz_conf *map, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
                pz_err *err);
int pz_conf_double(const pz_conf *map, const char *key, double def, double min, double max, double *out,
                   pz_err *err);
int pz_conf_bool(const pz_conf *map, const char *key, int def, int *out, pz_err *err);
int pz_conf_duration(const pz_conf *map, const char *key, uint64_t def, uint64_t *out_ns, pz_err *err);
int pz_conf_size(const pz_conf *map, const char *key, uint64_t def, uint64_t *out, pz_err *err);
int pz_conf_map(const pz_conf *map, const char *key, const pz_conf **out, pz_err *err);
int pz_conf_list(const pz_conf *map, const char *key, const pz_conf **out, pz_err *err);
size_t pz_conf_len(const pz_conf *node);
const pz_conf *pz_conf_at(const pz_conf *node, size_t i, const char **key_out);
const char *pz_conf_scalar(const pz_conf *node);
const char *pz_conf_where(const pz_conf *node);
int pz_conf_error(const pz_conf *node, pz_err *err, const char *fmt, ...) PZ_PRINTF(3, 4);

/* Parse helpers shared with the command line: "500ms" -> ns, "1MiB" -> bytes.
 * Return 0 or PZ_EINVAL / PZ_ERANGE. */
int pz_parse_duration(const char *text, uint64_t *out_ns);
int pz_parse_size(const char *text, uint64_t *out);

/* Mark NODE and everything below it used (for a subtree handed whole to
 * something that checks it itself). */
void pz_conf_mark_used(const pz_conf *node);

/* Hand the subtree NODE to someone who checks it on their own (a
 * provider's `config` map): NODE is marked used, and pz_conf_check_unused
 * walking down from an ancestor skips it. pz_conf_check_unused(NODE)
 * itself still checks below NODE. */
void pz_conf_delegate(const pz_conf *node);

/* 1 when NODE is a null scalar (plain `~`, `null`, `Null`, `NULL` or
 * nothing). Getters treat a null value like an absent key (the default
 * applies), but the key still counts for the unknown-key check. */
int pz_conf_is_null(const pz_conf *node);

/* NODE itself read as an integer in [MIN, MAX] (for list elements and map
 * values reached with pz_conf_at). A null NODE is an error here. Marks
 * NODE used. Returns 0 or PZ_ECONFIG with the getters' message. */
int pz_conf_as_int(const pz_conf *node, int64_t min, int64_t max, int64_t *out, pz_err *err);

/* The value node of KEY (a dotted path, as for the getters) in MAP, or
 * NULL when absent or null (or when a node on the way is not a map). Marks
 * it used like a getter does; for readers that check a value themselves
 * and need its position. */
const pz_conf *pz_conf_child(const pz_conf *map, const char *key);

/* Report NODE as a wrong value: sets ERR to "FILE:LINE:COL: path: expected
 * WHAT, found <NODE>" (NODE shown as a map, a list, null or its quoted
 * text), exactly as the getters do, and returns PZ_ECONFIG. */
int pz_conf_expected(const pz_conf *node, pz_err *err, const char *what);

/* Report every key below NODE (inclusive of NODE's own map) that no getter
 * read: one "FILE:LINE:COL: path: unknown key" message per key into ERR
 * (use a collecting pz_err to get them all). Returns 0 when none, else
 * PZ_ECONFIG. */
int pz_conf_check_unused(const pz_conf *node, pz_err *err);

#endif /* PZ_CORE_CONF_H */
