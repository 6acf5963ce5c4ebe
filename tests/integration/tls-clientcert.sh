#!/bin/bash
# tests/integration/tls-clientcert.sh — client certificates checked by the
# validation service during the tls transport's handshake, with gnutls-cli
# and openssl s_client: the valid ones accepted; foreign CA, expired, not
# yet valid, RSA-1024, ECDSA P-256, SHA-1-signed, revoked, lacking
# clientAuth and CN/SAN-mismatched ones refused, each with its reason in
# the server log. The fixtures and their expected reasons come from
# `tests/certfix DIR`.
. "$(dirname "$0")/tls-common.sh"
need gnutls-cli openssl timeout

make_fixtures
server_conf "$work/server.yaml" server
start_server server "$work/server.yaml"

while read -r name expected; do
    case "$name" in
    server) continue ;;              # the server's own
    noserverauth) expected=ok ;;     # has clientAuth: fine as a client
    esac
    for client in gnutls openssl; do
        mark
        if [ "$client" = gnutls ]; then
            gnutls_client $(client_cert_gnutls "$name")
        else
            # SECLEVEL 0: openssl itself would refuse to send RSA-1024 or SHA-1.
            openssl_client $(client_cert_openssl "$name") -cipher "DEFAULT@SECLEVEL=0"
        fi
        if [ "$expected" = ok ]; then
            expect_peer "$client with $name.crt accepted"
        else
            expect_refused "$expected" "$client with $name.crt refused"
        fi
    done
done <"$work/fixtures.list"

# Each refusal is logged once, at NOTICE, naming the peer and the reason.
n=$(grep -c 'NOTICE tls: handshake from 127.0.0.1:[0-9]* refused: reason=' "$LOG")
[ "$n" -ge 18 ] && ok "$n refusals logged at NOTICE with address and reason" ||
    not_ok "only $n refusals logged at NOTICE"

finish
