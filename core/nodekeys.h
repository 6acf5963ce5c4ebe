/* core/nodekeys.h — the node's own key files (Ed25519 signing key, X25519
 * E2E key), rotation of E2E receiving keys with signed key records, and the
 * directory of peers' public keys.
 *
 * File names and formats are documented in docs/e2e-format.md ("Key
 * files"). Private key files are written with mode 0600, atomically (temp
 * file + fsync + rename). Private keys are held in libgcrypt secure memory
 * and wiped when freed.
 */
#ifndef PZ_CORE_NODEKEYS_H
#define PZ_CORE_NODEKEYS_H

#include <stddef.h>
#include <stdint.h>

#include <prozsec/plugin.h>

/* Generate the node's Ed25519 signing key and X25519 E2E key in DIR (files written 0600,
 * atomically; refuses to overwrite existing ones unless FORCE). Public keys out. */
int pz_nodekeys_generate(const char *dir, int force, uint8_t sign_pub[32], uint8_t e2e_pub[32], pz_err *err);

#endif /* PZ_CORE_NODEKEYS_H */
