/* core/credframe.c — the credentials frame codec. See credframe.h and
 * docs/internals/credentials-frame.md. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "credframe.h"
#include "err.h"

static int bad(char *why, size_t whylen, const char *fmt, ...) PZ_PRINTF(3, 4);

static int bad(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return PZ_EPROTO;
}

static int method_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int pz_credframe_method_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > PZ_CREDFRAME_METHOD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!method_char((uint8_t)name[i]))
            return 0;
    return 1;
}

int pz_credframe_check_length(uint32_t len, char *why, size_t whylen)
{
    if (len < PZ_CREDFRAME_MIN || len > PZ_CREDFRAME_MAX)
        return bad(why, whylen, "credentials frame of %u bytes; expected %d to %d", len, PZ_CREDFRAME_MIN,
                   PZ_CREDFRAME_MAX);
    return 0;
}

int pz_credframe_decode(const uint8_t *p, size_t len, pz_credframe *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (!p)
        return bad(why, whylen, "no credentials frame");
    if (len > PZ_CREDFRAME_MAX)
        return bad(why, whylen, "credentials frame of %zu bytes; at most %d", len, PZ_CREDFRAME_MAX);
    if (pz_credframe_check_length((uint32_t)len, why, whylen))
        return PZ_EPROTO;
    if (memcmp(p, PZ_CREDFRAME_MAGIC, 4) != 0)
        return bad(why, whylen, "bad magic %02x%02x%02x%02x (not a credentials frame: a peer that does not "
                                "send one?)",
                   p[0], p[1], p[2], p[3]);
    if (p[4] != PZ_CREDFRAME_VERSION)
        return bad(why, whylen, "version %u is not supported (this node speaks %d)", p[4], PZ_CREDFRAME_VERSION);
    size_t n = p[5];
    if (n > PZ_CREDFRAME_MAX_ENTRIES)
        return bad(why, whylen, "%zu entries; at most %d", n, PZ_CREDFRAME_MAX_ENTRIES);
    size_t off = PZ_CREDFRAME_MIN;
    for (size_t i = 0; i < n; i++) {
        pz_credframe_entry *e = &out->e[i];
        if (off >= len)
            return bad(why, whylen, "entry %zu: truncated before its method name", i);
        size_t m = p[off++];
        if (m == 0 || m > PZ_CREDFRAME_METHOD_MAX)
            return bad(why, whylen, "entry %zu: method name of %zu bytes; expected 1 to %d", i, m,
                       PZ_CREDFRAME_METHOD_MAX);
        if (m > len - off)
            return bad(why, whylen, "entry %zu: truncated in its method name", i);
        for (size_t k = 0; k < m; k++)
            if (!method_char(p[off + k]))
                return bad(why, whylen, "entry %zu: method name has byte 0x%02x; expected [a-z0-9-]", i,
                           p[off + k]);
        memcpy(e->method, p + off, m);
        e->method[m] = '\0';
        off += m;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(out->e[k].method, e->method))
                return bad(why, whylen, "entry %zu: method %s repeated", i, e->method);
        if (len - off < 2)
            return bad(why, whylen, "entry %zu (%s): truncated before its token length", i, e->method);
        size_t d = (size_t)p[off] << 8 | p[off + 1];
        off += 2;
        if (d == 0 || d > PZ_CREDFRAME_TOKEN_MAX)
            return bad(why, whylen, "entry %zu (%s): token of %zu bytes; expected 1 to %d", i, e->method, d,
                       PZ_CREDFRAME_TOKEN_MAX);
        if (d > len - off)
            return bad(why, whylen, "entry %zu (%s): token of %zu bytes but only %zu left", i, e->method, d,
                       len - off);
        e->data = p + off;
        e->len = d;
        off += d;
    }
    if (off != len)
        return bad(why, whylen, "%zu bytes after the last entry", len - off);
    out->n = n;
    return 0;
}

const pz_credframe_entry *pz_credframe_find(const pz_credframe *f, const char *method)
{
    for (size_t i = 0; f && method && i < f->n; i++)
        if (!strcmp(f->e[i].method, method))
            return &f->e[i];
    return NULL;
}

int pz_credframe_encode(const pz_credframe *f, uint8_t *buf, size_t cap, size_t *len)
{
    size_t need = PZ_CREDFRAME_HDR + PZ_CREDFRAME_MIN;
    if (!f || !len || f->n > PZ_CREDFRAME_MAX_ENTRIES)
        return PZ_EINVAL;
    for (size_t i = 0; i < f->n; i++) {
        const pz_credframe_entry *e = &f->e[i];
        if (!pz_credframe_method_valid(e->method) || !e->data || e->len == 0 || e->len > PZ_CREDFRAME_TOKEN_MAX)
            return PZ_EINVAL;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(f->e[k].method, e->method))
                return PZ_EINVAL;
        need += 1 + strlen(e->method) + 2 + e->len;
    }
    if (need - PZ_CREDFRAME_HDR > PZ_CREDFRAME_MAX)
        return PZ_EINVAL;
    *len = need;
    if (!buf || cap < need)
        return PZ_ERANGE;
    uint32_t pl = (uint32_t)(need - PZ_CREDFRAME_HDR);
    buf[0] = (uint8_t)(pl >> 24);
    buf[1] = (uint8_t)(pl >> 16);
    buf[2] = (uint8_t)(pl >> 8);
    buf[3] = (uint8_t)pl;
    memcpy(buf + 4, PZ_CREDFRAME_MAGIC, 4);
    buf[8] = PZ_CREDFRAME_VERSION;
    buf[9] = (uint8_t)f->n;
    size_t off = PZ_CREDFRAME_HDR + PZ_CREDFRAME_MIN;
    for (size_t i = 0; i < f->n; i++) {
        const pz_credframe_entry *e = &f->e[i];
        size_t m = strlen(e->method);
        buf[off++] = (uint8_t)m;
        memcpy(buf + off, e->method, m);
        off += m;
        buf[off++] = (uint8_t)(e->len >> 8);
        buf[off++] = (uint8_t)e->len;
        memcpy(buf + off, e->data, e->len);
        off += e->len;
    }
    return 0;
}
