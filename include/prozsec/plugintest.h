/* prozsec — mock core for testing provider plugins (libprozsec-plugintest).
 *
 * A pz_mock is a complete pz_core services table (plugin.h) that records
 * instead of acting, so a plugin's unit tests can drive its provider table
 * directly and check what it did:
 *
 *   - log lines are captured (and echoed to stderr when the environment
 *     variable PZ_MOCK_LOG is set to a non-empty value);
 *   - core->error() sets the pz_err it is given, like the real core;
 *   - the monotonic and wall clocks are fake and move only when told
 *     (start: monotonic 1 s, wall clock 2023-11-14T22:13:20Z);
 *   - randomness is a deterministic stream from a seed (default 0), and
 *     can be made to fail;
 *   - secure memory is zeroing malloc/free, counted, and can be made to
 *     fail;
 *   - metrics and behaviour events are recorded.
 *
 * Configuration comes from YAML strings parsed by the real core parser, so
 * getters, messages ("test.yaml:LINE:COL: key: expected ..., found ...")
 * and the unknown-key check behave exactly as in the daemon.
 *
 * Typical use, with cmocka:
 *
 *     pz_mock *m = pz_mock_new();
 *     const pz_conf *conf;
 *     assert_int_equal(pz_mock_conf(m, "capacity: 10\nrefill: 5\n", &conf), 0);
 *     void *st;
 *     assert_int_equal(tb->create(pz_mock_core(m), conf, &st, pz_mock_err(m)), 0);
 *     assert_int_equal(pz_mock_check_unused(m, conf), 0);
 *     pz_mock_advance(m, 1000000000);
 *     ...
 *     tb->destroy(st);
 *     pz_mock_free(m);
 *
 * Link with `pkg-config --libs prozsec-plugintest`. No GLib or libyaml type
 * appears here.
 *
 * Thread safety: the pz_core functions of a mock are thread-safe, as the
 * real core's are. The pz_mock_* functions are not: call them from the test
 * thread while no provider call is running. Pointers returned by the
 * pz_mock_* accessors stay valid until the next pz_mock_clear_* /
 * pz_mock_conf call that replaces them, or pz_mock_free.
 */
#ifndef PROZSEC_PLUGINTEST_H
#define PROZSEC_PLUGINTEST_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pz_mock pz_mock;

/* Start values of the fake clocks. */
#define PZ_MOCK_MONOTONIC_START_NS 1000000000ull
#define PZ_MOCK_REALTIME_START_NS 1700000000000000000ull

/* A new mock core with empty records, clocks at their start values and
 * randomness seeded with 0. Returns NULL when out of memory. */
pz_mock *pz_mock_new(void);

/* Free MOCK, every configuration parsed through it and every record.
 * Secure memory still allocated through it is not freed (a leak checker
 * will show it). NULL is a no-op. */
void pz_mock_free(pz_mock *mock);

/* The services table to hand to a provider's create(). Valid until
 * pz_mock_free. */
const pz_core *pz_mock_core(pz_mock *mock);

/* --- configuration ------------------------------------------------------ */

/* Parse YAML (a NUL-terminated string, named "test.yaml" in messages) and
 * set *OUT to its root map. The document lives until pz_mock_free. Returns
 * 0, or PZ_ECONFIG / PZ_ENOMEM with the message in the mock's error
 * (pz_mock_err_msg) and *OUT = NULL. */
int pz_mock_conf(pz_mock *mock, const char *yaml, const pz_conf **out);

/* Check that every key under CONF was read (what the core does after a
 * provider's create() returns). Returns 0, or PZ_ECONFIG with one line
 * per unknown key, "test.yaml:LINE:COL: path: unknown key", joined by
 * newlines in the mock's error. */
int pz_mock_check_unused(pz_mock *mock, const pz_conf *conf);

/* --- errors ------------------------------------------------------------- */

/* The mock's own error sink, to pass as the ERR argument of provider
 * functions. Owned by the mock. */
pz_err *pz_mock_err(pz_mock *mock);

/* Message held by the mock's error: "" when none. */
const char *pz_mock_err_msg(pz_mock *mock);

/* Code held by the mock's error: 0 when none. */
int pz_mock_err_code(pz_mock *mock);

/* Empty the mock's error. */
void pz_mock_err_clear(pz_mock *mock);

/* --- time --------------------------------------------------------------- */

/* Set the monotonic clock (core->monotonic_ns) to MONO_NS. */
void pz_mock_set_time(pz_mock *mock, uint64_t mono_ns);

/* Move both clocks forward by NS. */
void pz_mock_advance(pz_mock *mock, uint64_t ns);

/* Set the wall clock (core->realtime_ns), nanoseconds since the epoch. */
void pz_mock_set_realtime(pz_mock *mock, uint64_t realtime_ns);

/* --- randomness and secure memory ------------------------------------- */

/* Restart core->random's deterministic stream from SEED: the same seed
 * gives the same bytes, call after call. */
void pz_mock_seed(pz_mock *mock, uint64_t seed);

/* While FAIL is non-zero, core->random returns PZ_ECRYPTO and leaves the
 * buffer untouched. */
void pz_mock_set_random_fail(pz_mock *mock, int fail);

/* While FAIL is non-zero, core->secure_alloc returns NULL. */
void pz_mock_set_secure_fail(pz_mock *mock, int fail);

/* Number of secure_alloc blocks not yet given back to secure_free. */
size_t pz_mock_secure_in_use(pz_mock *mock);

/* --- logs --------------------------------------------------------------- */

/* Number of lines logged through core->log since the last clear. */
size_t pz_mock_log_count(pz_mock *mock);

/* Line I (oldest first) without a provider prefix, and its level in
 * *LEVEL (may be NULL). NULL when I is out of range. */
const char *pz_mock_log_at(pz_mock *mock, size_t i, pz_log_level *level);

/* 1 when some captured line contains NEEDLE, else 0. */
int pz_mock_log_contains(pz_mock *mock, const char *needle);

/* Forget every captured line. */
void pz_mock_clear_logs(pz_mock *mock);

/* --- metrics ------------------------------------------------------------ */

/* Current value of metric NAME with LABEL (NULL: the unlabelled series):
 * the sum of every metric_add, or the last metric_set. 0 when never
 * recorded. Names are recorded as the provider gives them, without the
 * "prozsec_<provider>_" prefix the daemon adds. A name that is not
 * [a-z0-9_]+ is also logged at PZ_LOG_ERROR as a provider bug. */
int64_t pz_mock_metric(pz_mock *mock, const char *name, const char *label);

/* --- behaviour events --------------------------------------------------- */

/* Number of events emitted through core->behavior since the last clear. */
size_t pz_mock_event_count(pz_mock *mock);

/* Event I (oldest first), copied when emitted: its strings are owned by
 * the mock. NULL when I is out of range. */
const pz_behavior_event *pz_mock_event_at(pz_mock *mock, size_t i);

/* Forget every recorded event. */
void pz_mock_clear_events(pz_mock *mock);

#ifdef __cplusplus
}
#endif
#endif /* PROZSEC_PLUGINTEST_H */
