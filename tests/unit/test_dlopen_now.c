/* tests/unit/test_dlopen_now.c — open every built plugin with RTLD_NOW.
 *
 * libltdl binds lazily, so a plugin calling a function nobody defines
 * loads fine and only dies at its first call. This test (Linux-PAM's
 * tst-dlopen) opens every .so in $top_builddir/plugins/.libs and every
 * good fixture with RTLD_NOW and fails on any unresolved symbol; and it
 * checks that bad-undefined.so does fail that way, proving the check
 * works. The crashing fixture is never opened here. */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include <prozsec/plugin.h>

static const char *builddir;

static const char *const good_fixtures[] = {
    "test-ratelimit", "test-auth", "test-connlimit", "test-transport",
};

/* Open PATH with RTLD_NOW; on failure return dlerror()'s text (static). */
static const char *open_now(const char *path, void **handle)
{
    (void)dlerror();
    *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    return *handle ? NULL : dlerror();
}

static void test_project_plugins(void **state)
{
    (void)state;
    g_autofree char *dir = g_strdup_printf("%s/plugins/.libs", builddir);
    DIR *d = opendir(dir);
    if (!d) {
        /* No plugin has been built in this tree yet: nothing to check. */
        print_message("no %s: no project plugins to check\n", dir);
        return;
    }
    int checked = 0, failed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!g_str_has_suffix(e->d_name, ".so"))
            continue;
        g_autofree char *path = g_build_filename(dir, e->d_name, NULL);
        void *h = NULL;
        const char *why = open_now(path, &h);
        if (why) {
            print_error("%s: %s\n", path, why);
            failed++;
            continue;
        }
        if (!dlsym(h, PZ_PLUGIN_ENTRY_SYMBOL)) {
            print_error("%s: no %s\n", path, PZ_PLUGIN_ENTRY_SYMBOL);
            failed++;
        }
        checked++;
        /* Plugins are never unloaded, here either. */
    }
    closedir(d);
    print_message("%d project plugin(s) open with RTLD_NOW\n", checked);
    assert_int_equal(failed, 0);
}

static void test_good_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good_fixtures) / sizeof(good_fixtures[0]); i++) {
        g_autofree char *path =
            g_strdup_printf("%s/tests/fixtures/plugins/.libs/%s.so", builddir, good_fixtures[i]);
        void *h = NULL;
        const char *why = open_now(path, &h);
        if (why)
            fail_msg("%s: %s", path, why);
        assert_non_null(dlsym(h, PZ_PLUGIN_ENTRY_SYMBOL));
    }
}

static void test_undefined_fails_now(void **state)
{
    (void)state;
    g_autofree char *path = g_strdup_printf("%s/tests/fixtures/plugins/.libs/bad-undefined.so", builddir);
    void *h = NULL;
    const char *why = open_now(path, &h);
    assert_null(h);
    assert_non_null(why);
    assert_non_null(strstr(why, "undefined symbol"));
    assert_non_null(strstr(why, "pz_fixture_no_such_function"));
    /* ...while lazy binding accepts it: that is the trap this test guards. */
    (void)dlerror();
    h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
    assert_non_null(h);
}

int main(void)
{
    builddir = getenv("top_builddir");
    if (!builddir)
        builddir = PZ_TEST_BUILDDIR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_project_plugins),
        cmocka_unit_test(test_good_fixtures),
        cmocka_unit_test(test_undefined_fails_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
