/* plugins/unix/unix.c — the `unix` transport: a Unix domain stream socket
 * for local clients (the node process, `prozsec` admin commands). The
 * kernel vouches for the peer: SO_PEERCRED gives uid, gid and pid, handed
 * to the auth chain as pz_auth_credentials. No handshake, no channel
 * binding. See docs/plugins/unix.md.
 *
 * Configuration (the transport's map; every key optional):
 *   path:  socket path used when listen() is given an empty address
 *   mode:  "0660" — permissions of the socket node (octal)
 *   owner: user name or uid the node is chown()ed to
 *   group: group name or gid
 *
 * The socket is bound inside a fresh 0700 directory next to the path, given
 * its mode and owner there, and then renamed into place, so it is never
 * reachable with other permissions. An existing node at the path is
 * replaced only when it is a socket nobody listens on (connect() is
 * refused); anything else is left alone and listen() fails.
 *
 * Thread safety: as transport.h; the instance state is read-only after
 * create/reload, which the core does not run concurrently with listen().
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <prozsec/transport.h>

typedef struct unix_state {
    const pz_core *core;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    unsigned mode;
    int set_owner;
    uid_t uid;
    int set_group;
    gid_t gid;
} unix_state;

typedef struct unix_listener {
    unix_state *st;
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev; /* identity of the node we created, so close removes only it */
    ino_t ino;
} unix_listener;

typedef struct unix_conn {
    const pz_core *core;
    int fd;
    int server;
    int connecting;
    int open;
    int events;
    int has_cred;
    struct ucred cred;
    pz_addr remote;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} unix_conn;

/* ------------------------------------------------------------------------ */
/* Configuration */

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

static int bad(const pz_core *core, const pz_conf *conf, const char *key, pz_err *err, const char *msg,
               const char *value)
{
    const pz_conf *node = child(core, conf, key);
    return core->conf_error(node ? node : conf, err, "\"%s\": %s", value, msg);
}

static int parse_id(const char *s, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v > (unsigned long)INT_MAX)
        return -1;
    *out = v;
    return 0;
}

static int read_conf(const pz_core *core, const pz_conf *conf, unix_state *st, pz_err *err)
{
    const char *path = NULL, *mode = NULL, *owner = NULL, *group = NULL;
    int rc;
    st->mode = 0660;
    if (!conf)
        return 0;
    if ((rc = core->conf_string(conf, "path", NULL, &path, err)) != 0 ||
        (rc = core->conf_string(conf, "mode", NULL, &mode, err)) != 0 ||
        (rc = core->conf_string(conf, "owner", NULL, &owner, err)) != 0 ||
        (rc = core->conf_string(conf, "group", NULL, &group, err)) != 0)
        return rc;
    if (path) {
        if (!*path || path[0] != '/')
            return bad(core, conf, "path", err, "expected an absolute socket path", path);
        if (strlen(path) >= sizeof(st->path))
            return bad(core, conf, "path", err, "socket path too long (at most 107 bytes)", path);
        snprintf(st->path, sizeof(st->path), "%s", path);
    }
    if (mode) {
        char *end = NULL;
        errno = 0;
        unsigned long m = strtoul(mode, &end, 8);
        if (!*mode || *end || errno || m > 0777)
            return bad(core, conf, "mode", err, "expected octal permissions such as \"0660\"", mode);
        if ((m & 0600) != 0600)
            return bad(core, conf, "mode", err, "the owner needs read and write (0600 at least)", mode);
        st->mode = (unsigned)m;
        if (m & 0002)
            core->log(core, PZ_LOG_WARNING, "socket mode %04lo lets every local user connect", m);
    }
    if (owner) {
        unsigned long id;
        struct passwd *pw = getpwnam(owner);
        if (pw)
            st->uid = pw->pw_uid;
        else if (parse_id(owner, &id) == 0)
            st->uid = (uid_t)id;
        else
            return bad(core, conf, "owner", err, "no such user", owner);
        st->set_owner = 1;
    }
    if (group) {
        unsigned long id;
        struct group *gr = getgrnam(group);
        if (gr)
            st->gid = gr->gr_gid;
        else if (parse_id(group, &id) == 0)
            st->gid = (gid_t)id;
        else
            return bad(core, conf, "group", err, "no such group", group);
        st->set_group = 1;
    }
    return 0;
}

static int unix_create(const pz_core *core, const pz_conf *conf, void **state, pz_err *err)
{
    *state = NULL;
    unix_state *st = calloc(1, sizeof(*st));
    if (!st)
        return core->error(core, err, PZ_ENOMEM, "unix: out of memory");
    st->core = core;
    int rc = read_conf(core, conf, st, err);
    if (rc != 0) {
        free(st);
        return rc;
    }
    *state = st;
    return 0;
}

