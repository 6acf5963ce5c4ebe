/* plugins/tls/tls.c — the `tls` transport provider: descriptor, instance
 * state, listeners, reload, session-ticket keys and the client resumption
 * cache. Connections live in conn.c, configuration in creds.c and
 * profile.c; docs/plugins/tls.md is the operator's view. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "tls_int.h"

typedef struct pz_tls_listener {
    pz_tls_state *st;
    int fd;
} pz_tls_listener;

/* ------------------------------------------------------------------------ */
/* Addresses */

int pz_tls_parse_address(const pz_core *core, const char *address, struct sockaddr_storage *ss,
                         unsigned *sslen, pz_err *err)
{
    char host[INET6_ADDRSTRLEN + 8];
    const char *port_s;
    memset(ss, 0, sizeof(*ss));
    if (!address || !*address)
        return core->error(core, err, PZ_EINVAL, "tls: empty address; expected HOST:PORT or [V6]:PORT");
    if (address[0] == '[') {
        const char *end = strchr(address, ']');
        if (!end || end[1] != ':' || (size_t)(end - address - 1) >= sizeof(host))
            return core->error(core, err, PZ_EINVAL, "tls: address \"%s\": expected [V6ADDR]:PORT", address);
        memcpy(host, address + 1, (size_t)(end - address - 1));
        host[end - address - 1] = '\0';
        port_s = end + 2;
    } else {
        const char *colon = strrchr(address, ':');
        if (!colon || strchr(address, ':') != colon || (size_t)(colon - address) >= sizeof(host))
            return core->error(core, err, PZ_EINVAL,
                               "tls: address \"%s\": expected IPV4:PORT or [IPV6]:PORT (numeric, no names)",
                               address);
        memcpy(host, address, (size_t)(colon - address));
        host[colon - address] = '\0';
        port_s = colon + 1;
    }
    char *endp = NULL;
    errno = 0;
    unsigned long port = strtoul(port_s, &endp, 10);
    if (!*port_s || *endp || errno || port > 65535)
        return core->error(core, err, PZ_EINVAL, "tls: address \"%s\": port must be 0..65535", address);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (!strcmp(host, "*") || !*host) {
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        s4->sin_port = htons((uint16_t)port);
        *sslen = sizeof(*s4);
    } else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *sslen = sizeof(*s4);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof(*s6);
    } else {
        return core->error(core, err, PZ_EINVAL,
                           "tls: address \"%s\": \"%s\" is not a numeric IPv4 or IPv6 address (resolve names "
                           "before dialling)",
                           address, host);
    }
    return 0;
}

void pz_tls_addr_from_sockaddr(const struct sockaddr_storage *ss, pz_addr *addr)
{
    memset(addr, 0, sizeof(*addr));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        addr->family = PZ_AF_INET;
        memcpy(addr->bytes, &s4->sin_addr, 4);
        addr->port = ntohs(s4->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            addr->family = PZ_AF_INET;
            memcpy(addr->bytes, s6->sin6_addr.s6_addr + 12, 4);
        } else {
            addr->family = PZ_AF_INET6;
            memcpy(addr->bytes, &s6->sin6_addr, 16);
        }
        addr->port = ntohs(s6->sin6_port);
    }
}

void pz_tls_addr_format(const pz_addr *addr, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (addr->family == PZ_AF_INET) {
        inet_ntop(AF_INET, addr->bytes, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, addr->port);
    } else if (addr->family == PZ_AF_INET6) {
        inet_ntop(AF_INET6, addr->bytes, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, addr->port);
    } else {
        snprintf(buf, len, "?");
    }
}

/* ------------------------------------------------------------------------ */
/* Instance state */

pz_tls_creds *pz_tls_state_creds(pz_tls_state *st)
{
    pthread_mutex_lock(&st->lock);
    pz_tls_creds *cr = st->creds;
    pz_tls_creds_ref(cr);
    pthread_mutex_unlock(&st->lock);
    return cr;
}

