#!/bin/sh
# tests/integration/auth-providers.sh — each auth provider end to end, with
# real prozsecd daemons on 127.0.0.1 running the example configurations of
# conf/examples/ (auth-*.yaml and light-client.yaml) adapted to a temporary
# directory: /etc/prozsec/ becomes the directory, listen addresses port 0,
# the example pins and keys the real ones. Each file first passes
# `prozsec config check`; then, per provider, one allowed and one refused
# peer, checked by the client's exit status and by the daemon's log line
# with the provider's refusal reason code:
#
#   cert-auth      CA-issued certificates; a light node's is refused (deny:101)
#   key-pin        self-signed certificates, no CA (tls verify: auth-chain);
#                  an unpinned key is refused (deny:1), and so is a server
#                  whose key is not the one pinned for the node dialled
#   psk-token      a light client without a certificate, its token in the
#                  credentials frame; a wrong key and a token replayed from
#                  another connection are refused (deny:4), a malformed
#                  credentials frame too
#   unix-peercred  local clients by uid; a daemon that lists another uid
#                  refuses this one
#
# The allowed/refused log lines are printed ("# <provider> allowed: ...").
# Every process started is stopped by its pid; every wait is bounded.
#
# Environment (set by `make check`; defaults for running from the build
# directory by hand): top_builddir, top_srcdir, PROZSEC_PLUGIN_PATH.
set -u
LC_ALL=C
export LC_ALL

: "${top_builddir:=$(pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${PROZSEC_PLUGIN_PATH:=$top_builddir/plugins/.libs}"
export PROZSEC_PLUGIN_PATH

PZ="$top_builddir/prozsec"
PZD="$top_builddir/prozsecd"
PEER="$top_builddir/tests/credframe-peer"
EX="$top_srcdir/conf/examples"
# The placeholder pin and light-1 key of the examples, replaced by real ones.
EX_PIN='sha256//pG2v4S0k9bQ6pZ7tq1m3T1y5sQe8Yc4Kq9f3J0Ww2Xc='
EX_LIGHT_SIGN='ihIc1nSCdni4JmNdKwFnKgDWx31X/ylZkFtBXbJp4aE='

work=$(mktemp -d "${TMPDIR:-/tmp}/pz-auth-providers.XXXXXX") || exit 99
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$work/san"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$work/san:print_stacktrace=1"
pids=""
fails=0
checks=0

stop_all() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    done
    pids=""
}
cleanup() {
    stop_all
    san=$(ls "$work"/san.* 2>/dev/null)
    if [ -n "$san" ]; then
        for f in $san; do echo "# sanitizer report in $(basename "$f"):"; sed 's/^/# /' "$f" | head -40; done
        fails=$((fails + 1))
    fi
    if [ "$fails" -eq 0 ]; then rm -rf "$work"; else echo "# work directory kept: $work"; fi
    echo "# $checks checks, $fails failed"
    [ "$fails" -eq 0 ] || exit 1
}
trap cleanup EXIT
trap 'exit 99' INT TERM

ok() { checks=$((checks + 1)); echo "ok - $1"; }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "not ok - $1"; }

# expect CODE NAME CMD...: run CMD, check its exit status.
expect() {
    want=$1; name=$2; shift 2
    "$@" >"$work/out" 2>"$work/err"; got=$?
    if [ "$got" -eq "$want" ]; then ok "$name (exit $got)"; else
        fail "$name (exit $got, wanted $want)"; sed 's/^/#   /' "$work/out" "$work/err"; fi
}

# expect_log WHAT LOG PATTERN: wait (at most 5 s) for a line of LOG
# matching PATTERN (grep -E), then print it as "# WHAT: line".
expect_log() {
    what=$1; log=$2; pattern=$3
    i=0
    while ! grep -Eq "$pattern" "$log" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    line=$(grep -E "$pattern" "$log" | tail -1)
    if [ -n "$line" ]; then
        ok "$what: log line /$pattern/"
        echo "# $what: $line"
    else
        fail "$what: log line /$pattern/"; sed 's/^/#   /' "$log" | tail -20
    fi
}

