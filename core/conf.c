/* core/conf.c — YAML configuration (libyaml event API) parsed into a
 * core-owned tree with FILE:LINE:COL on every node, typed getters, and the
 * "unknown key" check.
 *
 * This file uses only libc and libyaml (no GLib): it is also compiled into
 * libprozsec-plugintest, the mock core plugin authors link their tests to.
 * See docs/internals/conf.md.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "conf.h"
#include "err.h"

/* Limits on what a configuration file may be. */
#define CONF_MAX_BYTES (16u * 1024 * 1024)
#define CONF_MAX_DEPTH 64
#define CONF_MAX_NODES 100000
/* Longest value quoted back in a message before it is cut with "...". */
#define CONF_FOUND_MAX 48
/* Keys longer than this get no "did you mean" suggestion. */
#define CONF_SUGGEST_MAX 64

typedef struct conf_entry {
    char *key;         /* map key (NULL for list elements) */
    unsigned line;     /* position of the key (map) */
    unsigned col;
    pz_conf *value;
} conf_entry;

struct pz_conf {
    pz_conf_node_kind kind;
    unsigned line; /* 1-based start of the node */
    unsigned col;
    int used;      /* read by a getter (or marked) */
    int delegated; /* skipped by a check_unused walking down from above */
    const char *file; /* owned by the document */
    char *path;    /* "dos.rate_limiters[0].provider"; "" for the root */
    char *where;   /* "FILE:LINE:COL" */
    /* scalar */
    char *text;
    int quoted; /* written with quotes or as a block scalar: always a string */
    int null;   /* plain ~, null, Null, NULL or empty */
    /* map / list */
    conf_entry *ents;
    size_t n;
    size_t cap;
    /* map: keys looked up that were absent, for "did you mean" */
    char **asked;
    size_t n_asked;
    size_t cap_asked;
};

struct pz_conf_doc {
    char *file;
    pz_conf *root;
};

/* ------------------------------------------------------------------------ */
/* Nodes */

static void node_free(pz_conf *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n; i++) {
        free(node->ents[i].key);
        node_free(node->ents[i].value);
    }
    for (size_t i = 0; i < node->n_asked; i++)
        free(node->asked[i]);
    free(node->asked);
    free(node->ents);
    free(node->text);
    free(node->path);
    free(node->where);
    free(node);
}

static pz_conf *node_new(pz_conf_node_kind kind, const char *file, const char *path, unsigned line,
                         unsigned col)
{
    pz_conf *node = calloc(1, sizeof(*node));
    if (!node)
        return NULL;
    node->kind = kind;
    node->file = file;
    node->line = line;
    node->col = col;
    node->path = strdup(path);
    if (asprintf(&node->where, "%s:%u:%u", file, line, col) < 0)
        node->where = NULL;
    if (!node->path || !node->where) {
        node_free(node);
        return NULL;
    }
    return node;
}

static int node_append(pz_conf *parent, char *key, unsigned line, unsigned col, pz_conf *value)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        conf_entry *ents = realloc(parent->ents, cap * sizeof(*ents));
        if (!ents)
            return PZ_ENOMEM;
        parent->ents = ents;
        parent->cap = cap;
    }
    parent->ents[parent->n++] = (conf_entry){.key = key, .line = line, .col = col, .value = value};
    return 0;
}

static int is_null_text(const char *t)
{
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

static const char *kind_name(pz_conf_node_kind kind)
{
    switch (kind) {
    case PZ_CONF_NODE_MAP: return "a map";
    case PZ_CONF_NODE_LIST: return "a list";
    default: return "a scalar";
    }
}

/* ------------------------------------------------------------------------ */
/* A small string set, to find duplicate keys while a map is being built
 * without quadratic scans on large maps. */

typedef struct keyset {
    const char **slot;
    size_t cap; /* power of two */
    size_t n;
} keyset;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Insert KEY (borrowed). Returns 1 when inserted, 0 when already present,
 * PZ_ENOMEM. */
static int keyset_add(keyset *set, const char *key)
{
    if ((set->n + 1) * 2 > set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        const char **slot = calloc(cap, sizeof(*slot));
        if (!slot)
            return PZ_ENOMEM;
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slot[i])
                continue;
            size_t j = hash_str(set->slot[i]) & (cap - 1);
            while (slot[j])
                j = (j + 1) & (cap - 1);
            slot[j] = set->slot[i];
        }
        free(set->slot);
        set->slot = slot;
        set->cap = cap;
    }
    size_t j = hash_str(key) & (set->cap - 1);
    while (set->slot[j]) {
        if (!strcmp(set->slot[j], key))
            return 0;
        j = (j + 1) & (set->cap - 1);
    }
    set->slot[j] = key;
    set->n++;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Parsing: libyaml events -> tree. */