static void unix_destroy(void *state)
{
    free(state);
}

static int unix_reload(void *state, const pz_conf *conf, pz_err *err)
{
    unix_state *st = state;
    unix_state fresh = {.core = st->core};
    int rc = read_conf(st->core, conf, &fresh, err);
    if (rc != 0)
        return rc;
    *st = fresh; /* applies to listeners opened from now on */
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Listening */

static int fill_sun(const pz_core *core, const char *path, struct sockaddr_un *sun, pz_err *err)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (!path || !*path)
        return core->error(core, err, PZ_EINVAL, "unix: no socket path (give one, or set path in configuration)");
    if (strlen(path) >= sizeof(sun->sun_path))
        return core->error(core, err, PZ_EINVAL, "unix: socket path %s too long (at most %zu bytes)", path,
                           sizeof(sun->sun_path) - 1);
    memcpy(sun->sun_path, path, strlen(path));
    return 0;
}

/* Make room for a socket at PATH: nothing there, or a stale socket (no
 * listener) which is left for rename() to replace. */
static int check_existing(const pz_core *core, const char *path, pz_err *err)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        return core->error(core, err, PZ_EIO, "unix: %s: %s", path, strerror(errno));
    }
    if (!S_ISSOCK(sb.st_mode))
        return core->error(core, err, PZ_EEXIST, "unix: %s exists and is not a socket; not replacing it", path);
    struct sockaddr_un sun;
    if (fill_sun(core, path, &sun, err) != 0)
        return PZ_EINVAL;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return core->error(core, err, PZ_EIO, "unix: socket: %s", strerror(errno));
    int r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    int e = errno;
    close(fd);
    if (r == 0)
        return core->error(core, err, PZ_EEXIST, "unix: %s is in use by a running listener", path);
    if (e != ECONNREFUSED)
        return core->error(core, err, PZ_EIO, "unix: cannot tell whether %s is stale: %s", path, strerror(e));
    core->log(core, PZ_LOG_INFO, "replacing stale socket %s", path);
    return 0;
}

static int unix_listen(void *state, const char *address, void **listener, pz_err *err)
{
    unix_state *st = state;
    const pz_core *core = st->core;
    const char *path = address && *address ? address : st->path;
    char dirbuf[PATH_MAX], tmpdir[PATH_MAX], tmpsock[PATH_MAX];
    struct sockaddr_un sun;
    int fd = -1, rc = 0;
    tmpdir[0] = '\0';
    *listener = NULL;
    if ((rc = fill_sun(core, path, &sun, err)) != 0)
        return rc;
    if (path[0] != '/')
        return core->error(core, err, PZ_EINVAL, "unix: socket path %s must be absolute", path);
    snprintf(dirbuf, sizeof(dirbuf), "%s", path);
    const char *dir = dirname(dirbuf);
    struct stat db;
    if (stat(dir, &db) != 0 || !S_ISDIR(db.st_mode))
        return core->error(core, err, PZ_ENOENT, "unix: directory %s of socket %s does not exist", dir, path);
    if ((db.st_mode & S_IWOTH) && !(db.st_mode & S_ISVTX))
        return core->error(core, err, PZ_EPERM,
                           "unix: directory %s is writable by everyone without the sticky bit; choose a "
                           "private directory for %s",
                           dir, path);
    if ((rc = check_existing(core, path, err)) != 0)
        return rc;

    /* Bind in a private directory, set mode and owner, then move into place. */
    if (snprintf(tmpdir, sizeof(tmpdir), "%s/.pzsock-XXXXXX", dir) >= (int)sizeof(tmpdir) || !mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        return core->error(core, err, PZ_EIO, "unix: cannot create a temporary directory in %s: %s", dir,
                           strerror(errno));
    }
    if (snprintf(tmpsock, sizeof(tmpsock), "%s/s", tmpdir) >= (int)sizeof(sun.sun_path)) {
        rc = core->error(core, err, PZ_EINVAL, "unix: socket path %s too long for the temporary name", path);
        goto fail;
    }
    struct sockaddr_un tsun;
    if ((rc = fill_sun(core, tmpsock, &tsun, err)) != 0)
        goto fail;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = core->error(core, err, PZ_EIO, "unix: socket: %s", strerror(errno));
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&tsun, sizeof(tsun)) != 0 || listen(fd, 128) != 0) {
        rc = core->error(core, err, PZ_EIO, "unix: cannot listen on %s: %s", path, strerror(errno));
        goto fail;
    }
    if (chmod(tmpsock, st->mode) != 0) {
        rc = core->error(core, err, PZ_EIO, "unix: chmod %s: %s", path, strerror(errno));
        goto fail;
    }
    if ((st->set_owner || st->set_group) &&
        chown(tmpsock, st->set_owner ? st->uid : (uid_t)-1, st->set_group ? st->gid : (gid_t)-1) != 0) {
        rc = core->error(core, err, PZ_EPERM, "unix: cannot give %s to owner/group from configuration: %s", path,
                         strerror(errno));
        goto fail;
    }
    if (rename(tmpsock, path) != 0) {
        rc = core->error(core, err, PZ_EIO, "unix: cannot move socket to %s: %s", path, strerror(errno));
        goto fail;
    }
    rmdir(tmpdir);
    unix_listener *l = calloc(1, sizeof(*l));
    if (!l) {
        unlink(path);
        close(fd);
        return core->error(core, err, PZ_ENOMEM, "unix: out of memory");
    }
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        l->dev = sb.st_dev;
        l->ino = sb.st_ino;
    }
    l->st = st;
    l->fd = fd;
    snprintf(l->path, sizeof(l->path), "%s", path);
    *listener = l;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmpsock);
    if (tmpdir[0])
        rmdir(tmpdir);
    return rc;
}

