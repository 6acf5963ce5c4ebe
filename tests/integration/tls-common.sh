# tests/integration/tls-common.sh — sourced by the transport integration
# tests: fixtures from tests/certfix, echo servers from tests/transport-echo
# on 127.0.0.1 (port 0: the kernel picks a free one), clients, and checks on
# what the server printed and logged. Everything started is killed by its
# pid on exit; every wait is bounded.
#
# Environment (set by `make check`; defaults for running from the build
# directory by hand): top_builddir, top_srcdir, PROZSEC_PLUGIN_PATH.

set -u

: "${top_builddir:=$(pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${PROZSEC_PLUGIN_PATH:=$top_builddir/plugins/.libs}"
export PROZSEC_PLUGIN_PATH

ECHO="$top_builddir/tests/transport-echo"
CERTFIX="$top_builddir/tests/certfix"
TEST_NAME=$(basename "$0" .sh)

fails=0
checks=0
pids=""
work=$(mktemp -d "${TMPDIR:-/tmp}/pz-$TEST_NAME.XXXXXX") || exit 99

# Sanitizer builds write their reports here, one file per process.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$work/san"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$work/san:print_stacktrace=1"

cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null
    done
    for p in $pids; do
        wait "$p" 2>/dev/null
    done
    # Sanitizer builds (--enable-sanitizers): any report from a helper is a
    # failure, even when every check passed.
    san=$(ls "$work"/san.* 2>/dev/null;
        grep -l 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$work"/*.log "$work"/*.err \
            2>/dev/null)
    if [ -n "$san" ]; then
        for f in $san; do
            echo "# sanitizer report in $(basename "$f"):"
            sed 's/^/# /' "$f" | head -40
        done
        fails=$((fails + 1))
    fi
    if [ "$fails" -ne 0 ] && [ -n "${PZ_KEEP_WORK:-}" ]; then
        echo "# work directory kept: $work"
    else
        rm -rf "$work"
    fi
    [ "$fails" -eq 0 ] || exit 1
}
trap cleanup EXIT
trap 'exit 99' INT TERM

ok() {
    checks=$((checks + 1))
    echo "ok $checks - $*"
}

not_ok() {
    checks=$((checks + 1))
    fails=$((fails + 1))
    echo "not ok $checks - $*"
}

fatal() {
    echo "Bail out! $*"
    exit 99
}

finish() {
    echo "# $TEST_NAME: $checks checks, $fails failed"
    [ "$fails" -eq 0 ] && exit 0
    exit 1
}

need() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || { echo "# SKIP: $tool not installed"; exit 77; }
    done
    [ -x "$ECHO" ] || { echo "# SKIP: $ECHO not built"; exit 77; }
    [ -x "$CERTFIX" ] || { echo "# SKIP: $CERTFIX not built"; exit 77; }
    [ -f "$PROZSEC_PLUGIN_PATH/tls.so" ] || { echo "# SKIP: tls.so not in $PROZSEC_PLUGIN_PATH"; exit 77; }
}

# make_fixtures: certfix set in $FX (ca.crt ca.key ca.crl, NAME.crt/.key).
make_fixtures() {
    FX="$work/fx"
    "$CERTFIX" "$FX" >"$work/fixtures.list" || fatal "certfix failed"
}

# server_conf FILE CERTNAME [extra YAML lines...]: a tls transport map.
server_conf() {
    f=$1 name=$2
    shift 2
    {
        echo "cert: $FX/$name.crt"
        echo "key: $FX/$name.key"
        echo "ca: $FX/ca.crt"
        echo "crl: $FX/ca.crl"
        for line in "$@"; do echo "$line"; done
    } >"$f"
}

# start_server NAME CONFIG [transport-echo args...]: sets PORT, OUT, LOG.
start_server() {
    sname=$1 sconf=$2
    shift 2
    OUT="$work/$sname.out"
    LOG="$work/$sname.log"
    rm -f "$work/$sname.port"
    "$ECHO" --config "$sconf" --listen 127.0.0.1:0 --port-file "$work/$sname.port" --lifetime 300 "$@" \
        >"$OUT" 2>"$LOG" &
    spid=$!
    pids="$pids $spid"
    i=0
    while [ ! -s "$work/$sname.port" ]; do
        i=$((i + 1))
        kill -0 "$spid" 2>/dev/null || fatal "server $sname exited: $(cat "$LOG")"
        [ "$i" -gt 200 ] && fatal "server $sname did not start in 20s"
        sleep 0.1
    done
    PORT=$(cat "$work/$sname.port")
    SERVER_PID=$spid
}

# mark: remember how many result lines the server printed so far.
mark() {
    MARK=$(grep -c '^\(PEER\|REFUSED\) ' "$OUT" 2>/dev/null || true)
}

# wait_result: wait (bounded) for the next PEER/REFUSED line after mark;
# sets RESULT to it ("" when none came within 10 s).
wait_result() {
    i=0
    RESULT=""
    while [ "$i" -lt 100 ]; do
        n=$(grep -c '^\(PEER\|REFUSED\) ' "$OUT" 2>/dev/null || true)
        if [ "$n" -gt "$MARK" ]; then
            RESULT=$(grep '^\(PEER\|REFUSED\) ' "$OUT" | sed -n "$((MARK + 1))p")
            return 0
        fi
        i=$((i + 1))
        sleep 0.1
    done
}

# expect_peer DESC: the last client attempt was accepted by the server.
expect_peer() {
    wait_result
    case "$RESULT" in
    PEER*) ok "$1" ;;
    *) not_ok "$1 (server: ${RESULT:-nothing})" ;;
    esac
}

# expect_refused REASON DESC: the server refused with reason=REASON, which
# its log names too.
expect_refused() {
    reason=$1
    shift
    wait_result
    case "$RESULT" in
    REFUSED*": $reason: "*)
        if grep -q "refused: reason=$reason: " "$LOG"; then
            ok "$* (reason=$reason logged)"
        else
            not_ok "$* (reason $reason not in the server log)"
        fi
        ;;
    *) not_ok "$* (expected refusal $reason, server: ${RESULT:-nothing})" ;;
    esac
}

# expect_not_peer DESC: the server did not complete a handshake (refused,
# or the client gave up before sending anything).
expect_not_peer() {
    wait_result
    case "$RESULT" in
    PEER*) not_ok "$1 (server accepted: $RESULT)" ;;
    *) ok "$1" ;;
    esac
}

# gnutls_client ARGS...: one gnutls-cli connection sending "ping"; the
# server certificate is verified against the fixture CA for node $SERVER_ID.
SERVER_ID=server-1
gnutls_client() {
    echo ping | timeout 15 gnutls-cli -p "$PORT" 127.0.0.1 --x509cafile "$FX/ca.crt" \
        --verify-hostname "$SERVER_ID.nodes.prozchain.io" "$@" >"$work/client.txt" 2>&1
}

# peer_count: PEER lines the server printed so far.
peer_count() {
    grep -c '^PEER ' "$OUT" 2>/dev/null || true
}

# openssl_client ARGS...: one openssl s_client connection sending "ping".
openssl_client() {
    echo ping | timeout 15 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$FX/ca.crt" "$@" \
        >"$work/client.txt" 2>&1
}

client_cert_gnutls() { echo "--x509certfile=$FX/$1.crt --x509keyfile=$FX/$1.key"; }
client_cert_openssl() { echo "-cert $FX/$1.crt -key $FX/$1.key"; }