typedef struct frame {
    pz_conf *node;
    keyset keys;     /* map: keys seen so far */
    char *key;       /* map: key waiting for its value (owned) */
    unsigned key_line;
    unsigned key_col;
} frame;

typedef struct builder {
    char *file; /* owned until handed to the document */
    const char *text;
    pz_err *err;
    frame stack[CONF_MAX_DEPTH + 1];
    size_t depth;
    size_t n_nodes;
    pz_conf *root;
    int n_docs;
} builder;

static int fail_at(builder *b, unsigned line, unsigned col, const char *path, const char *fmt, ...)
    PZ_PRINTF(5, 6);

static int fail_at(builder *b, unsigned line, unsigned col, const char *path, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (!msg)
        return pz_err_set(b->err, PZ_ENOMEM, "%s: out of memory", b->file);
    int rc = pz_err_set(b->err, PZ_ECONFIG, "%s:%u:%u: %s%s%s", b->file, line, col, path ? path : "",
                        path && *path ? ": " : "", msg);
    free(msg);
    return rc;
}

static int fail_nomem(builder *b)
{
    return pz_err_set(b->err, PZ_ENOMEM, "%s: out of memory while reading the configuration", b->file);
}

/* Path of the node about to be added under the top frame; for a map key,
 * KEY is its text. Caller frees. */
static char *child_path(builder *b, const char *key)
{
    char *path = NULL;
    int n;
    if (b->depth == 0)
        return strdup("");
    frame *top = &b->stack[b->depth - 1];
    const char *pp = top->node->path;
    if (top->node->kind == PZ_CONF_NODE_LIST)
        n = asprintf(&path, "%s[%zu]", pp, top->node->n);
    else if (top->key)
        n = asprintf(&path, "%s%s%s", pp, *pp ? "." : "", top->key);
    else if (key)
        n = asprintf(&path, "%s%s%s", pp, *pp ? "." : "", key);
    else
        n = asprintf(&path, "%s", pp); /* a non-scalar key: its map's path */
    return n < 0 ? NULL : path;
}

/* Attach a finished NODE (owned) to the top frame, or make it the root. */
static int attach(builder *b, pz_conf *node)
{
    if (b->depth == 0) {
        b->root = node;
        return 0;
    }
    frame *top = &b->stack[b->depth - 1];
    if (top->node->kind == PZ_CONF_NODE_LIST) {
        if (node_append(top->node, NULL, 0, 0, node) < 0) {
            node_free(node);
            return fail_nomem(b);
        }
        return 0;
    }
    char *key = top->key;
    top->key = NULL;
    if (node_append(top->node, key, top->key_line, top->key_col, node) < 0) {
        free(key);
        node_free(node);
        return fail_nomem(b);
    }
    return 0;
}

static int count_node(builder *b, unsigned line, unsigned col)
{
    if (++b->n_nodes > CONF_MAX_NODES)
        return fail_at(b, line, col, NULL, "more than %d nodes: the configuration is too large",
                       CONF_MAX_NODES);
    return 0;
}

/* Refusals common to every node event: anchors and tags. */
static int check_props(builder *b, const yaml_event_t *ev, const char *path, unsigned line, unsigned col)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    default: break;
    }
    if (anchor)
        return fail_at(b, line, col, path, "anchors (&%s) and aliases are not allowed in configuration",
                       (const char *)anchor);
    if (tag)
        return fail_at(b, line, col, path, "tags (%s) are not allowed in configuration", (const char *)tag);
    return 0;
}

static int on_scalar(builder *b, const yaml_event_t *ev, unsigned line, unsigned col)
{
    int rc = 0;
    char *path = NULL;
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    int quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;

    if ((rc = count_node(b, line, col)) < 0)
        goto out;
    if (!(path = child_path(b, text))) {
        rc = fail_nomem(b);
        goto out;
    }
    if ((rc = check_props(b, ev, path, line, col)) < 0)
        goto out;
    if (memchr(text, '\0', len)) {
        rc = fail_at(b, line, col, path, "NUL characters are not allowed in configuration values");
        goto out;
    }
    frame *top = b->depth ? &b->stack[b->depth - 1] : NULL;
    if (top && top->node->kind == PZ_CONF_NODE_MAP && !top->key) {
        /* This scalar is a key. */
        if (!quoted && is_null_text(text)) {
            rc = fail_at(b, line, col, path, "empty or null keys are not allowed");
            goto out;
        }
        char *key = strdup(text);
        int added = key ? keyset_add(&top->keys, key) : PZ_ENOMEM;
        if (added < 0) {
            free(key);
            rc = fail_nomem(b);
            goto out;
        }
        if (added == 0) {
            free(key);
            for (size_t i = 0; i < top->node->n; i++)
                if (!strcmp(top->node->ents[i].key, text)) {
                    rc = fail_at(b, line, col, path, "duplicate key \"%s\" (first at line %u, column %u)",
                                 text, top->node->ents[i].line, top->node->ents[i].col);
                    goto out;
                }
            rc = fail_at(b, line, col, path, "duplicate key \"%s\"", text);
            goto out;
        }
        /* The keyset borrows KEY; it stays alive in the map's entry. */
        top->key = key;
        top->key_line = line;
        top->key_col = col;
        goto out;
    }
    pz_conf *node = node_new(PZ_CONF_NODE_SCALAR, b->file, path, line, col);
    if (!node || !(node->text = strdup(text))) {
        node_free(node);
        rc = fail_nomem(b);
        goto out;
    }
    node->quoted = quoted;
    node->null = !quoted && is_null_text(text);
    rc = attach(b, node);
out:
    free(path);
    return rc;
}