static int unix_listener_fd(void *listener)
{
    return ((unix_listener *)listener)->fd;
}

static void unix_listener_close(void *listener)
{
    unix_listener *l = listener;
    if (!l)
        return;
    struct stat sb;
    /* Remove the node only if it is still the one we created. */
    if (lstat(l->path, &sb) == 0 && S_ISSOCK(sb.st_mode) && sb.st_dev == l->dev && sb.st_ino == l->ino)
        unlink(l->path);
    close(l->fd);
    free(l);
}

static int peer_cred(unix_conn *c)
{
    socklen_t len = sizeof(c->cred);
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) != 0 || len != sizeof(c->cred))
        return -1;
    c->has_cred = 1;
    return 0;
}

static int unix_accept(void *listener, void **conn, pz_addr *remote, pz_err *err)
{
    unix_listener *l = listener;
    const pz_core *core = l->st->core;
    int fd;
    *conn = NULL;
    memset(remote, 0, sizeof(*remote));
    do
        fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)
            return PZ_EAGAIN;
        return core->error(core, err, PZ_EIO, "unix: accept on %s: %s", l->path, strerror(errno));
    }
    unix_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return core->error(core, err, PZ_ENOMEM, "unix: out of memory");
    }
    c->core = core;
    c->fd = fd;
    c->server = 1;
    c->events = PZ_IO_READ;
    c->remote.family = PZ_AF_UNIX;
    snprintf(c->path, sizeof(c->path), "%s", l->path);
    if (peer_cred(c) != 0) {
        int e = errno;
        close(fd);
        free(c);
        return core->error(core, err, PZ_EIO, "unix: SO_PEERCRED on %s: %s", l->path, strerror(e));
    }
    *remote = c->remote;
    *conn = c;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Connections */

static int unix_connect(void *state, const char *address, const char *expected_node_id, void **conn, pz_err *err)
{
    unix_state *st = state;
    const pz_core *core = st->core;
    const char *path = address && *address ? address : st->path;
    struct sockaddr_un sun;
    int rc;
    (void)expected_node_id; /* the kernel names the peer process, not a node */
    *conn = NULL;
    if ((rc = fill_sun(core, path, &sun, err)) != 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return core->error(core, err, PZ_EIO, "unix: socket: %s", strerror(errno));
    int connecting = 0;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        if (errno == EINPROGRESS || errno == EAGAIN) {
            connecting = 1;
        } else {
            rc = core->error(core, err, errno == ENOENT ? PZ_ENOENT : errno == EACCES ? PZ_EPERM : PZ_EIO,
                             "unix: connect to %s: %s", path, strerror(errno));
            close(fd);
            return rc;
        }
    }
    unix_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return core->error(core, err, PZ_ENOMEM, "unix: out of memory");
    }
    c->core = core;
    c->fd = fd;
    c->connecting = connecting;
    c->events = PZ_IO_WRITE;
    c->remote.family = PZ_AF_UNIX;
    snprintf(c->path, sizeof(c->path), "%s", path);
    *conn = c;
    return 0;
}