# start NAME CONFIG: run prozsecd on CONFIG; sets $addr to its first listen
# address (waits at most 10 s).
start() {
    "$PZD" --config "$2" --ready-file "$work/$1.ready" --log-level info >"$work/$1.log" 2>&1 &
    pids="$pids $!"
    i=0
    while [ ! -s "$work/$1.ready" ] && [ $i -lt 100 ]; do
        kill -0 "$!" 2>/dev/null || break
        sleep 0.1; i=$((i + 1))
    done
    addr=$(head -1 "$work/$1.ready" 2>/dev/null)
    if [ -n "$addr" ]; then ok "$1: prozsecd listening on $addr"; else
        fail "$1: prozsecd did not come up"; sed 's/^/#   /' "$work/$1.log"; addr=none; fi
}

# adapt EXAMPLE DIR OUT [SED-EXPR...]: the example with /etc/prozsec/ ->
# DIR/, listen ports 0 on 127.0.0.1, and the extra sed expressions.
adapt() {
    ex=$1; dir=$2; out=$3; shift 3
    set -- -e "s|/etc/prozsec/|$dir/|g" -e 's|"0\.0\.0\.0:[0-9]*"|"127.0.0.1:0"|' "$@"
    sed "$@" "$EX/$ex" >"$out"
    expect 0 "config check $ex (adapted)" "$PZ" config check "$out"
}

# pin_of CERT: the key-pin of a certificate, "sha256//<base64>".
pin_of() {
    hex=$("$PZ" cert show "$1" | sed -n 's/^public key SHA-256: *//p')
    printf 'sha256//%s\n' "$(for b in $(printf '%s' "$hex" | sed 's/../& /g'); do
        printf "\\$(printf '%03o' $((0x$b)))"; done | base64)"
}

key_file() { (umask 077; head -c 32 /dev/urandom | base64 >"$1"); }

# ------------------------------------------------------------------------
echo "# cert-auth: conf/examples/auth-cert-auth.yaml"
D="$work/cert-auth"
mkdir -p "$D"
expect 0 "ca init" "$PZ" ca init --dir "$D/ca"
expect 0 "issue validator-1" "$PZ" cert issue --ca "$D/ca" --node-id validator-1 --node-type validator --out "$D/keys"
expect 0 "issue validator-5" "$PZ" cert issue --ca "$D/ca" --node-id validator-5 --node-type validator --out "$D/v5"
expect 0 "issue light-7" "$PZ" cert issue --ca "$D/ca" --node-id light-7 --node-type light --out "$D/l7"
cp "$D/ca/ca.crt" "$D/ca/ca.crl" "$D/keys/"
cp "$EX/peers.yaml" "$D/peers.yaml"
adapt auth-cert-auth.yaml "$D" "$D/server.yaml"
for n in v5 l7; do
    id=validator-5 type=validator
    [ $n = l7 ] && id=light-7 type=light
    cat >"$D/$n.yaml" <<EOF
node: {id: $id, type: $type, key_dir: $D/$n}
transports:
  - provider: tls
    config: {cert: $D/$n/node.crt, key: $D/$n/node.key, ca: $D/ca/ca.crt, crl: $D/ca/ca.crl}
auth:
  chain:
    - provider: cert-auth
      control: required
      config: {ca_file: $D/ca/ca.crt, crl_file: $D/ca/ca.crl}
EOF
done
start cert-auth "$D/server.yaml"
expect 0 "cert-auth: validator-5 calls sys.ping" "$PZ" rpc call --config "$D/v5.yaml" --peer "$addr" --node-id validator-1 sys.ping
expect_log "cert-auth allowed" "$work/cert-auth.log" "allowed as validator-5 .* by cert-auth"
expect 1 "cert-auth: light-7 refused" "$PZ" rpc call --config "$D/l7.yaml" --peer "$addr" --node-id validator-1 sys.ping
expect_log "cert-auth refused" "$work/cert-auth.log" "refused by cert-auth: node type light is on the deny list .*\(deny:101\)"
stop_all