static int on_start(builder *b, const yaml_event_t *ev, pz_conf_node_kind kind, unsigned line, unsigned col)
{
    int rc = 0;
    char *path = NULL;
    if ((rc = count_node(b, line, col)) < 0)
        goto out;
    if (!(path = child_path(b, NULL))) {
        rc = fail_nomem(b);
        goto out;
    }
    if ((rc = check_props(b, ev, path, line, col)) < 0)
        goto out;
    frame *top = b->depth ? &b->stack[b->depth - 1] : NULL;
    if (top && top->node->kind == PZ_CONF_NODE_MAP && !top->key) {
        rc = fail_at(b, line, col, path, "keys must be scalars, found %s", kind_name(kind));
        goto out;
    }
    if (b->depth >= CONF_MAX_DEPTH) {
        rc = fail_at(b, line, col, path, "nested deeper than %d levels", CONF_MAX_DEPTH);
        goto out;
    }
    pz_conf *node = node_new(kind, b->file, path, line, col);
    if (!node) {
        rc = fail_nomem(b);
        goto out;
    }
    b->stack[b->depth++] = (frame){.node = node};
out:
    free(path);
    return rc;
}

static int on_end(builder *b)
{
    frame *top = &b->stack[--b->depth];
    pz_conf *node = top->node;
    /* Keys in the keyset point into the node's entries; only the table
     * is freed here. */
    free(top->keys.slot);
    free(top->key);
    *top = (frame){0};
    return attach(b, node);
}

static void builder_clear(builder *b)
{
    while (b->depth > 0) {
        frame *top = &b->stack[--b->depth];
        free(top->keys.slot);
        free(top->key);
        node_free(top->node);
    }
    node_free(b->root);
    b->root = NULL;
}

static unsigned mark_line(yaml_mark_t m)
{
    return (unsigned)m.line + 1;
}

static unsigned mark_col(yaml_mark_t m)
{
    return (unsigned)m.column + 1;
}

static int syntax_error(builder *b, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    if (p->error == YAML_MEMORY_ERROR)
        return fail_nomem(b);
    if (p->error == YAML_READER_ERROR) {
        /* The reader (bad UTF-8, control characters) reports a byte
         * offset: turn it into a line and column. */
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < p->problem_offset && b->text[i]; i++) {
            if (b->text[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)b->text[i] & 0xC0) != 0x80) {
                col++;
            }
        }
        return pz_err_set(b->err, PZ_ECONFIG, "%s:%u:%u: invalid YAML: %s", b->file, line, col, problem);
    }
    if (p->context && (p->context_mark.line != p->problem_mark.line ||
                       p->context_mark.column != p->problem_mark.column))
        return pz_err_set(b->err, PZ_ECONFIG, "%s:%u:%u: invalid YAML: %s (%s at line %u, column %u)", b->file,
                          mark_line(p->problem_mark), mark_col(p->problem_mark), problem, p->context,
                          mark_line(p->context_mark), mark_col(p->context_mark));
    return pz_err_set(b->err, PZ_ECONFIG, "%s:%u:%u: invalid YAML: %s", b->file, mark_line(p->problem_mark),
                      mark_col(p->problem_mark), problem);
}

