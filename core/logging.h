/* core/logging.h — log output of the programs (prozsecd, prozsec): GLib
 * structured logging, written to the journal when stderr is the journal
 * (under systemd) and as plain lines on stderr otherwise, filtered by
 * level, with floods of similar lines summarised. */
#ifndef PZ_CORE_LOGGING_H
#define PZ_CORE_LOGGING_H

#include <prozsec/plugin.h>

struct pz_node;

/* Install the log writer for program PROG. LEVEL_OVERRIDE ("debug",
 * "info", ...) wins over the configuration when non-NULL. */
void pz_logging_setup(const char *prog, const char *level_override);

/* Set the threshold (lines below it are dropped). */
void pz_logging_set_level(pz_log_level level);

/* Take log.level from the node's configuration unless overridden. */
void pz_logging_set_level_from_node(struct pz_node *node);

/* Parse "debug|info|notice|warning|error"; -1 when unknown. */
int pz_logging_parse_level(const char *text);

#endif