static int tls_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    int rc;
    *state = NULL;
    pz_tls_state *st = calloc(1, sizeof(*st));
    if (!st)
        return core->error(core, err, PZ_ENOMEM, "tls: out of memory");
    st->core = core;
    pthread_mutex_init(&st->lock, NULL);
    atomic_init(&st->pending, 0);
    atomic_init(&st->listeners, 0);
    rc = pz_tls_creds_new(core, conf, &st->creds, err);
    if (rc != 0) {
        pthread_mutex_destroy(&st->lock);
        free(st);
        return rc;
    }
    core->log(core, PZ_LOG_DEBUG, "priority %s", st->creds->priority);
    *state = st;
    return 0;
}

static void tls_destroy(void *state)
{
    pz_tls_state *st = state;
    if (!st)
        return;
    for (size_t i = 0; i < PZ_TLS_RESUME_SLOTS; i++) {
        pz_tls_resume_slot *s = &st->resume[i];
        free(s->key);
        if (s->data.data) {
            gnutls_memset(s->data.data, 0, s->data.size);
            gnutls_free(s->data.data);
        }
    }
    if (st->ticket_key)
        st->core->secure_free(st->core, st->ticket_key); /* wipes */
    pz_tls_creds_unref(st->creds);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static int tls_reload(void *state, const pz_conf *conf, pz_err *err)
{
    pz_tls_state *st = state;
    pz_tls_creds *fresh = NULL;
    int rc = pz_tls_creds_new(st->core, conf, &fresh, err);
    if (rc != 0)
        return rc;
    if (!fresh->has_cert && atomic_load(&st->listeners) > 0) {
        pz_tls_creds_unref(fresh);
        return st->core->error(st->core, err, PZ_ECONFIG,
                               "tls: cert and key are gone from the configuration, but this transport listens: "
                               "it needs them");
    }
    pthread_mutex_lock(&st->lock);
    pz_tls_creds *old = st->creds;
    st->creds = fresh;
    pthread_mutex_unlock(&st->lock);
    /* Connections started with OLD keep their reference until they close. */
    pz_tls_creds_unref(old);
    st->core->log(st->core, PZ_LOG_INFO, "credentials, CRL and profiles reloaded; established sessions kept");
    st->core->metric_add(st->core, "reloads_total", NULL, 1);
    return 0;
}

int pz_tls_ticket_key(pz_tls_state *st, const pz_tls_creds *cr, uint8_t key[PZ_TLS_TICKET_KEY_LEN])
{
    int rc = 0;
    uint64_t now = st->core->monotonic_ns(st->core);
    pthread_mutex_lock(&st->lock);
    if (!st->ticket_key) {
        st->ticket_key = st->core->secure_alloc(st->core, PZ_TLS_TICKET_KEY_LEN);
        if (!st->ticket_key) {
            rc = PZ_ENOMEM;
            goto out;
        }
        st->ticket_born_ns = 0;
    }
    if (st->ticket_born_ns == 0 || now - st->ticket_born_ns >= cr->ticket_rotation_ns) {
        gnutls_datum_t fresh = {NULL, 0};
        if (gnutls_session_ticket_key_generate(&fresh) < 0 || fresh.size != PZ_TLS_TICKET_KEY_LEN) {
            if (fresh.data) {
                gnutls_memset(fresh.data, 0, fresh.size);
                gnutls_free(fresh.data);
            }
            rc = PZ_ECRYPTO;
            goto out;
        }
        memcpy(st->ticket_key, fresh.data, PZ_TLS_TICKET_KEY_LEN);
        gnutls_memset(fresh.data, 0, fresh.size);
        gnutls_free(fresh.data);
        int first = st->ticket_born_ns == 0;
        st->ticket_born_ns = now ? now : 1;
        if (!first)
            st->core->log(st->core, PZ_LOG_INFO, "session ticket master key rotated");
    }
    memcpy(key, st->ticket_key, PZ_TLS_TICKET_KEY_LEN);
out:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Client resumption cache */

static void slot_clear(pz_tls_resume_slot *s)
{
    free(s->key);
    s->key = NULL;
    if (s->data.data) {
        gnutls_memset(s->data.data, 0, s->data.size);
        gnutls_free(s->data.data);
    }
    s->data.data = NULL;
    s->data.size = 0;
}

void pz_tls_resume_put(pz_tls_state *st, const char *key, const gnutls_datum_t *data)
{
    if (!key || !data || !data->data || data->size == 0)
        return;
    char *k = strdup(key);
    uint8_t *copy = gnutls_malloc(data->size);
    if (!k || !copy) {
        free(k);
        gnutls_free(copy);
        return;
    }
    memcpy(copy, data->data, data->size);
    uint64_t now = st->core->monotonic_ns(st->core);
    pthread_mutex_lock(&st->lock);
    pz_tls_resume_slot *victim = NULL;
    for (size_t i = 0; i < PZ_TLS_RESUME_SLOTS; i++) {
        pz_tls_resume_slot *s = &st->resume[i];
        if (s->key && !strcmp(s->key, key)) {
            victim = s;
            break;
        }
        if (!victim || (victim->key && (!s->key || s->used_ns < victim->used_ns)))
            victim = s;
    }
    slot_clear(victim);
    victim->key = k;
    victim->data.data = copy;
    victim->data.size = data->size;
    victim->used_ns = now;
    pthread_mutex_unlock(&st->lock);
}

int pz_tls_resume_get(pz_tls_state *st, const char *key, gnutls_datum_t *out)
{
    int found = 0;
    out->data = NULL;
    out->size = 0;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < PZ_TLS_RESUME_SLOTS; i++) {
        pz_tls_resume_slot *s = &st->resume[i];
        if (s->key && !strcmp(s->key, key)) {
            out->data = gnutls_malloc(s->data.size);
            if (out->data) {
                memcpy(out->data, s->data.data, s->data.size);
                out->size = s->data.size;
                s->used_ns = st->core->monotonic_ns(st->core);
                found = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&st->lock);
    return found;
}

/* ------------------------------------------------------------------------ */
/* Listeners */

static int tls_listen(void *state, const char *address, void **listener, pz_err *err)
{
    pz_tls_state *st = state;
    const pz_core *core = st->core;
    struct sockaddr_storage ss;
    unsigned sslen = 0;
    int fd = -1, rc;
    *listener = NULL;
    pz_tls_creds *cr = pz_tls_state_creds(st);
    int has_cert = cr->has_cert;
    pz_tls_creds_unref(cr);
    if (!has_cert)
        return core->error(core, err, PZ_ECONFIG,
                           "tls: cannot listen on %s without this node's certificate: set cert and key", address);
    rc = pz_tls_parse_address(core, address, &ss, &sslen, err);
    if (rc != 0)
        return rc;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return core->error(core, err, PZ_EIO, "tls: socket for %s: %s", address, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        rc = core->error(core, err, errno == EADDRINUSE || errno == EACCES ? PZ_EPERM : PZ_EIO,
                         "tls: cannot listen on %s: %s", address, strerror(errno));
        goto fail;
    }
    if (listen(fd, 1024) != 0) {
        rc = core->error(core, err, PZ_EIO, "tls: listen on %s: %s", address, strerror(errno));
        goto fail;
    }
    pz_tls_listener *l = calloc(1, sizeof(*l));
    if (!l) {
        rc = core->error(core, err, PZ_ENOMEM, "tls: out of memory");
        goto fail;
    }
    l->st = st;
    l->fd = fd;
    atomic_fetch_add(&st->listeners, 1);
    *listener = l;
    return 0;
fail:
    close(fd);
    return rc;
}

static int tls_listener_fd(void *listener)
{
    return ((pz_tls_listener *)listener)->fd;
}

static int tls_accept(void *listener, void **conn, pz_addr *remote, pz_err *err)
{
    pz_tls_listener *l = listener;
    pz_tls_state *st = l->st;
    const pz_core *core = st->core;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    int fd;
    *conn = NULL;
    memset(remote, 0, sizeof(*remote));
    do
        fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)
            return PZ_EAGAIN;
        return core->error(core, err, PZ_EIO, "tls: accept: %s", strerror(errno));
    }
    pz_tls_addr_from_sockaddr(&ss, remote);

    /* The pending-handshake cap is asked before any crypto. */
    pthread_mutex_lock(&st->lock);
    int64_t cap = st->creds->max_pending;
    pthread_mutex_unlock(&st->lock);
    long pending = atomic_fetch_add(&st->pending, 1);
    if (pending >= cap) {
        atomic_fetch_sub(&st->pending, 1);
        close(fd);
        char a[64];
        pz_tls_addr_format(remote, a, sizeof(a));
        core->metric_add(core, "handshakes_refused_total", "pending-cap", 1);
        return core->error(core, err, PZ_EREFUSED,
                           "tls: %s: %lld handshakes already pending (max_pending_handshakes); closed before "
                           "any crypto",
                           a, (long long)cap);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = pz_tls_conn_accepted(st, fd, remote, conn, err);
    if (rc != 0) {
        atomic_fetch_sub(&st->pending, 1);
        close(fd);
    }
    return rc;
}

static void tls_listener_close(void *listener)
{
    pz_tls_listener *l = listener;
    if (!l)
        return;
    atomic_fetch_sub(&l->st->listeners, 1);
    close(l->fd);
    free(l);
}

/* ------------------------------------------------------------------------ */
/* Descriptor */

static const pz_transport_provider tls_provider = {
    .struct_size = sizeof(pz_transport_provider),
    .create = tls_create,
    .destroy = tls_destroy,
    .listen = tls_listen,
    .listener_fd = tls_listener_fd,
    .accept = tls_accept,
    .listener_close = tls_listener_close,
    .connect = pz_tls_connect,
    .handshake = pz_tls_handshake,
    .conn_fd = pz_tls_conn_fd,
    .conn_events = pz_tls_conn_events,
    .read = pz_tls_read,
    .write = pz_tls_write,
    .close = pz_tls_close,
    .peer_credentials = pz_tls_peer_credentials,
    .channel_binding = pz_tls_channel_binding,
    .reload = tls_reload,
};

static const pz_conf_key tls_schema[] = {
    {"cert", PZ_CONF_STRING, "", "this node's certificate (PEM or DER), e.g. node.crt; needed to listen"},
    {"key", PZ_CONF_STRING, "", "its private key (mode 0600); with cert"},
    {"ca", PZ_CONF_STRING, NULL, "trusted CA certificate file, or a list of files (optional with verify: auth-chain)"},
    {"verify", PZ_CONF_STRING, "ca", "ca: validate peer chains against ca; auth-chain: leave chains ca does not "
                                     "accept to the auth chain (key-pin), flagged not CA-validated"},
    {"crl", PZ_CONF_STRING, "", "CRL file signed by a trusted CA, or a list of files"},
    {"min_rsa_bits", PZ_CONF_INT, "2048", "smallest RSA key accepted from peers (2048 or more)"},
    {"min_ecdsa_bits", PZ_CONF_INT, "384", "smallest ECDSA key accepted from peers (384 or more)"},
    {"handshake_timeout", PZ_CONF_DURATION, "10s", "deadline for a TLS handshake"},
    {"max_pending_handshakes", PZ_CONF_INT, "256", "accepted connections still handshaking; more are closed"},
    {"session_tickets", PZ_CONF_BOOL, "true", "issue and accept session tickets (resumption)"},
    {"ticket_lifetime", PZ_CONF_DURATION, "6h", "ticket validity; GnuTLS derives a new ticket key every 3x this"},
    {"ticket_key_rotation", PZ_CONF_DURATION, "24h", "the ticket master key is replaced this often"},
    {"require_extended_master_secret", PZ_CONF_BOOL, "true", "refuse TLS 1.2 peers without RFC 7627"},
    {"verified_chain_cache", PZ_CONF_BOOL, "true", "remember chains certval accepted until reload or expiry"},
    {"profiles", PZ_CONF_MAP, NULL, "TLS profiles by node type: default, <type>"},
    {"profiles.<type>.min_version", PZ_CONF_STRING, "tls1.2", "tls1.2 or tls1.3"},
    {"profiles.<type>.cipher_suites", PZ_CONF_LIST, "(see docs)", "IANA or OpenSSL suite names, ECDHE+AEAD"},
    {"profiles.<type>.client_auth", PZ_CONF_STRING, "required", "required, optional or none"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor tls_descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "tls",
    .version = PACKAGE_VERSION,
    .description = "TLS 1.3/1.2 over TCP (GnuTLS): mutual certificates, profiles by node type, tickets",
    .kind = PZ_KIND_TRANSPORT,
    .provider = &tls_provider,
    .init = NULL,
    .fini = NULL,
    .config_schema = tls_schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &tls_descriptor;
}