static int parse(const char *file, const char *text, size_t len, pz_conf_doc **out, pz_err *err)
{
    int rc = 0;
    builder b = {.file = strdup(file), .text = text, .err = err};
    yaml_parser_t parser;
    pz_conf_doc *doc = NULL;
    int done = 0;

    if (!b.file)
        return pz_err_set(err, PZ_ENOMEM, "%s: out of memory", file);
    if (!yaml_parser_initialize(&parser)) {
        free(b.file);
        return pz_err_set(err, PZ_ENOMEM, "%s: out of memory", file);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = syntax_error(&b, &parser);
            goto out;
        }
        unsigned line = mark_line(ev.start_mark), col = mark_col(ev.start_mark);
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++b.n_docs > 1)
                rc = fail_at(&b, line, col, NULL, "only one YAML document is allowed in a configuration file");
            break;
        case YAML_ALIAS_EVENT: {
            char *path = child_path(&b, NULL);
            rc = fail_at(&b, line, col, path, "aliases (*%s) and anchors are not allowed in configuration",
                         (const char *)ev.data.alias.anchor);
            free(path);
            break;
        }
        case YAML_SCALAR_EVENT: rc = on_scalar(&b, &ev, line, col); break;
        case YAML_SEQUENCE_START_EVENT: rc = on_start(&b, &ev, PZ_CONF_NODE_LIST, line, col); break;
        case YAML_MAPPING_START_EVENT: rc = on_start(&b, &ev, PZ_CONF_NODE_MAP, line, col); break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: rc = on_end(&b); break;
        default: break;
        }
        yaml_event_delete(&ev);
        if (rc < 0)
            goto out;
    }

    if (!b.root || (b.root->kind == PZ_CONF_NODE_SCALAR && b.root->null)) {
        /* No document, or a null one: an empty map. */
        unsigned line = b.root ? b.root->line : 1, col = b.root ? b.root->col : 1;
        node_free(b.root);
        if (!(b.root = node_new(PZ_CONF_NODE_MAP, b.file, "", line, col))) {
            rc = fail_nomem(&b);
            goto out;
        }
    } else if (b.root->kind != PZ_CONF_NODE_MAP) {
        const pz_conf *r = b.root;
        if (r->kind == PZ_CONF_NODE_SCALAR)
            rc = fail_at(&b, r->line, r->col, NULL, "expected a map of sections at the top level, found \"%s\"",
                         r->text);
        else
            rc = fail_at(&b, r->line, r->col, NULL, "expected a map of sections at the top level, found %s",
                         kind_name(r->kind));
        goto out;
    }
    if (!(doc = calloc(1, sizeof(*doc)))) {
        rc = fail_nomem(&b);
        goto out;
    }
    doc->file = b.file;
    doc->root = b.root;
    b.file = NULL;
    b.root = NULL;
    *out = doc;
out:
    builder_clear(&b);
    free(b.file);
    yaml_parser_delete(&parser);
    return rc;
}

int pz_conf_load_string(const char *name, const char *text, size_t len, pz_conf_doc **out, pz_err *err)
{
    *out = NULL;
    if (!name)
        name = "<string>";
    if (!text)
        return pz_err_set(err, PZ_EINVAL, "%s: no configuration text", name);
    if (len > CONF_MAX_BYTES)
        return pz_err_set(err, PZ_ECONFIG, "%s: larger than the %u MiB limit for a configuration file", name,
                          CONF_MAX_BYTES >> 20);
    return parse(name, text, len, out, err);
}

