#!/bin/bash
# tests/integration/unix-transport.sh — the unix transport through the core
# loader: echo over a socket whose mode comes from configuration, SO_PEERCRED
# credentials (uid, gid, pid), stale socket replacement, refusal to replace
# a live socket or a non-socket, removal on close.
. "$(dirname "$0")/tls-common.sh"
[ -x "$ECHO" ] || { echo "# SKIP: $ECHO not built"; exit 77; }
[ -f "$PROZSEC_PLUGIN_PATH/unix.so" ] || { echo "# SKIP: unix.so not built"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "# SKIP: python3 not installed"; exit 77; }

sock="$work/run/pz.sock"
mkdir -m 0700 "$work/run"
printf 'path: %s\nmode: "0660"\ngroup: "%s"\n' "$sock" "$(id -g)" >"$work/unix.yaml"

start_unix() {
    OUT="$work/$1.out" LOG="$work/$1.log"
    "$ECHO" --plugin unix --config "$work/unix.yaml" --listen "" --lifetime 120 >"$OUT" 2>"$LOG" &
    UPID=$!
    pids="$pids $UPID"
    i=0
    while ! grep -q '^LISTENING' "$OUT" && [ $i -lt 100 ]; do
        kill -0 "$UPID" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
}

start_unix a
[ -S "$sock" ] && ok "socket created at the configured path" || not_ok "no socket at $sock: $(cat "$LOG")"
mode=$(stat -c %a "$sock")
[ "$mode" = 660 ] && ok "socket mode 0660 from configuration" || not_ok "socket mode $mode"
[ "$(stat -c %g "$sock")" = "$(id -g)" ] && ok "socket group from configuration" || not_ok "socket group"
[ -z "$(ls -A "$work/run" | grep -v '^pz.sock$')" ] && ok "no temporary files left next to it" ||
    not_ok "leftovers: $(ls -A "$work/run")"

mark
timeout 20 "$ECHO" --plugin unix --config "$work/unix.yaml" --connect "$sock" --message hi-unix >"$work/client.txt" 2>&1
grep -q '^ECHO hi-unix$' "$work/client.txt" && ok "echo over the unix transport" || not_ok "echo: $(cat "$work/client.txt")"
wait_result
case "$RESULT" in
"PEER unix transport=unix certs=0 uid=$(id -u) gid=$(id -g) pid="[0-9]*) ok "server sees SO_PEERCRED uid/gid/pid" ;;
*) not_ok "peer credentials: $RESULT" ;;
esac
cpid=$(grep '^PEER ' "$work/client.txt" | sed 's/.* pid=\([0-9]*\).*/\1/')
[ "$cpid" = "$UPID" ] && ok "client sees the server's pid ($cpid)" || not_ok "client saw pid $cpid, server is $UPID"

# A second listener on a live socket is refused.
"$ECHO" --plugin unix --config "$work/unix.yaml" --listen "" --lifetime 2 >"$work/b.out" 2>"$work/b.log"
grep -q 'is in use by a running listener' "$work/b.log" && ok "live socket not replaced" ||
    not_ok "live socket: $(cat "$work/b.log")"

# Closing removes the socket; a stale one (no listener) is replaced.
kill "$UPID"
wait "$UPID" 2>/dev/null
[ ! -e "$sock" ] && ok "socket removed when the listener closes" || not_ok "socket left behind"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$sock"
[ -S "$sock" ] || fatal "could not make a stale socket"
start_unix c
grep -q 'replacing stale socket' "$LOG" && grep -q '^LISTENING' "$OUT" && ok "stale socket replaced" ||
    not_ok "stale socket: $(cat "$LOG")"
kill "$UPID"
wait "$UPID" 2>/dev/null

# Something that is not a socket is never removed.
echo keep >"$sock"
"$ECHO" --plugin unix --config "$work/unix.yaml" --listen "" --lifetime 2 >"$work/d.out" 2>"$work/d.log"
grep -q 'exists and is not a socket' "$work/d.log" && [ "$(cat "$sock")" = keep ] &&
    ok "regular file at the path left alone" || not_ok "non-socket: $(cat "$work/d.log")"
rm -f "$sock"

# Configuration refusals carry FILE:LINE:COL.
printf 'path: %s\nmode: "0777x"\n' "$sock" >"$work/bad.yaml"
"$ECHO" --plugin unix --config "$work/bad.yaml" --listen "" --lifetime 1 >/dev/null 2>"$work/bad.err"
grep -q 'bad.yaml:2:7: .*"0777x": expected octal permissions' "$work/bad.err" && ok "bad mode refused at 2:7" ||
    not_ok "bad mode: $(cat "$work/bad.err")"
printf 'path: %s\nowner: no-such-user-pz\n' "$sock" >"$work/bad.yaml"
"$ECHO" --plugin unix --config "$work/bad.yaml" --listen "" --lifetime 1 >/dev/null 2>"$work/bad.err"
grep -q 'bad.yaml:2:8: .*"no-such-user-pz": no such user' "$work/bad.err" && ok "unknown owner refused at 2:8" ||
    not_ok "bad owner: $(cat "$work/bad.err")"
printf 'path: relative.sock\n' >"$work/bad.yaml"
"$ECHO" --plugin unix --config "$work/bad.yaml" --listen "" --lifetime 1 >/dev/null 2>"$work/bad.err"
grep -q 'bad.yaml:1:7: .*expected an absolute socket path' "$work/bad.err" && ok "relative path refused at 1:7" ||
    not_ok "relative path: $(cat "$work/bad.err")"

finish
