#!/bin/bash
# tests/integration/tls-protocol.sh — the tls transport's protocol policy
# against real clients (gnutls-cli, openssl s_client) on 127.0.0.1:
# TLS 1.0 and 1.1 refused; TLS 1.2 only with the three configured suites
# (every other suite openssl knows refused); TLS 1.3 chosen when offered;
# a client without a certificate refused when client_auth is required.
. "$(dirname "$0")/tls-common.sh"
need gnutls-cli openssl timeout

make_fixtures
server_conf "$work/ecdsa.yaml" server
server_conf "$work/rsa.yaml" rsa3072
start_server ecdsa "$work/ecdsa.yaml"
ECDSA_PORT=$PORT ECDSA_OUT=$OUT ECDSA_LOG=$LOG
start_server rsa "$work/rsa.yaml"
RSA_PORT=$PORT RSA_OUT=$OUT RSA_LOG=$LOG

use_ecdsa() { PORT=$ECDSA_PORT OUT=$ECDSA_OUT LOG=$ECDSA_LOG SERVER_ID=server-1; }
use_rsa() { PORT=$RSA_PORT OUT=$RSA_OUT LOG=$RSA_LOG SERVER_ID=rsa3072-1; }

GC=$(client_cert_gnutls client)
OC=$(client_cert_openssl client)
use_ecdsa

# --- TLS 1.3 chosen when offered ------------------------------------------
mark
gnutls_client $GC
expect_peer "gnutls-cli NORMAL: accepted"
if grep -q '(TLS1.3-' "$work/client.txt" && grep -q '^ping' "$work/client.txt"; then
    ok "gnutls-cli NORMAL: TLS 1.3 negotiated and data echoed"
else
    not_ok "gnutls-cli NORMAL: TLS 1.3 negotiated and data echoed ($(grep Description "$work/client.txt"))"
fi
mark
openssl_client $OC -verify_return_error -verify_hostname server-1.nodes.prozchain.io
expect_peer "openssl s_client default: accepted"
grep -q 'New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384' "$work/client.txt" &&
    ok "openssl s_client offering 1.2 and 1.3: TLS 1.3 with TLS_AES_256_GCM_SHA384" ||
    not_ok "openssl s_client offering 1.2 and 1.3: TLS 1.3 ($(grep 'Cipher is' "$work/client.txt"))"
for s in TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256 TLS_AES_128_GCM_SHA256; do
    mark
    openssl_client $OC -tls1_3 -ciphersuites "$s"
    expect_peer "openssl TLS 1.3 $s: accepted"
done

# --- TLS 1.0 / 1.1 refused ------------------------------------------------
for v in 1 1_1; do
    mark
    openssl_client $OC "-tls$v" -cipher 'DEFAULT@SECLEVEL=0'
    expect_refused protocol-version "openssl s_client -tls$v refused"
done
for v in TLS1.0 TLS1.1; do
    mark
    gnutls_client $GC --priority "NORMAL:-VERS-ALL:+VERS-$v"
    expect_refused protocol-version "gnutls-cli $v refused"
done

# --- TLS 1.2: exactly three suites ----------------------------------------
for s in ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305; do
    mark
    openssl_client $OC -tls1_2 -cipher "$s"
    expect_peer "openssl TLS 1.2 $s accepted (ECDSA server)"
    grep -q "New, TLSv1.2, Cipher is $s" "$work/client.txt" && ok "  negotiated $s" ||
        not_ok "  negotiated $s ($(grep 'Cipher is' "$work/client.txt"))"
done
use_rsa
mark
openssl_client $OC -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384
expect_peer "openssl TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384 accepted (RSA-3072 server)"
# GnuTLS enables algorithms, not suites: these two are refused by the
# transport's ServerHello check.
for s in ECDHE-RSA-CHACHA20-POLY1305 ECDHE-RSA-AES128-GCM-SHA256; do
    mark
    openssl_client $OC -tls1_2 -cipher "$s"
    expect_refused cipher-suite "openssl TLS 1.2 $s refused (RSA server)"
done
use_ecdsa
mark
openssl_client $OC -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
expect_refused cipher-suite "openssl TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256 refused"

# Every other TLS 1.2 suite openssl can offer, against both servers: none
# may complete a handshake (some the client cannot even offer without a
# PSK or SRP secret; those fail on its side).
allowed=" ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-AES256-GCM-SHA384 "
n=0
bad=""
for srv in ecdsa rsa; do
    "use_$srv"
    before=$(peer_count)
    for s in $(openssl ciphers -tls1_2 -s 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' | tr ':' ' '); do
        case "$allowed" in *" $s "*) continue ;; esac
        # Against the RSA server only suites with RSA authentication matter.
        if [ "$srv" = rsa ]; then
            case "$s" in *RSA* | AES* | CAMELLIA* | ARIA* | SEED* | IDEA* | DES* | RC4* | NULL*) ;; *) continue ;; esac
        fi
        openssl_client $OC -tls1_2 -cipher "$s:@SECLEVEL=0" -ciphersuites ""
        grep -q "New, TLSv1.2, Cipher is $s" "$work/client.txt" && bad="$bad $s($srv)"
        n=$((n + 1))
    done
    sleep 0.5
    [ "$(peer_count)" -eq "$before" ] || bad="$bad (server $srv printed a PEER line)"
done
[ -z "$bad" ] && ok "$n other TLS 1.2 suite attempts (openssl ciphers ALL:COMPLEMENTOFALL) all refused" ||
    not_ok "TLS 1.2 suites accepted that are not allowed:$bad"

use_ecdsa
# gnutls-cli, by GnuTLS algorithm names.
for p in "+ECDHE-ECDSA:+AES-256-GCM" "+ECDHE-ECDSA:+CHACHA20-POLY1305"; do
    mark
    gnutls_client $GC --priority "NONE:+VERS-TLS1.2:$p:+AEAD:+SIGN-ALL:+GROUP-ALL:+CTYPE-X509"
    expect_peer "gnutls-cli TLS 1.2 $p accepted"
done
for p in "+ECDHE-ECDSA:+AES-128-GCM:+AEAD" "+ECDHE-ECDSA:+AES-256-CBC:+SHA384:+SHA1" \
    "+ECDHE-ECDSA:+AES-256-CCM:+AEAD" "+RSA:+AES-256-GCM:+AEAD" "+DHE-RSA:+AES-256-GCM:+AEAD" \
    "+ECDHE-ECDSA:+CAMELLIA-256-GCM:+AEAD" "+ECDHE-ECDSA:+3DES-CBC:+SHA1" "+ECDHE-ECDSA:+NULL:+SHA1"; do
    mark
    gnutls_client $GC --priority "NONE:+VERS-TLS1.2:$p:+SIGN-ALL:+GROUP-ALL:+CTYPE-X509"
    expect_not_peer "gnutls-cli TLS 1.2 $p refused"
done

# --- client certificate required ----------------------------------------
mark
gnutls_client
expect_refused no-certificate "gnutls-cli without a client certificate refused"
mark
openssl_client -tls1_3
expect_refused no-certificate "openssl TLS 1.3 without a client certificate refused"
mark
openssl_client -tls1_2
expect_refused no-certificate "openssl TLS 1.2 without a client certificate refused"

finish
