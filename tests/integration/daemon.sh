#!/bin/sh
# tests/integration/daemon.sh — real prozsecd daemons on 127.0.0.1, set up by
# `prozsec demo --keep-running` (which must itself succeed), then driven with
# `prozsec rpc call`, `peer list`, `stats`, `reload`, SIGHUP and a revocation.
# Everything started is stopped by its pid; every wait is bounded.
set -u
: "${top_builddir:=$(pwd)}"
PZ="$top_builddir/prozsec"
work=$(mktemp -d "${TMPDIR:-/tmp}/pz-daemon.XXXXXX") || exit 99
demo_pid=""
fails=0
cleanup() {
    if [ -n "$demo_pid" ]; then
        kill "$demo_pid" 2>/dev/null
        i=0
        while kill -0 "$demo_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$demo_pid" 2>/dev/null
    fi
    if [ "$fails" -eq 0 ]; then rm -rf "$work"; else echo "# work directory kept: $work"; fi
}
trap cleanup EXIT
trap 'exit 99' INT TERM

ok() { echo "ok - $1"; }
fail() { echo "not ok - $1"; fails=$((fails + 1)); }
# expect CODE NAME CMD...: run CMD, check its exit code
expect() {
    want=$1; name=$2; shift 2
    "$@" >"$work/out" 2>"$work/err"; got=$?
    if [ "$got" -eq "$want" ]; then ok "$name"; else
        fail "$name (exit $got, wanted $want)"; sed 's/^/#   /' "$work/out" "$work/err"; fi
}

"$PZ" demo --dir "$work/net" --keep-running >"$work/demo.out" 2>&1 &
demo_pid=$!
i=0
while ! grep -q "keep running" "$work/demo.out" 2>/dev/null; do
    if ! kill -0 "$demo_pid" 2>/dev/null || [ $i -ge 600 ]; then
        echo "not ok - demo did not come up"; sed 's/^/#   /' "$work/demo.out"; fails=1; exit 1
    fi
    sleep 0.1; i=$((i + 1))
done
sed 's/^/# /' "$work/demo.out"
grep -q "the demo did not go as expected" "$work/demo.out" && fail "demo summary" || ok "demo summary"
N="$work/net"
addr2=$(sed -n 's/^node node-2 listening on //p' "$work/demo.out")
pid2=$(cat "$N/node-2.pid" 2>/dev/null || pgrep -f "prozsecd --config $N/node-2.yaml")

expect 0 "signed call node-1 -> node-2" "$PZ" rpc call --config "$N/node-1.yaml" --peer "$addr2" --node-id node-2 sys.ping
grep -q '"node" : "node-2"' "$work/out" && ok "answer names node-2" || fail "answer names node-2"
expect 1 "wrong node id refused in the handshake" "$PZ" rpc call --config "$N/node-1.yaml" --peer "$addr2" --node-id node-3 sys.ping
grep -q "unexpected-node" "$work/err" && ok "reason: unexpected-node" || fail "reason: unexpected-node"
expect 1 "admin.* refused over TLS" "$PZ" rpc call --config "$N/node-1.yaml" --peer "$addr2" --node-id node-2 admin.stats
grep -q "unauthorized" "$work/err" && ok "reason: unauthorized" || fail "reason: unauthorized"
expect 1 "unknown method refused" "$PZ" rpc call --config "$N/node-1.yaml" --peer "$addr2" --node-id node-2 no.such.method
expect 2 "bad JSON parameters" "$PZ" rpc call --config "$N/node-1.yaml" --peer "$addr2" --node-id node-2 sys.ping '{oops'
expect 0 "peer list over the admin socket" "$PZ" peer list --config "$N/node-2.yaml"
expect 0 "stats over the admin socket" "$PZ" stats --config "$N/node-2.yaml"
grep -q "prozsec_dos_refusals_total" "$work/out" && ok "stats show refusals" || fail "stats show refusals"
expect 0 "ban a node" "$PZ" peer ban --config "$N/node-2.yaml" --duration 1h node-3
expect 0 "unban it" "$PZ" peer unban --config "$N/node-2.yaml" node-3

# A broken file on SIGHUP: the running configuration stays.
cp "$N/node-2.yaml" "$work/node-2.good"
printf 'bogus_key: 1\n' >>"$N/node-2.yaml"
kill -HUP "$pid2"
i=0
while ! grep -q "reload refused" "$N/node-2.log" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q "reload refused" "$N/node-2.log" && ok "broken reload refused and logged" || fail "broken reload refused and logged"
grep -q "bogus_key: unknown key" "$N/node-2.log" && ok "reload error names the key" || fail "reload error names the key"
cp "$work/node-2.good" "$N/node-2.yaml"
expect 0 "old configuration still serves" "$PZ" rpc call --config "$N/node-1.yaml" --peer "$addr2" --node-id node-2 sys.ping

# New limits through `prozsec reload`: a tiny bucket.
sed -e 's/capacity: 40/capacity: 2/' -e 's/refill_per_second: 10/refill_per_second: 0.01/' "$work/node-2.good" >"$N/node-2.yaml"
expect 0 "reload with new limits" "$PZ" reload --config "$N/node-2.yaml"
limited=0
for k in 1 2 3 4 5; do
    "$PZ" rpc call --config "$N/node-3.yaml" --peer "$addr2" --node-id node-2 sys.ping >/dev/null 2>"$work/err" ||
        { grep -q rate_limited "$work/err" && limited=$((limited + 1)); }
done
[ "$limited" -ge 1 ] && ok "new limits apply ($limited of 5 rate-limited)" || fail "new limits apply"
cp "$work/node-2.good" "$N/node-2.yaml"

# Revoke node-1 and reload node-2: node-1 is refused from then on.
expect 0 "revoke node-1" "$PZ" cert revoke --ca "$N/ca" "$N/node-1/node.crt"
expect 0 "reload with the new CRL" "$PZ" reload --config "$N/node-2.yaml"
# (node-1's own tool would refuse its revoked certificate: use a copy of its
# configuration that does not load the CRL, as an attacker's would)
grep -v 'crl' "$N/node-1.yaml" >"$N/node-1-nocrl.yaml"
expect 1 "revoked node refused by node-2" "$PZ" rpc call --config "$N/node-1-nocrl.yaml" --peer "$addr2" --node-id node-2 sys.ping
grep -q "node-1.*revoked\|revoked.*node-1\|revoked" "$N/node-2.log" && ok "node-2 logged the revocation" || fail "node-2 logged the revocation"

[ "$fails" -eq 0 ] || exit 1
exit 0