# ------------------------------------------------------------------------
echo "# key-pin: conf/examples/auth-key-pin.yaml (self-signed certificates, no CA)"
D="$work/key-pin"
mkdir -p "$D"
expect 0 "self-signed validator-1" "$PZ" cert self-signed --node-id validator-1 --out "$D/keys"
pin1=$(sed -n 's/^spki_sha256: //p' "$work/out")
expect 0 "self-signed validator-3" "$PZ" cert self-signed --node-id validator-3 --out "$D/v3"
pin3=$(sed -n 's/^spki_sha256: //p' "$work/out")
expect 0 "self-signed validator-4" "$PZ" cert self-signed --node-id validator-4 --out "$D/v4"
[ "$pin1" = "$(pin_of "$D/keys/node.crt")" ] && ok "printed pin = cert show's public key SHA-256" ||
    fail "printed pin = cert show's public key SHA-256 ($pin1)"
cp "$EX/peers.yaml" "$D/peers.yaml"
adapt auth-key-pin.yaml "$D" "$D/server.yaml" -e "s|$EX_PIN|$pin3|"
for n in 3 4; do
    cat >"$D/v$n.yaml" <<EOF
node: {id: validator-$n, type: validator, key_dir: $D/v$n}
transports:
  - provider: tls
    config: {cert: $D/v$n/node.crt, key: $D/v$n/node.key, verify: auth-chain}
auth:
  chain:
    - provider: key-pin
      control: required
      config:
        pins: [{node_id: validator-1, spki_sha256: "$pin1", node_type: validator}]
EOF
done
# A dialler that pins another key for validator-1.
sed "s|$pin1|$pin3|" "$D/v3.yaml" >"$D/v3-wrongpin.yaml"
# verify: auth-chain with only cert-auth: refused at config check.
sed -e 's|- provider: key-pin|- provider: cert-auth|' "$D/server.yaml" >"$D/cert-auth-only.yaml"
expect 2 "verify: auth-chain without key-pin refused by config check" "$PZ" config check "$D/cert-auth-only.yaml"
if grep -Eq "cert-auth-only.yaml:[0-9]+:[0-9]+: transports\[0\]\.config\.verify: auth-chain leaves" "$work/err"; then
    ok "config check names FILE:LINE:COL of verify"; echo "# $(grep -E 'config\.verify' "$work/err" | head -1)"
else fail "config check names FILE:LINE:COL of verify"; sed 's/^/#   /' "$work/err"; fi
start key-pin "$D/server.yaml"
expect 0 "key-pin: pinned validator-3 calls sys.ping" "$PZ" rpc call --config "$D/v3.yaml" --peer "$addr" --node-id validator-1 sys.ping
expect_log "key-pin allowed" "$work/key-pin.log" "allowed as validator-3 .* by key-pin"
expect 1 "key-pin: unpinned validator-4 refused" "$PZ" rpc call --config "$D/v4.yaml" --peer "$addr" --node-id validator-1 sys.ping
expect_log "key-pin refused" "$work/key-pin.log" "refused by key-pin: key sha256//[A-Za-z0-9+/=]+ is not pinned \(deny:1\)"
expect 1 "key-pin outbound: server key is not the one pinned for validator-1" \
    "$PZ" rpc call --config "$D/v3-wrongpin.yaml" --peer "$addr" --node-id validator-1 sys.ping
grep -q "authentication refused by key-pin" "$work/err" && ok "dialler refused the server (key-pin)" ||
    { fail "dialler refused the server (key-pin)"; sed 's/^/#   /' "$work/err"; }
stop_all

