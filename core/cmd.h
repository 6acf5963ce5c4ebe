/* core/cmd.h — subcommands of the `prozsec` tool, one file each
 * (core/cmd_<group>.c), dispatched by core/prozsec.c.
 *
 * Each entry gets ARGV starting at its own name (argv[0] = "plugins") and
 * returns the process exit code: 0 success, 1 a negative answer (invalid
 * certificate, refused envelope), 2 a usage or configuration error.
 */
#ifndef PZ_CORE_CMD_H
#define PZ_CORE_CMD_H

#include <glib.h>

#define PZ_EXIT_OK 0
#define PZ_EXIT_NO 1
#define PZ_EXIT_USAGE 2

typedef int (*pz_cmd_fn)(int argc, char **argv);

typedef struct pz_cmd {
    const char *name;
    const char *summary; /* one line for `prozsec --help` */
    pz_cmd_fn run;
} pz_cmd;

int pz_cmd_plugins(int argc, char **argv);
int pz_cmd_config(int argc, char **argv);
int pz_cmd_audit(int argc, char **argv);
int pz_cmd_ca(int argc, char **argv);
int pz_cmd_cert(int argc, char **argv);
int pz_cmd_e2e(int argc, char **argv);
int pz_cmd_rpc(int argc, char **argv);
int pz_cmd_peer(int argc, char **argv);
int pz_cmd_stats(int argc, char **argv);
int pz_cmd_reload(int argc, char **argv);
int pz_cmd_demo(int argc, char **argv);

/* Parse ARGV with ENTRIES for the subcommand NAME ("plugins list"), adding
 * --version; prints help on --help and exits 0, prints the version on
 * --version and exits 0, prints a usage error and returns 2 on a bad
 * option. PARAMS is the positional synopsis ("FILE"), SUMMARY a paragraph.
 * On success returns 0 and leaves positional arguments in ARGC/ARGV (argv[0]
 * is the subcommand name). */
int pz_cmd_parse(const char *name, const char *params, const char *summary, const GOptionEntry *entries,
                 int *argc, char ***argv);

/* Print "prozsec: " + message to stderr. */
void pz_cmd_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* Dispatch to a sub-subcommand ("list" of "plugins") from TABLE; prints the
 * group's help when none or --help is given. */
int pz_cmd_dispatch(const char *group, const pz_cmd *table, int argc, char **argv);

#endif /* PZ_CORE_CMD_H */