int pz_conf_load_file(const char *path, pz_conf_doc **out, pz_err *err)
{
    int rc = 0;
    FILE *fp = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;

    *out = NULL;
    if (!(fp = fopen(path, "rb"))) {
        rc = pz_err_set(err, PZ_EIO, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap > CONF_MAX_BYTES) {
                rc = pz_err_set(err, PZ_ECONFIG, "%s: larger than the %u MiB limit for a configuration file",
                                path, CONF_MAX_BYTES >> 20);
                goto out;
            }
            size_t ncap = cap ? cap * 2 : 64 * 1024;
            if (ncap > CONF_MAX_BYTES + 1)
                ncap = CONF_MAX_BYTES + 1;
            char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                rc = pz_err_set(err, PZ_ENOMEM, "%s: out of memory", path);
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) {
            if (ferror(fp)) {
                rc = pz_err_set(err, PZ_EIO, "%s: cannot read: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    if (len > CONF_MAX_BYTES) {
        rc = pz_err_set(err, PZ_ECONFIG, "%s: larger than the %u MiB limit for a configuration file", path,
                        CONF_MAX_BYTES >> 20);
        goto out;
    }
    rc = parse(path, buf ? buf : "", len, out, err);
out:
    if (fp)
        fclose(fp);
    free(buf);
    return rc;
}

void pz_conf_doc_free(pz_conf_doc *doc)
{
    if (!doc)
        return;
    node_free(doc->root);
    free(doc->file);
    free(doc);
}

const pz_conf *pz_conf_root(const pz_conf_doc *doc)
{
    return doc ? doc->root : NULL;
}

pz_conf_node_kind pz_conf_kind(const pz_conf *node)
{
    return node->kind;
}

const char *pz_conf_path(const pz_conf *node)
{
    return node->path;
}

const char *pz_conf_file(const pz_conf *node)
{
    return node->file;
}

unsigned pz_conf_line(const pz_conf *node)
{
    return node->line;
}

unsigned pz_conf_col(const pz_conf *node)
{
    return node->col;
}

/* ------------------------------------------------------------------------ */
/* Getters */

/* Casting away const for the "used" marks: documented in conf.h. */
static void mark(const pz_conf *node)
{
    ((pz_conf *)node)->used = 1;
}

static void remember_asked(const pz_conf *map, const char *key, size_t len)
{
    pz_conf *m = (pz_conf *)map;
    for (size_t i = 0; i < m->n_asked; i++)
        if (strlen(m->asked[i]) == len && !strncmp(m->asked[i], key, len))
            return;
    if (m->n_asked == m->cap_asked) {
        size_t cap = m->cap_asked ? m->cap_asked * 2 : 8;
        char **asked = realloc(m->asked, cap * sizeof(*asked));
        if (!asked)
            return; /* only costs a suggestion */
        m->asked = asked;
        m->cap_asked = cap;
    }
    char *copy = strndup(key, len);
    if (copy)
        m->asked[m->n_asked++] = copy;
}

static const conf_entry *map_find(const pz_conf *map, const char *key, size_t len)
{
    for (size_t i = 0; i < map->n; i++)
        if (strlen(map->ents[i].key) == len && !memcmp(map->ents[i].key, key, len))
            return &map->ents[i];
    return NULL;
}

/* Describe NODE for "found ...": a map, a list, null, a bare number or a
 * quoted string. Writes into BUF. */
static const char *describe(const pz_conf *node, char *buf, size_t size)
{
    if (node->kind != PZ_CONF_NODE_SCALAR)
        return kind_name(node->kind);
    if (node->null)
        return "null";
    size_t o = 0;
    buf[o++] = '"';
    const unsigned char *s = (const unsigned char *)node->text;
    size_t shown = 0;
    for (; *s && o + 8 < size; s++, shown++) {
        /* Cut at the limit, but never inside a UTF-8 sequence. */
        if (shown >= CONF_FOUND_MAX && (*s & 0xC0) != 0x80)
            break;
        if (*s == '"' || *s == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)*s;
        } else if (*s < 0x20 || *s == 0x7f) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *s);
        } else {
            buf[o++] = (char)*s;
        }
    }
    if (*s) {
        buf[o++] = '.';
        buf[o++] = '.';
        buf[o++] = '.';
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static void mark_tree(const pz_conf *node);

static int expected(const pz_conf *node, pz_err *err, const char *what, const char *hint)
{
    char buf[CONF_FOUND_MAX * 4 + 16];
    /* One error per wrong value: what is inside it is not also "unknown". */
    mark_tree(node);
    return pz_err_set(err, PZ_ECONFIG, "%s: %s%sexpected %s, found %s%s", node->where, node->path,
                      *node->path ? ": " : "", what, describe(node, buf, sizeof(buf)), hint ? hint : "");
}

/* Find KEY (a dotted path) below MAP. *OUT is the value node, or NULL when
 * absent (or null: a null value means "use the default"). Every map on the
 * way is marked used; absent keys are remembered for suggestions. Returns
 * 0 or PZ_ECONFIG when MAP or an intermediate node is not a map. */
static int lookup(const pz_conf *map, const char *key, const pz_conf **out, pz_err *err)
{
    *out = NULL;
    if (!map || !key)
        return 0;
    const pz_conf *cur = map;
    const char *seg = key;
    for (;;) {
        if (cur->kind != PZ_CONF_NODE_MAP)
            return expected(cur, err, "a map", NULL);
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        const conf_entry *e = map_find(cur, seg, len);
        if (!e) {
            if (len)
                remember_asked(cur, seg, len);
            return 0;
        }
        mark(e->value);
        if (e->value->kind == PZ_CONF_NODE_SCALAR && e->value->null)
            return 0;
        if (!dot) {
            *out = e->value;
            return 0;
        }
        cur = e->value;
        seg = dot + 1;
    }
}

int pz_conf_has(const pz_conf *map, const char *key)
{
    const pz_conf *node = NULL;
    if (!map || map->kind != PZ_CONF_NODE_MAP)
        return 0;
    if (lookup(map, key, &node, NULL) < 0)
        return 0;
    return node != NULL;
}

int pz_conf_string(const pz_conf *map, const char *key, const char *def, const char **out, pz_err *err)
{
    const pz_conf *node;
    int rc = lookup(map, key, &node, err);
    *out = def;
    if (rc < 0 || !node)
        return rc;
    if (node->kind != PZ_CONF_NODE_SCALAR)
        return expected(node, err, "a string", NULL);
    *out = node->text;
    return 0;
}

/* Parse a plain integer: optional sign, decimal digits or 0x hex digits,
 * optional '_' separators between digits. Returns 0, PZ_EINVAL, PZ_ERANGE. */
static int parse_int(const char *text, int64_t *out)
{
    const char *s = text;
    int neg = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s)
        return PZ_EINVAL;
    uint64_t v = 0;
    int prev_digit = 0;
    for (; *s; s++) {
        unsigned d;
        if (*s == '_' && prev_digit && s[1] && s[1] != '_') {
            prev_digit = 0;
            continue;
        }
        if (isdigit((unsigned char)*s))
            d = (unsigned)(*s - '0');
        else if (base == 16 && isxdigit((unsigned char)*s))
            d = (unsigned)(tolower((unsigned char)*s) - 'a' + 10);
        else
            return PZ_EINVAL;
        if (v > (UINT64_MAX - d) / base)
            return PZ_ERANGE;
        v = v * base + d;
        prev_digit = 1;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return PZ_ERANGE;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > INT64_MAX)
            return PZ_ERANGE;
        *out = (int64_t)v;
    }
    return 0;
}

