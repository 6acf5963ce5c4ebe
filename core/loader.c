/* core/loader.c — finds, checks and loads provider plugins with libltdl,
 * and creates provider instances. See loader.h and docs/internals/loader.md.
 *
 * Every lt_* call (and the RTLD_NOW probe's dlopen/dlerror) runs under one
 * process-wide mutex, which also guards the registry of loaded plugins. A
 * whole load — checks, duplicate test, init(), registration — runs under it,
 * so two threads loading the same file get the same plugin and two files
 * cannot both claim one name. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_DLFCN_H
#include <dlfcn.h>
#endif

#include <glib.h>
#include <ltdl.h>

#include <prozsec/auth.h>
#include <prozsec/connlimit.h>
#include <prozsec/plugin.h>
#include <prozsec/ratelimit.h>
#include <prozsec/transport.h>

#include "conf.h"
#include "coresvc.h"
#include "err.h"
#include "loader.h"

/* Size of a struct up to and including MEMBER: the size an ABI 1.0 table
 * has when MEMBER is its last 1.0 field. */
#define SIZE_THROUGH(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

#define DESC_SIZE_1_0 SIZE_THROUGH(pz_plugin_descriptor, config_schema)

struct pz_loader {
    char **path; /* NULL-terminated, absolute directories */
    size_t n_path;
    unsigned flags; /* PZ_LOADER_* */
};

struct pz_plugin {
    char *path; /* absolute */
    dev_t dev;
    ino_t ino;
    lt_dlhandle handle;
    const pz_plugin_descriptor *desc;
    pz_core *core; /* given to init(); lives as long as the plugin */
    int inited;
};

struct pz_provider {
    const pz_plugin *plugin;
    char *name;
    pz_core *core;
    const void *table;
    void *state;
    void (*destroy)(void *state);
};

/* The one lock: libltdl's error string and handle list are process-global. */
static GMutex lt_lock;
static int lt_ready;
static lt_dladvise lt_advice;
/* Loaded plugins, in load order. Never shrinks: plugins are never unloaded. */
static pz_plugin **loaded;
static size_t n_loaded, cap_loaded;
static int fini_registered;

/* ------------------------------------------------------------------------ */
/* Kind tables: 1.0 sizes and mandatory functions (per each kind's header). */

typedef struct fn_field {
    const char *name;
    size_t offset;
} fn_field;

typedef struct kind_spec {
    pz_plugin_kind kind;
    const char *name;
    size_t size_1_0;
    const fn_field *mandatory;
    size_t n_mandatory;
} kind_spec;

#define FN(type, f) {#f, offsetof(type, f)}

static const fn_field auth_fns[] = {
    FN(pz_auth_provider, create),
    FN(pz_auth_provider, destroy),
    FN(pz_auth_provider, authenticate_peer),
    FN(pz_auth_provider, generate_credentials),
    FN(pz_auth_provider, supported_methods),
};

static const fn_field ratelimit_fns[] = {
    FN(pz_ratelimit_provider, create),
    FN(pz_ratelimit_provider, destroy),
    FN(pz_ratelimit_provider, allow),
    FN(pz_ratelimit_provider, update_config),
    FN(pz_ratelimit_provider, get_usage),
};

static const fn_field connlimit_fns[] = {
    FN(pz_connlimit_provider, create),
    FN(pz_connlimit_provider, destroy),
    FN(pz_connlimit_provider, admit_address),
    FN(pz_connlimit_provider, admit_identity),
    FN(pz_connlimit_provider, release),
    FN(pz_connlimit_provider, on_behavior),
};

/* transport.h marks only reload optional; listener_close, conn_fd and
 * conn_events carry no note but the core cannot drive a transport without
 * them, so they count as mandatory. */