static int unix_handshake(void *conn, pz_err *err)
{
    unix_conn *c = conn;
    if (c->open)
        return 0;
    if (c->connecting) {
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        int n = poll(&p, 1, 0);
        if (n == 0) {
            c->events = PZ_IO_WRITE;
            return PZ_EAGAIN;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (n < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr)
            return c->core->error(c->core, err, PZ_EIO, "unix: connect to %s: %s", c->path,
                                  strerror(soerr ? soerr : errno));
        c->connecting = 0;
    }
    if (!c->has_cred && peer_cred(c) != 0)
        return c->core->error(c->core, err, PZ_EIO, "unix: SO_PEERCRED on %s: %s", c->path, strerror(errno));
    c->open = 1;
    c->events = PZ_IO_READ;
    return 0;
}

static int unix_conn_fd(void *conn)
{
    return ((unix_conn *)conn)->fd;
}

static int unix_conn_events(void *conn)
{
    return ((unix_conn *)conn)->events;
}

static int unix_read(void *conn, void *buf, size_t len, size_t *nread, pz_err *err)
{
    unix_conn *c = conn;
    *nread = 0;
    if (!c->open)
        return c->core->error(c->core, err, PZ_EINVAL, "unix: connection on %s is not established", c->path);
    if (len == 0)
        return c->core->error(c->core, err, PZ_EINVAL, "unix: read of 0 bytes");
    ssize_t n;
    do
        n = recv(c->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        *nread = (size_t)n;
        return 0;
    }
    if (n == 0)
        return PZ_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->events = PZ_IO_READ;
        return PZ_EAGAIN;
    }
    return c->core->error(c->core, err, PZ_EIO, "unix: read on %s: %s", c->path, strerror(errno));
}

static int unix_write(void *conn, const void *buf, size_t len, size_t *nwritten, pz_err *err)
{
    unix_conn *c = conn;
    *nwritten = 0;
    if (!c->open)
        return c->core->error(c->core, err, PZ_EINVAL, "unix: connection on %s is not established", c->path);
    if (len == 0 || !buf)
        return c->core->error(c->core, err, PZ_EINVAL, "unix: write of 0 bytes");
    ssize_t n;
    do
        n = send(c->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        *nwritten = (size_t)n;
        return 0;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c->events = PZ_IO_WRITE;
        return PZ_EAGAIN;
    }
    return c->core->error(c->core, err, errno == EPIPE ? PZ_ECLOSED : PZ_EIO, "unix: write on %s: %s", c->path,
                          strerror(errno));
}

static void unix_close(void *conn)
{
    unix_conn *c = conn;
    if (!c)
        return;
    close(c->fd);
    free(c);
}

static int unix_peer_credentials(void *conn, pz_auth_credentials *cred)
{
    unix_conn *c = conn;
    if (!c || !cred || !c->open || !c->has_cred)
        return PZ_EINVAL;
    memset(cred, 0, sizeof(*cred));
    cred->struct_size = sizeof(*cred);
    cred->transport = "unix";
    cred->addr = &c->remote;
    cred->has_unix_cred = 1;
    cred->uid = (uint32_t)c->cred.uid;
    cred->gid = (uint32_t)c->cred.gid;
    cred->pid = (int32_t)c->cred.pid;
    return 0;
}

static int unix_channel_binding(void *conn, const char *label, uint8_t *out, size_t len, pz_err *err)
{
    unix_conn *c = conn;
    (void)label;
    (void)out;
    (void)len;
    return c->core->error(c->core, err, PZ_ENOTSUP, "unix: a local socket has no channel binding");
}

/* ------------------------------------------------------------------------ */

static const pz_transport_provider unix_provider = {
    .struct_size = sizeof(pz_transport_provider),
    .create = unix_create,
    .destroy = unix_destroy,
    .listen = unix_listen,
    .listener_fd = unix_listener_fd,
    .accept = unix_accept,
    .listener_close = unix_listener_close,
    .connect = unix_connect,
    .handshake = unix_handshake,
    .conn_fd = unix_conn_fd,
    .conn_events = unix_conn_events,
    .read = unix_read,
    .write = unix_write,
    .close = unix_close,
    .peer_credentials = unix_peer_credentials,
    .channel_binding = unix_channel_binding,
    .reload = unix_reload,
};

static const pz_conf_key unix_schema[] = {
    {"path", PZ_CONF_STRING, "", "socket path when listen/connect get an empty address"},
    {"mode", PZ_CONF_STRING, "0660", "permissions of the socket (octal; owner needs rw)"},
    {"owner", PZ_CONF_STRING, "", "user name or uid owning the socket"},
    {"group", PZ_CONF_STRING, "", "group name or gid of the socket"},
    {NULL, 0, NULL, NULL},
};

static const pz_plugin_descriptor unix_descriptor = {
    PZ_PLUGIN_DESCRIPTOR_INIT,
    .name = "unix",
    .version = PACKAGE_VERSION,
    .description = "Unix domain socket for local clients; SO_PEERCRED uid/gid/pid as credentials",
    .kind = PZ_KIND_TRANSPORT,
    .provider = &unix_provider,
    .config_schema = unix_schema,
};

PZ_PLUGIN_EXPORT const pz_plugin_descriptor *pz_plugin_entry_v1(void)
{
    return &unix_descriptor;
}
