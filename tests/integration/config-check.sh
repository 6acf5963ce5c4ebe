#!/bin/sh
# tests/integration/config-check.sh — `prozsec config check` on the fixtures
# in tests/integration/data/config/ and on conf/prozsec.yaml: exit codes,
# and every error at its exact FILE:LINE:COL.
#
# Environment (set by `make check`; defaults for running by hand from the
# build directory): top_builddir, top_srcdir, PROZSEC_PLUGIN_PATH.
set -eu
LC_ALL=C
export LC_ALL

: "${top_builddir:=$(pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${PROZSEC_PLUGIN_PATH:=$top_builddir/plugins/.libs}"
export PROZSEC_PLUGIN_PATH

PROZSEC="$top_builddir/prozsec"
DATA="$top_srcdir/tests/integration/data/config"
CERTFIX="$top_builddir/tests/certfix"

work=$(mktemp -d "${TMPDIR:-/tmp}/pz-config-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 99' INT TERM

fails=0
checks=0
out=""
rc=0

# run ARGS...: run `prozsec config check ARGS`, keep stdout+stderr in $out
# and the exit code in $rc.
run() {
    rc=0
    out=$("$PROZSEC" config check "$@" 2>&1) || rc=$?
}

ok() {
    checks=$((checks + 1))
    echo "ok $checks - $1"
}

not_ok() {
    checks=$((checks + 1))
    fails=$((fails + 1))
    echo "not ok $checks - $1"
    printf '%s\n' "$out" | sed 's/^/#   /'
}

# expect_rc CODE DESCRIPTION
expect_rc() {
    if [ "$rc" -eq "$1" ]; then ok "$2 (exit $1)"; else not_ok "$2: exit $rc, want $1"; fi
}

# expect_line TEXT DESCRIPTION: some output line is exactly TEXT
expect_line() {
    if printf '%s\n' "$out" | grep -Fqx -- "$1"; then ok "$2"; else not_ok "$2: no line '$1'"; fi
}

# expect_lines N DESCRIPTION: the output has exactly N lines
expect_lines() {
    n=$(printf '%s\n' "$out" | grep -c '')
    if [ "$n" -eq "$1" ]; then ok "$2"; else not_ok "$2: $n lines, want $1"; fi
}

# all_positioned FILE DESCRIPTION: every line starts with FILE:LINE:COL:
all_positioned() {
    if printf '%s\n' "$out" | grep -v -- "^$1:[0-9][0-9]*:[0-9][0-9]*: " >/dev/null; then
        not_ok "$2: a line without $1:LINE:COL"
    else
        ok "$2"
    fi
}

if [ ! -x "$PROZSEC" ]; then
    echo "# $PROZSEC not built"
    exit 99
fi

# Run from the fixture directory so messages name the files as given.
cd "$DATA"

# A good file: every provider loaded, instantiated and satisfied.
run good.yaml
expect_rc 0 "good.yaml passes"
expect_line "good.yaml: OK" "good.yaml prints FILE: OK"
expect_lines 1 "good.yaml prints one line"

# Misspelt keys: a core section and a provider's key, each at its key.
run misspelt.yaml
expect_rc 2 "misspelt.yaml fails"
expect_line 'misspelt.yaml:4:1: lgo: unknown key (did you mean "log"?)' "misspelt section name at 4:1"
expect_line 'misspelt.yaml:11:9: dos.rate_limiters[0].config.refill_per_secnd: unknown key (did you mean "refill_per_second"?)' \
    "misspelt provider key at 11:9"
expect_lines 2 "misspelt.yaml: exactly the two errors"
all_positioned misspelt.yaml "misspelt.yaml: every error has FILE:LINE:COL"

# Broken YAML: one error, at the line and column of the problem.
run broken.yaml
expect_rc 2 "broken.yaml fails"
expect_line "broken.yaml:7:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 5, column 18)" \
    "broken YAML reported at 7:1"
expect_lines 1 "broken.yaml: one error"

# --syntax-only does not save broken YAML.
run --syntax-only broken.yaml
expect_rc 2 "broken.yaml fails --syntax-only"

# Every problem at once: core sections, a missing plugin, a provider's value.
run many-errors.yaml
expect_rc 2 "many-errors.yaml fails"
expect_line 'many-errors.yaml:2:7: node.id: expected a node id: 1 to 64 of A-Z a-z 0-9 . _ -, found "not a valid id"' \
    "bad node id at 2:7"
expect_line 'many-errors.yaml:2:3: node: missing key "type" (a node type: 1 to 32 of a-z 0-9 _ -)' "missing node.type"
expect_line 'many-errors.yaml:4:10: log.level: expected debug, info, notice, warning or error, found "loud"' \
    "bad log level at 4:10"
expect_line 'many-errors.yaml:8:15: dos.connection_limiters[0].shadow: expected true or false, found "sometimes"' \
    "bad shadow at 8:15"
if printf '%s\n' "$out" | grep -q '^many-errors.yaml:10:17: dos.rate_limiters\[0\].provider: ratelimit provider "no-such-limiter" cannot be loaded: '; then
    ok "missing plugin blamed on its provider key at 10:17"
else
    not_ok "missing plugin blamed on its provider key at 10:17"
fi
if printf '%s\n' "$out" | grep -q '^many-errors.yaml:12:26: dos.rate_limiters\[1\].config.capacity: expected a number between .*, found "lots"$'; then
    ok "the provider's own error at 12:26"
else
    not_ok "the provider's own error at 12:26"
fi
expect_lines 6 "many-errors.yaml: all six errors"
all_positioned many-errors.yaml "many-errors.yaml: every error has FILE:LINE:COL"

# --syntax-only checks the core sections but loads no plugin.
run --syntax-only many-errors.yaml
expect_rc 2 "many-errors.yaml fails --syntax-only"
expect_lines 4 "--syntax-only: the four core errors, no provider ones"

# A missing file: one line, exit 2.
run "$work/absent.yaml"
expect_rc 2 "a missing file fails"
expect_line "$work/absent.yaml: cannot open: No such file or directory" "a missing file is one line"
expect_lines 1 "a missing file: one line only"

# Usage errors.
run
expect_rc 2 "no FILE is a usage error"
run good.yaml misspelt.yaml
expect_rc 2 "two FILEs is a usage error"
run --no-such-option good.yaml
expect_rc 2 "an unknown option is a usage error"

# --plugin-path finds plugins without $PROZSEC_PLUGIN_PATH.
plugdir=$PROZSEC_PLUGIN_PATH
rc=0
out=$(unset PROZSEC_PLUGIN_PATH; "$PROZSEC" config check --plugin-path "$plugdir" good.yaml 2>&1) || rc=$?
expect_rc 0 "--plugin-path DIR is searched"

# The documented default: syntax and core sections as shipped...
run --syntax-only "$top_srcdir/conf/prozsec.yaml"
expect_rc 0 "conf/prozsec.yaml passes --syntax-only"
# ...and in full once its key files exist (fixture certificates stand in
# for /etc/prozsec/keys).
if [ -x "$CERTFIX" ] && "$CERTFIX" "$work/keys" >/dev/null 2>&1; then
    sed -e "s|/etc/prozsec/keys/node|$work/keys/server|g" \
        -e "s|/etc/prozsec/keys/ca|$work/keys/ca|g" \
        -e "s|/run/prozsec/|$work/|" \
        "$top_srcdir/conf/prozsec.yaml" >"$work/prozsec.yaml"
    run "$work/prozsec.yaml"
    expect_rc 0 "conf/prozsec.yaml passes in full with its key files"
else
    echo "# skipped the full check of conf/prozsec.yaml: tests/certfix not built"
fi

echo "1..$checks"
[ "$fails" -eq 0 ]
