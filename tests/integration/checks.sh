# tests/integration/checks.sh — sourced by the daemon-level integration
# scripts (abuse.sh, faults.sh): TAP-style result lines and stopping a
# process by its pid. The sourcing script counts failures in $fails.

fails=0
ok() { echo "ok - $1"; }
fail() { echo "not ok - $1"; fails=$((fails + 1)); }
check() { # check NAME CONDITION...: the condition is a test(1) expression
    name=$1; shift
    if [ "$@" ]; then ok "$name"; else fail "$name"; fi
}
# val KEY LINE: the value of KEY=... in a "KEY=value KEY=\"value\"" line (quotes removed)
val() {
    printf '%s\n' "$2" | sed -n "s/.* $1=\"\([^\"]*\)\".*/\1/p; t; s/.* $1=\([^ ]*\).*/\1/p"
}
stop_pid() { # stop_pid PID: TERM, up to 10 s, then KILL; reaps it. No-op for ""
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
