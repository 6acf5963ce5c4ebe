/* tests/fuzz/fuzz_cert.c — libFuzzer target: untrusted DER through the
 * node-identity extraction a peer's certificate goes through before any
 * trust decision: pz_cert_node_info (core/pki.h), certval's identity and
 * subject-attribute readers and the node-keys extension decoder
 * (core/certval.h), and the node id / type validators. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "certval.h"
#include "err.h"
#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pz_cert_info info;
    pz_err err;
    uint8_t sign_pub[32], e2e_pub[32];
    char text[PZ_NODE_ID_MAX + 2];

    /* The raw bytes as an extension value and as an id / type string. */
    (void)pz_node_keys_ext_decode(data, size, sign_pub, e2e_pub);
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    (void)pz_node_id_valid(text);
    (void)pz_node_type_valid(text);

    pz_err_init(&err);
    memset(&info, 0, sizeof(info));
    if (pz_cert_node_info(data, size, &info, &err) == 0) {
        /* What it returns must satisfy its own contract. */
        if (!pz_node_id_valid(info.node_id) || !pz_node_type_valid(info.node_type))
            __builtin_trap();
    }
    pz_err_clear(&err);

    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0)
        return 0;
    gnutls_datum_t d = {.data = (unsigned char *)data, .size = (unsigned)size};
    if (size <= UINT32_MAX && gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) >= 0) {
        pz_certval_result r;
        char buf[128];
        for (int san = 0; san <= 1; san++) {
            memset(&r, 0, sizeof(r));
            if (pz__certval_identity(crt, san, &r) == PZ_CV_OK &&
                (!pz_node_id_valid(r.node_id) || !pz_node_type_valid(r.node_type)))
                __builtin_trap();
        }
        (void)pz__certval_subject_attr(crt, GNUTLS_OID_X520_COMMON_NAME, buf, sizeof(buf));
        (void)pz__certval_subject_attr(crt, GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME, buf, sizeof(buf));
        (void)pz__certval_subject_attr(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, buf, 8);
    }
    gnutls_x509_crt_deinit(crt);
    return 0;
}
