/* tests/unit/certfix-main.c — `tests/certfix DIR`: write the standard set
 * of fixture certificates (see certfix.h) into DIR for integration tests. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "certfix.h"

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: certfix DIR\n"
                "Writes ca.crt/ca.key/ca.crl (trusted CA and CRL), foreign-ca.crt/.key and NAME.crt/NAME.key\n"
                "for each fixture, then lists \"NAME EXPECTED-REASON\" on stdout (\"ok\" = valid).\n");
        return 2;
    }
    if (mkdir(argv[1], 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "certfix: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int rc = gnutls_global_init();
    if (rc >= 0)
        rc = pz_fix_write_set(argv[1], (int64_t)time(NULL));
    if (rc < 0) {
        fprintf(stderr, "certfix: %s\n", gnutls_strerror(rc));
        gnutls_global_deinit();
        return 1;
    }
    for (size_t i = 0; pz_fix_set_names[i]; i += 2)
        printf("%s %s\n", pz_fix_set_names[i], pz_fix_set_names[i + 1]);
    gnutls_global_deinit();
    return 0;
}