static const fn_field transport_fns[] = {
    FN(pz_transport_provider, create),
    FN(pz_transport_provider, destroy),
    FN(pz_transport_provider, listen),
    FN(pz_transport_provider, listener_fd),
    FN(pz_transport_provider, accept),
    FN(pz_transport_provider, listener_close),
    FN(pz_transport_provider, connect),
    FN(pz_transport_provider, handshake),
    FN(pz_transport_provider, conn_fd),
    FN(pz_transport_provider, conn_events),
    FN(pz_transport_provider, read),
    FN(pz_transport_provider, write),
    FN(pz_transport_provider, close),
    FN(pz_transport_provider, peer_credentials),
    FN(pz_transport_provider, channel_binding),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const kind_spec kinds[] = {
    {PZ_KIND_AUTH, "auth", SIZE_THROUGH(pz_auth_provider, reload), auth_fns, N(auth_fns)},
    {PZ_KIND_RATELIMIT, "ratelimit", SIZE_THROUGH(pz_ratelimit_provider, get_usage), ratelimit_fns,
     N(ratelimit_fns)},
    {PZ_KIND_CONNLIMIT, "connlimit", SIZE_THROUGH(pz_connlimit_provider, flush), connlimit_fns,
     N(connlimit_fns)},
    {PZ_KIND_TRANSPORT, "transport", SIZE_THROUGH(pz_transport_provider, reload), transport_fns,
     N(transport_fns)},
};

static const kind_spec *kind_find(pz_plugin_kind kind)
{
    for (size_t i = 0; i < N(kinds); i++)
        if (kinds[i].kind == kind)
            return &kinds[i];
    return NULL;
}

const char *pz_plugin_kind_name(pz_plugin_kind kind)
{
    const kind_spec *k = kind_find(kind);
    return k ? k->name : "?";
}

static int fn_is_null(const void *table, size_t offset)
{
    void (*fp)(void);
    memcpy(&fp, (const char *)table + offset, sizeof(fp));
    return fp == NULL;
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static int name_valid(const char *name)
{
    size_t len = strnlen(name, PZ_PLUGIN_NAME_MAX + 1);
    if (len == 0 || len > PZ_PLUGIN_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
        if (!ok)
            return 0;
    }
    return 1;
}

/* A printable copy of untrusted text (at most 40 bytes shown) for messages. */
static void printable(char *buf, size_t size, const char *text)
{
    size_t j = 0;
    for (size_t i = 0; text[i] && j + 4 < size; i++) {
        if (i == 40) {
            memcpy(buf + j, "...", 3);
            j += 3;
            break;
        }
        unsigned char c = (unsigned char)text[i];
        buf[j++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    buf[j] = '\0';
}

/* A malloc'd absolute version of PATH (relative to the current directory). */
static char *absolute(const char *path)
{
    char *abs = NULL;
    if (path[0] == '/')
        return strdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return NULL;
    if (asprintf(&abs, "%s/%s", cwd, path) < 0)
        abs = NULL;
    free(cwd);
    return abs;
}

static const char *file_type(const char *path, mode_t mode)
{
    struct stat lst;
    int link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
    if (S_ISDIR(mode))
        return link ? "a symbolic link to a directory" : "a directory";
    if (S_ISFIFO(mode))
        return "a fifo";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device";
    return "not a regular file";
}

/* ------------------------------------------------------------------------ */
/* The registry (all under lt_lock) */

static void run_finis(void)
{
    /* At exit, in reverse load order. No lock: a thread still loading at
     * exit is a bug of its own, and fini must not call the loader. */
    for (size_t i = n_loaded; i-- > 0;)
        if (loaded[i]->inited && loaded[i]->desc->fini)
            loaded[i]->desc->fini();
}

static int lt_setup(pz_err *err)
{
    if (lt_ready)
        return 0;
    if (lt_dlinit() != 0) {
        const char *e = lt_dlerror();
        return pz_err_set(err, PZ_EINTERNAL, "cannot initialise libltdl: %s", e ? e : "unknown error");
    }
    /* Local symbols (plugins cannot see each other), resident (never
     * unloaded), and no extension guessing: we always pass absolute paths
     * of .so files. */
    if (lt_dladvise_init(&lt_advice) || lt_dladvise_local(&lt_advice) || lt_dladvise_resident(&lt_advice)) {
        const char *e = lt_dlerror();
        return pz_err_set(err, PZ_ENOMEM, "cannot set up libltdl: %s", e ? e : "unknown error");
    }
    lt_ready = 1;
    return 0;
}

static pz_plugin *find_by_inode(dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < n_loaded; i++)
        if (loaded[i]->dev == dev && loaded[i]->ino == ino)
            return loaded[i];
    return NULL;
}

static pz_plugin *find_by_name(const char *name)
{
    for (size_t i = 0; i < n_loaded; i++)
        if (strcmp(loaded[i]->desc->name, name) == 0)
            return loaded[i];
    return NULL;
}

/* Make room for one more plugin. */
static int registry_reserve(void)
{
    if (n_loaded == cap_loaded) {
        size_t cap = cap_loaded ? cap_loaded * 2 : 16;
        pz_plugin **v = realloc(loaded, cap * sizeof(*v));
        if (!v)
            return PZ_ENOMEM;
        loaded = v;
        cap_loaded = cap;
    }
    return 0;
}

static void plugin_free(pz_plugin *p)
{
    if (!p)
        return;
    pz_core_free(p->core);
    free(p->path);
    free(p);
}

/* ------------------------------------------------------------------------ */
/* Checks */

/* Check DESC as pz_loader_load_file documents; sets *WHY and ERR. */
static int check_desc(const char *path, const pz_plugin_descriptor *desc, pz_load_refusal *why, pz_err *err)
{
    char shown[64];
    int rc = 0;
    *why = PZ_REFUSE_MALFORMED;
    if (!desc) {
        rc = pz_err_set(err, PZ_EABI, "%s: malformed descriptor: %s returned NULL", path, PZ_PLUGIN_ENTRY_SYMBOL);
        goto out;
    }
    /* The first three fields are the same in every ABI version. */
    if (desc->abi_major != PZ_ABI_MAJOR) {
        *why = PZ_REFUSE_ABI_MAJOR;
        rc = pz_err_set(err, PZ_EABI, "%s: built for ABI %u.x, this core is %d.%d", path,
                        (unsigned)desc->abi_major, PZ_ABI_MAJOR, PZ_ABI_MINOR);
        goto out;
    }
    if (desc->abi_minor > PZ_ABI_MINOR) {
        *why = PZ_REFUSE_ABI_MINOR;
        rc = pz_err_set(err, PZ_EABI,
                        "%s: built for ABI %u.%u, newer than this core's %d.%d: upgrade prozsec or rebuild "
                        "the plugin against these headers",
                        path, (unsigned)desc->abi_major, (unsigned)desc->abi_minor, PZ_ABI_MAJOR, PZ_ABI_MINOR);
        goto out;
    }
    if (desc->struct_size < DESC_SIZE_1_0) {
        rc = pz_err_set(err, PZ_EABI,
                        "%s: malformed descriptor: struct_size %u is smaller than the ABI 1.0 descriptor "
                        "(%zu bytes)",
                        path, (unsigned)desc->struct_size, (size_t)DESC_SIZE_1_0);
        goto out;
    }
    if (!desc->name) {
        rc = pz_err_set(err, PZ_EABI, "%s: malformed descriptor: no provider name", path);
        goto out;
    }
    if (!name_valid(desc->name)) {
        printable(shown, sizeof(shown), desc->name);
        rc = pz_err_set(err, PZ_EABI,
                        "%s: malformed descriptor: provider name \"%s\" is invalid: expected "
                        "[a-z0-9][a-z0-9-]{0,31}",
                        path, shown);
        goto out;
    }
    if (!desc->version || !desc->description) {
        rc = pz_err_set(err, PZ_EABI, "%s: malformed descriptor: no %s", path,
                        !desc->version ? "version" : "description");
        goto out;
    }
    const kind_spec *k = kind_find(desc->kind);
    if (!k) {
        rc = pz_err_set(err, PZ_EABI, "%s: malformed descriptor: unknown provider kind %d", path, (int)desc->kind);
        goto out;
    }
    if (!desc->provider) {
        rc = pz_err_set(err, PZ_EABI, "%s: malformed descriptor: no %s provider table", path, k->name);
        goto out;
    }
    uint32_t table_size;
    memcpy(&table_size, desc->provider, sizeof(table_size));
    if (table_size < k->size_1_0) {
        rc = pz_err_set(err, PZ_EABI,
                        "%s: malformed descriptor: %s table struct_size %u is smaller than its ABI 1.0 size "
                        "(%zu bytes)",
                        path, k->name, (unsigned)table_size, k->size_1_0);
        goto out;
    }
    for (size_t i = 0; i < k->n_mandatory; i++) {
        if (fn_is_null(desc->provider, k->mandatory[i].offset)) {
            rc = pz_err_set(err, PZ_EABI, "%s: malformed descriptor: mandatory function %s.%s is NULL", path,
                            k->name, k->mandatory[i].name);
            goto out;
        }
    }
    *why = PZ_REFUSE_NONE;
out:
    return rc;
}

int pz__loader_check_desc(const char *path, const pz_plugin_descriptor *desc, pz_load_refusal *why, pz_err *err)
{
    pz_load_refusal dummy;
    return check_desc(path ? path : "(descriptor)", desc, why ? why : &dummy, err);
}

/* Open ABS (lock held). With dlfcn, first a dlopen with RTLD_NOW: libltdl
 * binds lazily, so a plugin calling a function nobody defines would load
 * and then kill the process at the first call; RTLD_NOW refuses it here,
 * and dlerror() names the exact problem where libltdl often only says
 * "file not found". The handle stays open (plugins are never unloaded). */
static int open_plugin(const char *path, const char *abs, lt_dlhandle *out, pz_err *err)
{
#if defined(HAVE_DLFCN_H) && defined(RTLD_NOW) && defined(RTLD_LOCAL)
    (void)dlerror();
    void *now = dlopen(abs, RTLD_NOW | RTLD_LOCAL);
    if (!now) {
        const char *e = dlerror();
        size_t n = strlen(abs);
        /* dlerror() often starts with the file name, which we already give. */
        if (e && strncmp(e, abs, n) == 0 && strncmp(e + n, ": ", 2) == 0)
            e += n + 2;
        return pz_err_set(err, PZ_EIO, "%s: cannot open: %s; check its dependencies with `ldd -r %s`", path,
                          e ? e : "unknown error", abs);
    }
#endif
    lt_dlhandle h = lt_dlopenadvise(abs, lt_advice);
    if (!h) {
        const char *e = lt_dlerror();
        return pz_err_set(err, PZ_EIO, "%s: cannot open: %s; check its dependencies with `ldd %s`", path,
                          e ? e : "unknown error", abs);
    }
    *out = h;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Loading in a child first */

/* How long the child may take to load a plugin before it counts as hung. */
static int probe_timeout_ms = 10000;

void pz__loader_set_probe_timeout(int ms)
{
    probe_timeout_ms = ms > 0 ? ms : 10000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child: open ABS the way the loader will, call its entry point and its
 * init(), then say "survived" on FD. Whether the plugin is acceptable is
 * not decided here (the parent's own load gives the precise refusal); only
 * whether loading it kills or hangs the process. */
G_GNUC_NORETURN static void probe_child(int fd, const char *abs)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* a crashing plugin leaves no core file */
#if defined(HAVE_DLFCN_H) && defined(RTLD_NOW) && defined(RTLD_LOCAL)
    void *h = dlopen(abs, RTLD_NOW | RTLD_LOCAL);
    void *sym = h ? dlsym(h, PZ_PLUGIN_ENTRY_SYMBOL) : NULL;
    if (sym) {
        pz_plugin_entry_fn entry;
        memcpy(&entry, &sym, sizeof(entry));
        const pz_plugin_descriptor *desc = entry();
        pz_load_refusal why;
        pz_err e;
        pz_err_init(&e);
        if (check_desc(abs, desc, &why, &e) == 0 && desc->init) {
            pz_core *core = pz_core_new(desc->name);
            if (core)
                (void)desc->init(core, &e);
        }
    }
#endif
    ssize_t n;
    do
        n = write(fd, "k", 1);
    while (n < 0 && errno == EINTR);
    _exit(0);
}

/* Load ABS in a child process first, so a plugin whose constructor, entry
 * point or init() crashes (or never returns) is refused with a message
 * naming it instead of taking this process down. 0 when the child
 * survived; PZ_EPLUGIN-style refusal (PZ_EIO) with ERR set otherwise. */
static int probe_load(const char *path, const char *abs, pz_err *err)
{
    int fds[2];
    if (pipe(fds) != 0)
        return pz_err_set(err, PZ_EIO, "%s: cannot check it in a child process: pipe: %s", path, strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return pz_err_set(err, PZ_EIO, "%s: cannot check it in a child process: fork: %s", path, strerror(e));
    }
    if (pid == 0) {
        close(fds[0]);
        probe_child(fds[1], abs);
    }
    close(fds[1]);

    int survived = 0, timed_out = 0;
    int64_t deadline = mono_ms() + probe_timeout_ms;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            timed_out = r == 0;
            break;
        }
        char c;
        ssize_t n = read(fds[0], &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        survived = n == 1 && c == 'k';
        break;
    }
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (survived)
        return 0;
    if (timed_out)
        return pz_err_set(err, PZ_ETIMEDOUT,
                          "%s: loading it did not finish within %d ms (checked in a child process, which was "
                          "killed); this process did not load it",
                          path, probe_timeout_ms);
    if (WIFSIGNALED(status))
        return pz_err_set(err, PZ_EIO,
                          "%s: crashed while loading (signal %d, %s), checked in a child process; this process "
                          "did not load it",
                          path, WTERMSIG(status), strsignal(WTERMSIG(status)));
    return pz_err_set(err, PZ_EIO,
                      "%s: crashed while loading (the checking child process exited with status %d); this "
                      "process did not load it",
                      path, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int pz_loader_load_file(pz_loader *loader, const char *path, const pz_plugin **out, pz_load_refusal *refusal,
                        pz_err *err)
{
    int rc = 0;
    pz_load_refusal why = PZ_REFUSE_NONE;
    char *abs = NULL;
    pz_plugin *p = NULL;
    int locked = 0;
    struct stat st;

    if (out)
        *out = NULL;
    if (!loader || !path || !*path || !out) {
        rc = pz_err_set(err, PZ_EINVAL, "pz_loader_load_file: loader, path and out are required");
        goto out;
    }
    abs = absolute(path);
    if (!abs) {
        rc = pz_err_set(err, PZ_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (stat(abs, &st) != 0) {
        int e = errno;
        why = PZ_REFUSE_OPEN;
        rc = pz_err_set(err, e == ENOENT ? PZ_ENOENT : PZ_EIO, "%s: cannot open: %s", path, strerror(e));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        why = PZ_REFUSE_NOT_REGULAR;
        rc = pz_err_set(err, PZ_EINVAL, "%s: not a regular file (%s)", path, file_type(abs, st.st_mode));
        goto out;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        why = PZ_REFUSE_WRITABLE;
        rc = pz_err_set(err, PZ_EPERM,
                        "%s: writable by group or others (mode %04o): anyone who can write it can run code "
                        "in this process; run `chmod go-w %s`",
                        path, (unsigned)(st.st_mode & 07777), abs);
        goto out;
    }

    g_mutex_lock(&lt_lock);
    locked = 1;
    rc = lt_setup(err);
    if (rc)
        goto out;
    const pz_plugin *known = find_by_inode(st.st_dev, st.st_ino);
    if (known) {
        *out = known;
        goto out;
    }

    if (loader->flags & PZ_LOADER_PROBE) {
        rc = probe_load(path, abs, err);
        if (rc) {
            why = PZ_REFUSE_CRASH;
            goto out;
        }
    }
    lt_dlhandle h = NULL;
    rc = open_plugin(path, abs, &h, err);
    if (rc) {
        why = PZ_REFUSE_OPEN;
        goto out;
    }
    void *sym = lt_dlsym(h, PZ_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        (void)lt_dlerror();
        why = PZ_REFUSE_NO_ENTRY;
        rc = pz_err_set(err, PZ_EABI,
                        "%s: no entry symbol %s: not a prozsec plugin, or built without PZ_PLUGIN_EXPORT", path,
                        PZ_PLUGIN_ENTRY_SYMBOL);
        goto out;
    }
    pz_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof(entry));
    const pz_plugin_descriptor *desc = entry();
    rc = check_desc(path, desc, &why, err);
    if (rc)
        goto out;
    const pz_plugin *owner = find_by_name(desc->name);
    if (owner) {
        why = PZ_REFUSE_DUPLICATE;
        rc = pz_err_set(err, PZ_EEXIST, "%s: provider name \"%s\" is already taken by %s", path, desc->name,
                        owner->path);
        goto out;
    }

    p = calloc(1, sizeof(*p));
    if (!p || !(p->path = strdup(abs))) {
        rc = pz_err_set(err, PZ_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    p->dev = st.st_dev;
    p->ino = st.st_ino;
    p->handle = h;
    p->desc = desc;
    if (!fini_registered) {
        if (atexit(run_finis) != 0) {
            rc = pz_err_set(err, PZ_ENOMEM, "%s: cannot register plugin finalisation", path);
            goto out;
        }
        fini_registered = 1;
    }
    /* Make room first, so a plugin whose init succeeded is never dropped. */
    rc = registry_reserve();
    if (rc) {
        pz_err_set(err, rc, "%s: out of memory", path);
        goto out;
    }
    if (desc->init) {
        pz_err ierr;
        pz_err_init(&ierr);
        p->core = pz_core_new(desc->name);
        if (!p->core) {
            rc = pz_err_set(err, PZ_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        int irc = desc->init(p->core, &ierr);
        if (irc != 0) {
            why = PZ_REFUSE_INIT;
            rc = irc < 0 ? irc : PZ_EINTERNAL;
            pz_err_set(err, rc, "%s: init failed: %s", path, ierr.msg ? ierr.msg : pz_strerror(rc));
            pz_err_clear(&ierr);
            goto out;
        }
        pz_err_clear(&ierr);
        p->inited = 1;
    }
    loaded[n_loaded++] = p;
    *out = p;
    p = NULL;
out:
    if (locked)
        g_mutex_unlock(&lt_lock);
    plugin_free(p);
    free(abs);
    if (refusal)
        *refusal = why;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The loader: a search path */

static int path_add(pz_loader *l, size_t *cap, const char *dir)
{
    if (!dir || !*dir)
        return 0;
    char *abs = absolute(dir);
    if (!abs)
        return PZ_ENOMEM;
    size_t len = strlen(abs);
    while (len > 1 && abs[len - 1] == '/')
        abs[--len] = '\0';
    for (size_t i = 0; i < l->n_path; i++) {
        if (strcmp(l->path[i], abs) == 0) {
            free(abs);
            return 0;
        }
    }
    if (l->n_path + 1 >= *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        char **v = realloc(l->path, ncap * sizeof(*v));
        if (!v) {
            free(abs);
            return PZ_ENOMEM;
        }
        l->path = v;
        *cap = ncap;
    }
    l->path[l->n_path++] = abs;
    l->path[l->n_path] = NULL;
    return 0;
}

int pz_loader_new_path(const char *const *dirs, size_t n_dirs, unsigned flags, pz_loader **out, pz_err *err)
{
    int rc = 0;
    size_t cap = 0;
    char *env = NULL;
    pz_loader *l = NULL;
    if (!out) {
        rc = pz_err_set(err, PZ_EINVAL, "pz_loader_new: out is required");
        goto out;
    }
    *out = NULL;
    l = calloc(1, sizeof(*l));
    if (!l) {
        rc = PZ_ENOMEM;
        goto out;
    }
    l->flags = flags;
    cap = 8;
    l->path = calloc(cap, sizeof(*l->path));
    if (!l->path) {
        rc = PZ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; dirs && i < n_dirs && rc == 0; i++)
        rc = path_add(l, &cap, dirs[i]);
    const char *e = (flags & PZ_LOADER_NO_ENV) ? NULL : getenv("PROZSEC_PLUGIN_PATH");
    if (e && rc == 0) {
        env = strdup(e);
        if (!env) {
            rc = PZ_ENOMEM;
            goto out;
        }
        char *save = NULL;
        for (char *d = strtok_r(env, ":", &save); d && rc == 0; d = strtok_r(NULL, ":", &save))
            rc = path_add(l, &cap, d);
    }
    if (!(flags & PZ_LOADER_NO_PLUGINDIR) && rc == 0)
        rc = path_add(l, &cap, PZ_PLUGINDIR);
    if (rc)
        goto out;
    *out = l;
    l = NULL;
out:
    if (rc == PZ_ENOMEM)
        pz_err_set(err, rc, "cannot create the plugin loader: out of memory");
    free(env);
    pz_loader_free(l);
    return rc;
}

int pz_loader_new(const char *const *dirs, size_t n_dirs, pz_loader **out, pz_err *err)
{
    return pz_loader_new_path(dirs, n_dirs, PZ_LOADER_PROBE, out, err);
}

void pz_loader_free(pz_loader *loader)
{
    if (!loader)
        return;
    for (size_t i = 0; i < loader->n_path; i++)
        free(loader->path[i]);
    free(loader->path);
    free(loader);
}

const char *const *pz_loader_path(const pz_loader *loader)
{
    return loader ? (const char *const *)loader->path : NULL;
}

int pz_loader_load(pz_loader *loader, const char *name, pz_plugin_kind kind, const pz_plugin **out, pz_err *err)
{
    int rc = 0;
    char *file = NULL;
    char shown[64];
    const pz_plugin *p = NULL;
    if (out)
        *out = NULL;
    if (!loader || !name || !out) {
        rc = pz_err_set(err, PZ_EINVAL, "pz_loader_load: loader, name and out are required");
        goto out;
    }
    if (!name_valid(name)) {
        printable(shown, sizeof(shown), name);
        rc = pz_err_set(err, PZ_EINVAL, "invalid provider name \"%s\": expected [a-z0-9][a-z0-9-]{0,31}", shown);
        goto out;
    }
    for (size_t i = 0; i < loader->n_path; i++) {
        struct stat lst;
        free(file);
        if (asprintf(&file, "%s/%s.so", loader->path[i], name) < 0) {
            file = NULL;
            rc = pz_err_set(err, PZ_ENOMEM, "out of memory");
            goto out;
        }
        if (lstat(file, &lst) != 0)
            continue;
        rc = pz_loader_load_file(loader, file, &p, NULL, err);
        if (rc)
            goto out;
        const pz_plugin_descriptor *d = p->desc;
        if (strcmp(d->name, name) != 0) {
            rc = pz_err_set(err, PZ_EINVAL, "%s: provides \"%s\", not \"%s\": a provider NAME lives in NAME.so",
                            file, d->name, name);
            goto out;
        }
        if (kind != 0 && d->kind != kind) {
            rc = pz_err_set(err, PZ_EINVAL, "%s: provider \"%s\" is a %s provider, not a %s provider", file, name,
                            pz_plugin_kind_name(d->kind), pz_plugin_kind_name(kind));
            goto out;
        }
        *out = p;
        goto out;
    }
    GString *searched = g_string_new(NULL);
    for (size_t i = 0; i < loader->n_path; i++)
        g_string_append_printf(searched, "%s%s", i ? ":" : "", loader->path[i]);
    rc = pz_err_set(err, PZ_ENOENT, "provider \"%s\" not found: no %s.so in %s", name, name,
                    searched->len ? searched->str : "(empty plugin path)");
    g_string_free(searched, TRUE);
out:
    free(file);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Accessors */

const pz_plugin_descriptor *pz_plugin_desc(const pz_plugin *plugin)
{
    return plugin ? plugin->desc : NULL;
}

const char *pz_plugin_path(const pz_plugin *plugin)
{
    return plugin ? plugin->path : NULL;
}

/* ------------------------------------------------------------------------ */
/* Provider instances */

typedef int (*create_fn)(const pz_core *core, const pz_conf *conf, void **state, pz_err *err);

static void table_fns(const pz_plugin_descriptor *d, create_fn *create, void (**destroy)(void *))
{
    switch (d->kind) {
    case PZ_KIND_AUTH: {
        const pz_auth_provider *t = d->provider;
        *create = t->create;
        *destroy = t->destroy;
        break;
    }
    case PZ_KIND_RATELIMIT: {
        const pz_ratelimit_provider *t = d->provider;
        *create = t->create;
        *destroy = t->destroy;
        break;
    }
    case PZ_KIND_CONNLIMIT: {
        const pz_connlimit_provider *t = d->provider;
        *create = t->create;
        *destroy = t->destroy;
        break;
    }
    case PZ_KIND_TRANSPORT: {
        const pz_transport_provider *t = d->provider;
        *create = t->create;
        *destroy = t->destroy;
        break;
    }
    default:
        *create = NULL;
        *destroy = NULL;
        break;
    }
}

/* Copy the unknown-key messages of SRC into ERR: one by one for a
 * collecting ERR, else as one message of lines. */
static void copy_messages(pz_err *err, const pz_err *src)
{
    size_t n = pz_err_count(src);
    if (!err)
        return;
    if (err->collect) {
        for (size_t i = 0; i < n; i++)
            pz_err_set(err, PZ_ECONFIG, "%s", pz_err_at(src, i));
        return;
    }
    GString *all = g_string_new(NULL);
    for (size_t i = 0; i < n; i++)
        g_string_append_printf(all, "%s%s", i ? "\n" : "", pz_err_at(src, i));
    pz_err_set(err, PZ_ECONFIG, "%s", all->len ? all->str : "unknown configuration key");
    g_string_free(all, TRUE);
}

int pz_provider_new(const pz_plugin *plugin, const char *instance_name, const pz_conf *conf, pz_provider **out,
                    pz_err *err)
{
    int rc = 0;
    pz_provider *pv = NULL;
    create_fn create = NULL;
    if (out)
        *out = NULL;
    if (!plugin || !out) {
        rc = pz_err_set(err, PZ_EINVAL, "pz_provider_new: plugin and out are required");
        goto out;
    }
    const pz_plugin_descriptor *d = plugin->desc;
    const char *iname = instance_name && *instance_name ? instance_name : d->name;
    pv = calloc(1, sizeof(*pv));
    if (!pv || !(pv->name = strdup(iname)) || !(pv->core = pz_core_new(iname))) {
        rc = pz_err_set(err, PZ_ENOMEM, "%s: out of memory", iname);
        goto out;
    }
    pv->plugin = plugin;
    pv->table = d->provider;
    table_fns(d, &create, &pv->destroy);
    if (!create || !pv->destroy) {
        rc = pz_err_set(err, PZ_EINTERNAL, "%s: provider table has no create/destroy", iname);
        goto out;
    }
    const char *before = err ? err->msg : NULL;
    void *state = NULL;
    rc = create(pv->core, conf, &state, err);
    if (rc != 0) {
        if (rc > 0)
            rc = PZ_EINTERNAL;
        if (!err || err->msg == before)
            pz_err_set(err, rc, "%s: create failed: %s", iname, pz_strerror(rc));
        goto out;
    }
    pv->state = state;
    if (conf) {
        pz_err unused;
        pz_err_init_collect(&unused);
        if (pz_conf_check_unused(conf, &unused) != 0) {
            copy_messages(err, &unused);
            pz_err_clear(&unused);
            rc = PZ_ECONFIG;
            goto out;
        }
        pz_err_clear(&unused);
    }
    *out = pv;
    pv = NULL;
out:
    pz_provider_free(pv);
    return rc;
}

void pz_provider_free(pz_provider *provider)
{
    if (!provider)
        return;
    if (provider->destroy && provider->state)
        provider->destroy(provider->state);
    pz_core_free(provider->core);
    free(provider->name);
    free(provider);
}

const pz_plugin *pz_provider_plugin(const pz_provider *provider)
{
    return provider ? provider->plugin : NULL;
}

const char *pz_provider_name(const pz_provider *provider)
{
    return provider ? provider->name : NULL;
}

pz_plugin_kind pz_provider_kind(const pz_provider *provider)
{
    return provider ? provider->plugin->desc->kind : (pz_plugin_kind)0;
}

const void *pz_provider_table(const pz_provider *provider)
{
    return provider ? provider->table : NULL;
}

void *pz_provider_state(const pz_provider *provider)
{
    return provider ? provider->state : NULL;
}

const pz_core *pz_provider_core(const pz_provider *provider)
{
    return provider ? provider->core : NULL;
}