static int parse_double(const char *text, double *out)
{
    const char *s = text;
    /* strtod also takes "inf", "nan", hex floats and leading spaces: only a
     * plain decimal number is a configuration number. */
    if (*s == '+' || *s == '-')
        s++;
    if (!isdigit((unsigned char)*s) && !(*s == '.' && isdigit((unsigned char)s[1])))
        return PZ_EINVAL;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr(".eE+-", *p))
            return PZ_EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (!end || *end || end == text)
        return PZ_EINVAL;
    if (errno == ERANGE || !isfinite(v))
        return PZ_ERANGE;
    *out = v;
    return 0;
}

static void range_int(char *buf, size_t size, int64_t min, int64_t max)
{
    if (min == INT64_MIN && max == INT64_MAX)
        snprintf(buf, size, "an integer");
    else if (max == INT64_MAX)
        snprintf(buf, size, "an integer >= %" PRId64, min);
    else if (min == INT64_MIN)
        snprintf(buf, size, "an integer <= %" PRId64, max);
    else
        snprintf(buf, size, "an integer between %" PRId64 " and %" PRId64, min, max);
}

static void fmt_num(char *buf, size_t size, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%g", v);
}

static void range_double(char *buf, size_t size, double min, double max)
{
    char a[32], b[32];
    int nomin = min <= -DBL_MAX, nomax = max >= DBL_MAX;
    fmt_num(a, sizeof(a), min);
    fmt_num(b, sizeof(b), max);
    if (nomin && nomax)
        snprintf(buf, size, "a number");
    else if (nomax)
        snprintf(buf, size, "a number >= %s", a);
    else if (nomin)
        snprintf(buf, size, "a number <= %s", b);
    else
        snprintf(buf, size, "a number between %s and %s", a, b);
}

static const char quoted_hint[] = " (quoted, so a string: remove the quotes)";

int pz_conf_int(const pz_conf *map, const char *key, int64_t def, int64_t min, int64_t max, int64_t *out,
                pz_err *err)
{
    const pz_conf *node;
    int rc = lookup(map, key, &node, err);
    *out = def;
    if (rc < 0 || !node)
        return rc;
    rc = pz_conf_as_int(node, min, max, out, err);
    if (rc < 0)
        *out = def;
    return rc;
}

int pz_conf_as_int(const pz_conf *node, int64_t min, int64_t max, int64_t *out, pz_err *err)
{
    char what[96];
    int64_t v = 0;
    int rc;
    mark(node);
    range_int(what, sizeof(what), min, max);
    if (node->kind == PZ_CONF_NODE_SCALAR && node->null)
        return expected(node, err, what, NULL);
    if (node->kind != PZ_CONF_NODE_SCALAR)
        return expected(node, err, what, NULL);
    rc = parse_int(node->text, &v);
    if (node->quoted)
        return expected(node, err, what, rc == 0 ? quoted_hint : NULL);
    if (rc < 0 || v < min || v > max)
        return expected(node, err, what, NULL);
    *out = v;
    return 0;
}

int pz_conf_double(const pz_conf *map, const char *key, double def, double min, double max, double *out,
                   pz_err *err)
{
    const pz_conf *node;
    char what[96];
    double v = 0;
    int rc = lookup(map, key, &node, err);
    *out = def;
    if (rc < 0 || !node)
        return rc;
    range_double(what, sizeof(what), min, max);
    if (node->kind != PZ_CONF_NODE_SCALAR)
        return expected(node, err, what, NULL);
    rc = parse_double(node->text, &v);
    if (node->quoted)
        return expected(node, err, what, rc == 0 ? quoted_hint : NULL);
    if (rc < 0 || v < min || v > max)
        return expected(node, err, what, NULL);
    *out = v;
    return 0;
}