# ------------------------------------------------------------------------
echo "# psk-token: conf/examples/auth-psk-token.yaml and light-client.yaml"
D="$work/psk-token"
mkdir -p "$D/psk/clients.d"
expect 0 "ca init" "$PZ" ca init --dir "$D/ca"
expect 0 "issue validator-1" "$PZ" cert issue --ca "$D/ca" --node-id validator-1 --node-type validator --out "$D/keys"
cp "$D/ca/ca.crt" "$D/keys/"
pin1=$(pin_of "$D/keys/node.crt")
# light-1's signing and E2E keys (its certificate stays unused).
expect 0 "light-1 keys" "$PZ" cert self-signed --node-id light-1 --node-type light --out "$D/light-1"
sign=$(sed -n 's/^sign_pub: //p' "$work/out")
key_file "$D/psk/light-1.key"
key_file "$D/psk/self.key"
key_file "$D/psk/wrong.key"
sed "s|\"$EX_LIGHT_SIGN\"|\"$sign\"|" "$EX/peers.yaml" >"$D/peers.yaml"
adapt auth-psk-token.yaml "$D" "$D/server.yaml"
start psk-token "$D/server.yaml"
adapt light-client.yaml "$D" "$D/light.yaml" -e "s|$EX_PIN|$pin1|" -e "s|\"192.0.2.1:7401\"|\"$addr\"|"
sed "s|psk/light-1.key|psk/wrong.key|" "$D/light.yaml" >"$D/light-wrong.yaml"
grep -q '^ *cert:' "$D/light.yaml" && fail "light client has no certificate" || ok "light client has no certificate"
expect 0 "psk-token: light-1 (no certificate) calls sys.ping" "$PZ" rpc call --config "$D/light.yaml" --node-id validator-1 sys.ping
expect_log "psk-token allowed" "$work/psk-token.log" "allowed as light-1 \(type light, roles reader\) by psk-token"
expect 1 "psk-token: wrong key refused" "$PZ" rpc call --config "$D/light-wrong.yaml" --node-id validator-1 sys.ping
expect_log "psk-token refused (wrong key)" "$work/psk-token.log" "refused by psk-token: node light-1: token does not verify.*\(deny:4\)"
n_before=$(grep -c "(tls) refused by psk-token" "$work/psk-token.log")
expect 0 "psk-token: a connection with a good token (frame saved)" \
    "$PEER" --config "$D/light.yaml" --peer "$addr" --node-id validator-1 --save "$D/frame.bin" --wait 1000
expect 1 "psk-token: its token replayed on a second connection" \
    "$PEER" --config "$D/light.yaml" --peer "$addr" --node-id validator-1 --replay "$D/frame.bin" --wait 5000
n_after=$(grep -c "(tls) refused by psk-token" "$work/psk-token.log")
[ "$n_after" -eq $((n_before + 1)) ] && ok "replayed token refused by psk-token (deny:4)" ||
    fail "replayed token refused by psk-token ($n_before -> $n_after refusals)"
expect_log "psk-token refused (replayed token)" "$work/psk-token.log" "refused by psk-token: node light-1: token does not verify.*\(deny:4\)"
expect 1 "malformed credentials frame (version 2)" \
    "$PEER" --config "$D/light.yaml" --peer "$addr" --node-id validator-1 --raw 00000006505a43460200 --wait 5000
expect_log "malformed frame refused" "$work/psk-token.log" "refused: malformed credentials frame: version 2 is not supported"
expect 1 "malformed credentials frame (an RPC frame's length)" \
    "$PEER" --config "$D/light.yaml" --peer "$addr" --node-id validator-1 --raw 00100000 --wait 5000
expect_log "oversized frame refused" "$work/psk-token.log" "refused: malformed credentials frame: credentials frame of 1048576 bytes"
stop_all

# ------------------------------------------------------------------------
echo "# unix-peercred: conf/examples/auth-unix-peercred.yaml"
D="$work/unix"
mkdir -p "$D"
expect 0 "validator-1 keys" "$PZ" cert self-signed --node-id validator-1 --out "$D/keys"
uid=$(id -u)
adapt auth-unix-peercred.yaml "$D" "$D/a.yaml" -e "s|/run/prozsec/prozsec.sock|$D/a.sock|" -e "s|uids: \[0, 1000\]|uids: [$uid]|"
# The same daemon listing only another uid: this client is refused.
adapt auth-unix-peercred.yaml "$D" "$D/b.yaml" -e "s|/run/prozsec/prozsec.sock|$D/b.sock|" \
    -e "s|uids: \[0, 1000\]|uids: [$((uid + 1))]|"
start unix-a "$D/a.yaml"
start unix-b "$D/b.yaml"
expect 0 "unix-peercred: uid $uid calls sys.ping" \
    "$PZ" rpc call --config "$D/a.yaml" --peer "$D/a.sock" --transport unix --node-id validator-1 sys.ping
expect_log "unix-peercred allowed" "$work/unix-a.log" "allowed as validator-1 \(type local, roles admin\) by unix-peercred"
expect 1 "unix-peercred: uid $uid refused where only $((uid + 1)) is listed" \
    "$PZ" rpc call --config "$D/a.yaml" --peer "$D/b.sock" --transport unix --node-id validator-1 sys.ping
expect_log "unix-peercred refused" "$work/unix-b.log" "refused by unix-peercred: .*\(deny:[0-9]+\)"
stop_all

exit 0
