/* tests/unit/rpc_wire_ref.h — the reference for core/rpc_wire.c's reader:
 * the envelope decoder prozsec had before it (GLib: g_variant_new_from_bytes,
 * g_variant_is_normal_form, GVariant accessors, then the same field checks),
 * and comparisons of the reader's answers with it. Used by
 * tests/unit/test_rpc_wire_nf.c and tests/fuzz/fuzz_rpc_frame.c. */
#ifndef PZ_TESTS_RPC_WIRE_REF_H
#define PZ_TESTS_RPC_WIRE_REF_H

#include <stddef.h>
#include <stdint.h>

/* How a comparison came out. */
typedef enum ref_outcome {
    REF_AGREE_ACCEPT = 0, /* both accepted, every field equal */
    REF_AGREE_REFUSE,     /* both refused */
    REF_LIMITED,          /* GLib accepts, the reader refuses a type string over its documented limit */
    REF_DISAGREE,         /* a bug: see *WHAT */
} ref_outcome;

/* Decode the envelope FRAME (LEN bytes) with pz_wire_decode (both kinds
 * allowed) and with the GLib reference, and compare verdicts and fields. On
 * REF_DISAGREE, *WHAT (may be NULL) names the difference (static). */
ref_outcome ref_compare_envelope(const uint8_t *frame, size_t len, const char **what);

/* Compare pz_wire_is_normal(TYPE, DATA, LEN) with g_variant_is_normal_form
 * of a GVariant of TYPE (a valid definite NUL-terminated type string) made
 * from the same bytes. */
ref_outcome ref_compare_value(const char *type, const uint8_t *data, size_t len, const char **what);

#endif