static int parse_bool(const char *t, int *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(t, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcasecmp(t, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return PZ_EINVAL;
}

int pz_conf_bool(const pz_conf *map, const char *key, int def, int *out, pz_err *err)
{
    const pz_conf *node;
    int v = 0;
    int rc = lookup(map, key, &node, err);
    *out = def;
    if (rc < 0 || !node)
        return rc;
    static const char what[] = "true or false";
    if (node->kind != PZ_CONF_NODE_SCALAR)
        return expected(node, err, what, NULL);
    rc = parse_bool(node->text, &v);
    if (node->quoted)
        return expected(node, err, what, rc == 0 ? quoted_hint : NULL);
    if (rc < 0)
        return expected(node, err, what, NULL);
    *out = v;
    return 0;
}

/* Split "NUMBER[ ]UNIT": NUMBER is decimal digits (with optional '_'
 * separators); returns 0, PZ_EINVAL or PZ_ERANGE. *UNIT points into TEXT. */
static int split_number(const char *text, uint64_t *num, const char **unit)
{
    const char *s = text;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return PZ_EINVAL;
    int overflow = 0;
    for (; isdigit((unsigned char)*s) || (*s == '_' && isdigit((unsigned char)s[1]) && s > text); s++) {
        if (*s == '_')
            continue;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            v = v * 10 + d;
    }
    if (*s == ' ')
        s++;
    *num = v;
    *unit = s;
    return overflow ? PZ_ERANGE : 0;
}

typedef struct unit_mult {
    const char *unit;
    uint64_t mult;
} unit_mult;

static int apply_unit(const char *text, const unit_mult *units, uint64_t *out)
{
    uint64_t n = 0;
    const char *unit = NULL;
    int rc = split_number(text, &n, &unit);
    if (rc == PZ_EINVAL)
        return rc;
    for (const unit_mult *u = units; u->unit; u++) {
        if (strcmp(unit, u->unit))
            continue;
        if (unit > text && unit[-1] == ' ' && !*unit)
            return PZ_EINVAL; /* "30 " */
        if (rc < 0)
            return rc;
        if (u->mult && n > UINT64_MAX / u->mult)
            return PZ_ERANGE;
        *out = n * u->mult;
        return 0;
    }
    return PZ_EINVAL;
}

int pz_parse_duration(const char *text, uint64_t *out_ns)
{
    static const unit_mult units[] = {
        {"", 1000000000ull},
        {"ns", 1ull},
        {"us", 1000ull},
        {"\xc2\xb5s", 1000ull}, /* µs */
        {"ms", 1000000ull},
        {"s", 1000000000ull},
        {"m", 60ull * 1000000000ull},
        {"h", 3600ull * 1000000000ull},
        {"d", 86400ull * 1000000000ull},
        {NULL, 0},
    };
    if (!text || !out_ns)
        return PZ_EINVAL;
    return apply_unit(text, units, out_ns);
}

int pz_parse_size(const char *text, uint64_t *out)
{
    static const unit_mult units[] = {
        {"", 1ull},
        {"B", 1ull},
        {"kB", 1000ull},
        {"MB", 1000ull * 1000},
        {"GB", 1000ull * 1000 * 1000},
        {"TB", 1000ull * 1000 * 1000 * 1000},
        {"KiB", 1ull << 10},
        {"MiB", 1ull << 20},
        {"GiB", 1ull << 30},
        {"TiB", 1ull << 40},
        {NULL, 0},
    };
    if (!text || !out)
        return PZ_EINVAL;
    return apply_unit(text, units, out);
}

int pz_conf_duration(const pz_conf *map, const char *key, uint64_t def, uint64_t *out_ns, pz_err *err)
{
    const pz_conf *node;
    int rc = lookup(map, key, &node, err);
    *out_ns = def;
    if (rc < 0 || !node)
        return rc;
    if (node->kind != PZ_CONF_NODE_SCALAR)
        return expected(node, err, "a duration such as 250ms, 30s, 5m, 2h or 1d", NULL);
    /* Quoted durations are fine: "30s" cannot be mistaken for a string. */
    rc = pz_parse_duration(node->text, out_ns);
    if (rc == PZ_ERANGE) {
        *out_ns = def;
        return expected(node, err, "a duration of at most 213503d", NULL);
    }
    if (rc < 0) {
        *out_ns = def;
        return expected(node, err, "a duration such as 250ms, 30s, 5m, 2h or 1d", NULL);
    }
    return 0;
}

int pz_conf_size(const pz_conf *map, const char *key, uint64_t def, uint64_t *out, pz_err *err)
{
    const pz_conf *node;
    int rc = lookup(map, key, &node, err);
    *out = def;
    if (rc < 0 || !node)
        return rc;
    if (node->kind != PZ_CONF_NODE_SCALAR)
        return expected(node, err, "a size such as 512, 64KiB, 1MiB or 1MB", NULL);
    rc = pz_parse_size(node->text, out);
    if (rc == PZ_ERANGE) {
        *out = def;
        return expected(node, err, "a size of at most 16777215TiB", NULL);
    }
    if (rc < 0) {
        *out = def;
        return expected(node, err, "a size such as 512, 64KiB, 1MiB or 1MB", NULL);
    }
    return 0;
}

static int get_kind(const pz_conf *map, const char *key, pz_conf_node_kind kind, const pz_conf **out,
                    pz_err *err)
{
    const pz_conf *node;
    int rc = lookup(map, key, &node, err);
    *out = NULL;
    if (rc < 0 || !node)
        return rc;
    if (node->kind != kind)
        return expected(node, err, kind_name(kind), NULL);
    *out = node;
    return 0;
}

int pz_conf_map(const pz_conf *map, const char *key, const pz_conf **out, pz_err *err)
{
    return get_kind(map, key, PZ_CONF_NODE_MAP, out, err);
}

int pz_conf_list(const pz_conf *map, const char *key, const pz_conf **out, pz_err *err)
{
    return get_kind(map, key, PZ_CONF_NODE_LIST, out, err);
}

size_t pz_conf_len(const pz_conf *node)
{
    return node && node->kind != PZ_CONF_NODE_SCALAR ? node->n : 0;
}

const pz_conf *pz_conf_at(const pz_conf *node, size_t i, const char **key_out)
{
    if (key_out)
        *key_out = NULL;
    if (!node || node->kind == PZ_CONF_NODE_SCALAR || i >= node->n)
        return NULL;
    /* Reading an entry by position reads its key. */
    mark(node->ents[i].value);
    if (key_out)
        *key_out = node->ents[i].key;
    return node->ents[i].value;
}

const char *pz_conf_scalar(const pz_conf *node)
{
    if (!node || node->kind != PZ_CONF_NODE_SCALAR)
        return NULL;
    mark(node);
    return node->text;
}

const char *pz_conf_where(const pz_conf *node)
{
    return node ? node->where : "?";
}

int pz_conf_error(const pz_conf *node, pz_err *err, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    int rc;
    if (!node)
        rc = pz_err_set(err, PZ_ECONFIG, "%s", msg ? msg : "configuration error");
    else
        rc = pz_err_set(err, PZ_ECONFIG, "%s: %s%s%s", node->where, node->path, *node->path ? ": " : "",
                        msg ? msg : "configuration error");
    free(msg);
    return rc;
}

const pz_conf *pz_conf_child(const pz_conf *map, const char *key)
{
    const pz_conf *node = NULL;
    if (!map || map->kind != PZ_CONF_NODE_MAP || lookup(map, key, &node, NULL) < 0)
        return NULL;
    return node;
}

int pz_conf_expected(const pz_conf *node, pz_err *err, const char *what)
{
    if (!node)
        return pz_err_set(err, PZ_ECONFIG, "expected %s", what);
    return expected(node, err, what, NULL);
}

int pz_conf_is_null(const pz_conf *node)
{
    return node && node->kind == PZ_CONF_NODE_SCALAR && node->null;
}

/* ------------------------------------------------------------------------ */
/* Unknown keys */

static void mark_tree(const pz_conf *node)
{
    mark(node);
    for (size_t i = 0; i < node->n; i++)
        mark_tree(node->ents[i].value);
}

void pz_conf_mark_used(const pz_conf *node)
{
    if (node)
        mark_tree(node);
}

void pz_conf_delegate(const pz_conf *node)
{
    if (!node)
        return;
    mark(node);
    ((pz_conf *)node)->delegated = 1;
}

/* Optimal string alignment distance, capped: returns > CAP early. */
static size_t edit_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > CONF_SUGGEST_MAX || lb > CONF_SUGGEST_MAX)
        return cap + 1;
    if ((la > lb ? la - lb : lb - la) > cap)
        return cap + 1;
    size_t d[CONF_SUGGEST_MAX + 1][CONF_SUGGEST_MAX + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

static const char *suggest(const pz_conf *map, const char *key)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < map->n_asked; i++) {
        size_t d = edit_distance(key, map->asked[i], 2);
        if (d > 0 && d < best_d) {
            best = map->asked[i];
            best_d = d;
        }
    }
    return best;
}

static int check_unused(const pz_conf *node, int top, pz_err *err)
{
    int rc = 0;
    if (!node || (node->delegated && !top))
        return 0;
    for (size_t i = 0; i < node->n; i++) {
        const conf_entry *e = &node->ents[i];
        if (node->kind == PZ_CONF_NODE_MAP && !e->value->used) {
            const char *hint = suggest(node, e->key);
            pz_err_set(err, PZ_ECONFIG, "%s:%u:%u: %s: unknown key%s%s%s", node->file, e->line,
                       e->col, e->value->path, hint ? " (did you mean \"" : "", hint ? hint : "",
                       hint ? "\"?)" : "");
            rc = PZ_ECONFIG;
            continue;
        }
        if (check_unused(e->value, 0, err) < 0)
            rc = PZ_ECONFIG;
    }
    return rc;
}

int pz_conf_check_unused(const pz_conf *node, pz_err *err)
{
    return check_unused(node, 1, err);
}
