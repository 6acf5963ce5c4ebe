#!/bin/sh
# tests/integration/faults.sh — fault tests against a real prozsecd (issue 9):
#
#   1. kill -9 while the daemon saves bans and scores: a ban storm over the
#      admin socket (tests/abuse-client ban-storm: every ban and unban saves
#      reputation.db) and kill -9 at varied moments, a bounded number of
#      times; each restart must load a whole file (no "not loaded" warning,
#      no reputation.db.bad) in which every ban and unban the storm had
#      acknowledged is in force (tests/abuse-client ban-check): the old or
#      the new content, never a torn one;
#   2. a plugin whose init fails, a plugin that crashes while loading, a
#      plugin named in the configuration but missing: the daemon exits
#      non-zero with one clear message, nothing listens, no process stays,
#      the state file is untouched; `prozsec plugins list` survives the
#      crashing plugin;
#   3. a full disk while saving state (tests/integration/enospc-shim.so,
#      LD_PRELOAD): the failure is logged, the ban still holds, the daemon
#      keeps serving, the previous file is kept byte for byte, also by the
#      final save at SIGTERM.
#
# Every process started is stopped by its pid; every wait is bounded.
set -u
: "${top_builddir:=$(pwd)}"
PZ="$top_builddir/prozsec"
PZD="$top_builddir/prozsecd"
AC="$top_builddir/tests/abuse-client"
SHIM="$top_builddir/tests/integration/.libs/enospc-shim.so"
FIX="$top_builddir/tests/fixtures/plugins/.libs"
: "${PROZSEC_PLUGIN_PATH:=$top_builddir/plugins/.libs}"
export PROZSEC_PLUGIN_PATH
for b in "$PZ" "$PZD" "$AC"; do [ -x "$b" ] || { echo "ERROR: $b is not built"; exit 99; }; done
[ -f "$SHIM" ] || { echo "ERROR: $SHIM is not built"; exit 99; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pz-faults.XXXXXX") || exit 99
W="$work"
pid=""
bg=""
. "$(dirname "$0")/checks.sh"
cleanup() {
    stop_pid "$bg"
    stop_pid "$pid"
    if [ "$fails" -eq 0 ]; then rm -rf "$work"; else echo "# work directory kept: $work"; fi
}
trap cleanup EXIT
trap 'exit 99' INT TERM

is_asan() { ldd "$PZD" 2>/dev/null | grep -q libasan; }

# --- PKI and configuration ---------------------------------------------------
"$PZ" ca init --dir "$W/ca" >/dev/null || { echo "ERROR: ca init"; exit 99; }
for n in node-1 node-3 rex; do
    "$PZ" cert issue --ca "$W/ca" --node-id $n --node-type validator --out "$W/$n" >/dev/null ||
        { echo "ERROR: cert issue $n"; exit 99; }
done
DATA="$W/node-1/data"
mkdir -p "$DATA"
# config FILE [EXTRA-RATE-LIMITER-ENTRY]: node-1's configuration; the extra
# entry (a provider name) is appended to dos.rate_limiters.
config() {
    cat >"$1" <<EOF
node:
  id: node-1
  type: validator
  data_dir: $DATA
  key_dir: $W/node-1
plugins:
  path: [$FIX]
transports:
  - provider: tls
    listen: 127.0.0.1:0
    config:
      cert: $W/node-1/node.crt
      key: $W/node-1/node.key
      ca: $W/ca/ca.crt
  - provider: unix
    name: admin
    listen: $W/node-1/admin.sock
    config:
      mode: "0600"
auth:
  chain:
    - provider: cert-auth
      control: sufficient
      config: {ca_file: $W/ca/ca.crt, cert_file: $W/node-1/node.crt}
    - provider: unix-peercred
      control: sufficient
      config:
        uids: [$(id -u)]
        identity: {node_id: node-1, node_type: admin, roles: [admin]}
authorization:
  rules:
    - methods: ["admin.*"]
      allow: {roles: [admin]}
    - methods: ["sys.*"]
      allow: {node_types: [validator]}
dos:
  save_interval: 1s
  connection_limiters:
    - provider: conn-limit
    - provider: reputation
      config: {data_dir: $DATA}
  rate_limiters:
    - provider: token-bucket
      config: {key: peer, capacity: 100000, refill_per_second: 100000}
EOF
    if [ $# -gt 1 ]; then printf '    - provider: %s\n' "$2" >>"$1"; fi
}
config "$W/node-1.yaml"
cat >"$W/node-3.yaml" <<EOF
node:
  id: node-3
  type: validator
  data_dir: $W/node-3
  key_dir: $W/node-3
transports:
  - provider: tls
    config: {cert: $W/node-3/node.crt, key: $W/node-3/node.key, ca: $W/ca/ca.crt}
auth:
  chain:
    - provider: cert-auth
      control: sufficient
      config: {ca_file: $W/ca/ca.crt, cert_file: $W/node-3/node.crt}
EOF

# start LOG [ENV...]: start prozsecd on node-1.yaml (log level info) with the
# environment ENV; waits (bounded) for its ready file. 0 when it is ready.
start() {
    log=$1; shift
    rm -f "$W/ready"
    env "$@" "$PZD" --config "$W/node-1.yaml" --ready-file "$W/ready" --log-level info >"$log" 2>&1 &
    pid=$!
    i=0
    while [ ! -s "$W/ready" ]; do
        if ! kill -0 "$pid" 2>/dev/null || [ $i -ge 200 ]; then
            wait "$pid" 2>/dev/null; pid=""; return 1
        fi
        sleep 0.1; i=$((i + 1))
    done
    addr=$(head -n 1 "$W/ready")
    return 0
}
# loaded LOG: the record count the reputation provider loaded (0: no file)
loaded() { sed -n 's/.*reputation\.db: loaded \([0-9]*\) records.*/\1/p' "$1" | tail -n 1; }
AC_ADMIN="--admin-config $W/node-1.yaml --admin-sock $W/node-1/admin.sock"

# --- 1. kill -9 during saves -------------------------------------------------
# ban_check START BANS UNBANS WHAT: every change of that storm is in force
ban_check() {
    # shellcheck disable=SC2086
    Lc=$("$AC" ban-check $AC_ADMIN --start "$1" --count "$2" --unbans "$3" 2>"$W/check.err" | grep '^ABUSE ban-check')
    echo "$Lc"
    check "$4: every acknowledged ban and unban of p-$1.. in force (wrong: $(val wrong "$Lc"))" \
        "$(val wrong "$Lc")" = 0
}
delays="0.15 0.6 0.3 0.9 0.45 0.2 0.75 0.35"
rounds=0; next=0; interrupted=0; storms=""
for d in $delays; do
    rounds=$((rounds + 1))
    if ! start "$W/kill-$rounds.log"; then
        fail "kill -9 round $rounds: restart"; sed 's/^/#   /' "$W/kill-$rounds.log"; break
    fi
    n=$(loaded "$W/kill-$rounds.log"); echo "# round $rounds: restart loaded ${n:-0} records"
    grep -q "not loaded" "$W/kill-$rounds.log" &&
        { fail "kill -9 round $rounds: a torn file was found"; sed 's/^/#   /' "$W/kill-$rounds.log"; }
    [ -e "$DATA/reputation.db.bad" ] && fail "kill -9 round $rounds: reputation.db.bad exists"
    [ -n "$storms" ] && ban_check $last "kill -9 round $rounds"
    # shellcheck disable=SC2086
    "$AC" ban-storm $AC_ADMIN --start "$next" --count 2000 >"$W/storm-$rounds.out" 2>"$W/storm-$rounds.err" &
    bg=$!
    sleep "$d"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    pid=""
    i=0
    while kill -0 "$bg" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    stop_pid "$bg"; bg=""
    L=$(grep '^ABUSE ban-storm' "$W/storm-$rounds.out")
    echo "$L"
    [ -e "$DATA/reputation.db.tmp" ] && interrupted=$((interrupted + 1))
    last="$next $(val acked_bans "$L") $(val acked_unbans "$L")"
    storms="$storms$last;"
    next=$((next + 2000))
done
if start "$W/kill-final.log"; then
    echo "# final restart loaded $(loaded "$W/kill-final.log") records"
    grep -q "not loaded" "$W/kill-final.log" && fail "final restart: a torn file was found"
    [ -e "$DATA/reputation.db.bad" ] && fail "final restart: reputation.db.bad exists"
    # Every round's acknowledged changes, not only the last one's.
    IFS=';'
    for s in $storms; do
        IFS=' '
        # shellcheck disable=SC2086
        [ -n "$s" ] && ban_check $s "kill -9 final restart"
        IFS=';'
    done
    IFS=' '
    echo "# kill -9: $rounds rounds, $interrupted killed during a save (an unfinished temporary file, removed at start)"
    stop_pid "$pid"; pid=""
else
    fail "kill -9: final restart"; sed 's/^/#   /' "$W/kill-final.log"
fi

# --- 1b. an automatic ban, then kill -9 --------------------------------------
# rex replays and re-targets signed calls until the reputation provider bans
# it by itself (no admin call, so nothing asks for a save), then the daemon
# is killed.
if start "$W/autoban.log"; then
    # shellcheck disable=SC2086
    "$AC" replay --server "$addr" --server-id node-1 --ca "$W/ca/ca.crt" --as rex --as-dir "$W/rex" \
        --src 127.0.6.1 >"$W/replay.out" 2>&1
    i=0
    while ! grep -q "banned node rex" "$W/autoban.log" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    grep -q "banned node rex" "$W/autoban.log" && ok "automatic ban: rex banned by its reputation" ||
        { fail "automatic ban: rex banned by its reputation"; sed 's/^/#   /' "$W/replay.out"; }
    # dos.save_interval is 1s here: wait (bounded) for a save after the ban.
    touch "$W/banned.mark"
    i=0
    while [ -z "$(find "$DATA/reputation.db" -newer "$W/banned.mark" 2>/dev/null)" ] && [ $i -lt 100 ]; do
        sleep 0.1; i=$((i + 1))
    done
    kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""
    if start "$W/autoban2.log"; then
        # shellcheck disable=SC2086
        Lp=$("$AC" peer-info $AC_ADMIN --as rex 2>/dev/null | grep '^ABUSE peer-info')
        echo "$Lp"
        check "automatic ban: survives kill -9 (rex is $(val status "$Lp") after the restart; saved by dos.save_interval)" \
            "$(val status "$Lp")" = blocked
        stop_pid "$pid"; pid=""
    else
        fail "automatic ban: restart"
    fi
else
    fail "automatic ban: start"
fi

# --- 2. plugins that cannot be loaded ----------------------------------------
cp "$DATA/reputation.db" "$W/state.before"
# refused NAME PROVIDER MESSAGE-REGEX: the daemon must refuse to start
refused() {
    name=$1
    config "$W/node-1.yaml" "$2"
    rm -f "$W/node-1/admin.sock"
    if start "$W/$name.log"; then
        fail "$name: the daemon started"; stop_pid "$pid"; pid=""
    else
        ok "$name: the daemon refused to start"
    fi
    # start() reaped it; its exit status is in the log's absence of "listening"
    grep -Eq -- "$3" "$W/$name.log" && ok "$name: message /$3/" ||
        { fail "$name: message /$3/"; sed 's/^/#   /' "$W/$name.log"; }
    grep -q "listening on" "$W/$name.log" && fail "$name: something listened"
    [ -e "$W/node-1/admin.sock" ] && fail "$name: the admin socket exists"
    [ -s "$W/ready" ] && fail "$name: the ready file was written"
    cmp -s "$DATA/reputation.db" "$W/state.before" && ok "$name: state file untouched" ||
        fail "$name: state file untouched"
}
refused "init fails" bad-init "bad-init\\.so: init failed: fixture refuses to start: no licence key configured"
refused "missing plugin" no-such-limiter "no-such-limiter.*not found"
# The crashing plugin: the loader tries each plugin in a child process first
# (PZ_LOADER_PROBE), so the daemon refuses it by name and exits 2.
config "$W/node-1.yaml" bad-ctor-crash
rm -f "$W/node-1/admin.sock" "$W/ready"
"$PZD" --config "$W/node-1.yaml" --ready-file "$W/ready" >"$W/crash.log" 2>&1 &
pid=$!
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$pid" 2>/dev/null; then
    fail "crashing plugin: the daemon still runs"; stop_pid "$pid"
else
    wait "$pid"; st=$?
    check "crashing plugin: the daemon exited non-zero (status $st)" "$st" -ne 0
fi
pid=""
[ -e "$W/node-1/admin.sock" ] && fail "crashing plugin: the admin socket exists"
[ -s "$W/ready" ] && fail "crashing plugin: the ready file was written"
cmp -s "$DATA/reputation.db" "$W/state.before" && ok "crashing plugin: state file untouched" ||
    fail "crashing plugin: state file untouched"
grep -q 'bad-ctor-crash\.so: crashed while loading' "$W/crash.log" &&
    ok "crashing plugin: the daemon's error names the plugin" ||
    { fail "crashing plugin: the daemon's error names the plugin"; sed 's/^/#   /' "$W/crash.log"; }
"$PZ" config check "$W/node-1.yaml" >"$W/check.out" 2>&1
st=$?
check "crashing plugin: prozsec config check exits non-zero (status $st)" "$st" -ne 0
grep -q 'bad-ctor-crash\.so: crashed while loading' "$W/check.out" &&
    ok "crashing plugin: config check names the plugin" ||
    { fail "crashing plugin: config check names the plugin"; sed 's/^/#   /' "$W/check.out"; }
"$PZ" plugins list --path "$FIX" >"$W/list.out" 2>&1
st=$?
check "plugins list survives the crashing plugin (exit $st: some refused)" "$st" -eq 1
grep -q "bad-ctor-crash\.so: crashed while loading" "$W/list.out" && ok "plugins list names the crash" ||
    { fail "plugins list names the crash"; sed 's/^/#   /' "$W/list.out"; }
grep -q "^test-ratelimit " "$W/list.out" && ok "plugins list still lists the others" ||
    fail "plugins list still lists the others"
config "$W/node-1.yaml"

# --- 3. disk full while saving -----------------------------------------------
FLAG="$W/disk-full"
pre="LD_PRELOAD=$SHIM"
is_asan && pre="$pre ASAN_OPTIONS=verify_asan_link_order=0:${ASAN_OPTIONS:-}"
# shellcheck disable=SC2086
if start "$W/enospc.log" $pre PZ_ENOSPC_FLAG="$FLAG"; then
    "$PZ" peer ban --config "$W/node-1.yaml" --duration 1h full-0 >/dev/null 2>&1
    cp "$DATA/reputation.db" "$W/state.before"
    touch "$FLAG"
    "$PZ" peer ban --config "$W/node-1.yaml" --duration 1h node-3 >"$W/ban.out" 2>&1
    st=$?
    check "disk full: the ban is accepted (exit $st)" "$st" -eq 0
    grep -q "No space left on device" "$W/enospc.log" && ok "disk full: the failed save is logged" ||
        { fail "disk full: the failed save is logged"; sed 's/^/#   /' "$W/enospc.log" "$W/ban.out"; }
    cmp -s "$DATA/reputation.db" "$W/state.before" && ok "disk full: the previous file is kept" ||
        fail "disk full: the previous file is kept"
    [ -e "$DATA/reputation.db.tmp" ] && fail "disk full: the temporary file is left behind"
    "$PZ" rpc call --config "$W/node-3.yaml" --peer "$addr" --node-id node-1 sys.ping >"$W/call.out" 2>&1
    check "disk full: the ban holds in memory (node-3 refused)" "$?" -ne 0
    "$PZ" peer unban --config "$W/node-1.yaml" node-3 >"$W/unban.out" 2>&1
    check "disk full: the unban is accepted" "$?" -eq 0
    "$PZ" rpc call --config "$W/node-3.yaml" --peer "$addr" --node-id node-1 sys.ping >"$W/call.out" 2>&1
    check "disk full: the daemon keeps serving node-3" "$?" -eq 0
    kill "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    wait "$pid"; st=$?
    pid=""
    check "disk full: SIGTERM exits cleanly (status $st)" "$st" -eq 0
    grep -q "saving DoS state" "$W/enospc.log" && ok "disk full: the failed final save is logged" ||
        fail "disk full: the failed final save is logged"
    cmp -s "$DATA/reputation.db" "$W/state.before" && ok "disk full: the previous file survives the final save" ||
        fail "disk full: the previous file survives the final save"
    rm -f "$FLAG"
    if start "$W/after.log"; then
        grep -q "not loaded" "$W/after.log" && fail "disk full: the kept file loads"
        ok "disk full: restart with the kept file ($(loaded "$W/after.log") records)"
        stop_pid "$pid"; pid=""
    else
        fail "disk full: restart"
    fi
else
    fail "disk full: start under the shim"; sed 's/^/#   /' "$W/enospc.log"
fi

# Sanitizer builds: no report in any daemon's log (killed ones excepted,
# they never reach their exit checks).
for f in "$W"/*.log; do
    if grep -q "Sanitizer\|runtime error" "$f"; then
        fail "sanitizer report in $(basename "$f")"; grep -A20 "Sanitizer\|runtime error" "$f" | sed 's/^/#   /'
    fi
done
echo "# $fails failed"
[ "$fails" -eq 0 ] || exit 1
exit 0
