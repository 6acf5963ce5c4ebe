/* plugins/key-pin/key-pin.h — reason codes of the key-pin provider
 * (pz_auth_result.reason_code of a refusal). Values are stable. */
#ifndef PZ_PLUGIN_KEY_PIN_H
#define PZ_PLUGIN_KEY_PIN_H

enum key_pin_reason {
    KEY_PIN_DENY_NOT_PINNED = 1, /* the leaf's key matches no pin */
    KEY_PIN_DENY_MALFORMED = 2,  /* the leaf certificate or its key does not parse */
    KEY_PIN_DENY_AMBIGUOUS = 3,  /* configuration and directory pin the key for different nodes */
};

#endif /* PZ_PLUGIN_KEY_PIN_H */
