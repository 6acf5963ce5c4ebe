/* plugins/psk-token/psk-token.h — the psk-token wire format and reason
 * codes. See docs/plugins/psk-token.md.
 *
 * Token (what the peer presents, pz_auth_credentials.token):
 *
 *   offset  size  field
 *   0       1     version, 0x01
 *   1       1     L, length of the node id (1..64)
 *   2       L     node id, ASCII [A-Za-z0-9._-]
 *   2+L     32    MAC
 *
 *   MAC = HMAC-SHA256(K_node, "prozsec psk-token v1" || 0x00
 *                            || u8(len(CB)) || CB || u8(L) || node id)
 *
 * where CB is the connection's TLS exporter channel binding
 * (pz_auth_credentials.channel_binding, label
 * "EXPORTER-prozsec-channel-binding", 32 bytes) and K_node the node's
 * pre-shared key (32 to 128 bytes). Binding the MAC to CB makes a token
 * worthless on any other connection.
 */
#ifndef PZ_PLUGIN_PSK_TOKEN_H
#define PZ_PLUGIN_PSK_TOKEN_H

#define PSK_TOKEN_VERSION 0x01
#define PSK_TOKEN_LABEL "prozsec psk-token v1"
#define PSK_TOKEN_MAC_LEN 32
#define PSK_TOKEN_MAX_LEN (2 + 64 + PSK_TOKEN_MAC_LEN)
#define PSK_KEY_MIN 32
#define PSK_KEY_MAX 128
#define PSK_BINDING_MIN 16
#define PSK_BINDING_MAX 64

enum psk_token_reason {
    PSK_TOKEN_DENY_MALFORMED = 1,    /* not a token of the format above */
    PSK_TOKEN_DENY_UNKNOWN_NODE = 2, /* no key for the node id */
    PSK_TOKEN_DENY_NO_BINDING = 3,   /* the transport gave no channel binding (not TLS) */
    PSK_TOKEN_DENY_BAD_MAC = 4,      /* wrong key, or a token made for another connection */
};

#endif /* PZ_PLUGIN_PSK_TOKEN_H */
