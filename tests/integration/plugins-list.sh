#!/bin/sh
# tests/integration/plugins-list.sh — `prozsec plugins list` over the
# fixture plugins: every good fixture listed with its kind, every bad one
# refused with its reason, the crashing one reported (and the tool still
# standing), exit status 1; then the cases made at run time (a writable
# copy, a directory named x.so), --verbose, --config and usage errors.
set -u

: "${top_builddir:=.}"
PROZSEC="${PROZSEC:-$top_builddir/prozsec}"
FIX="$(cd "$top_builddir/tests/fixtures/plugins/.libs" && pwd)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pz-plugins-list.XXXXXX")
trap 'chmod -R u+w "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM

[ -x "$PROZSEC" ] || { echo "ERROR: $PROZSEC is not built"; exit 99; }
# The core's ABI version, for the messages that name it.
HDR="${top_srcdir:-$top_builddir}/include/prozsec/plugin.h"
MAJ=$(sed -n 's/^#define PZ_ABI_MAJOR \([0-9]*\)$/\1/p' "$HDR")
MIN=$(sed -n 's/^#define PZ_ABI_MINOR \([0-9]*\)$/\1/p' "$HDR")
[ -n "$MAJ" ] && [ -n "$MIN" ] || { echo "ERROR: no PZ_ABI_MAJOR/MINOR in $HDR"; exit 99; }

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
has() { # has FILE LINE-REGEX WHAT
    grep -Eq -- "$2" "$1" || { fail "$3"; echo "--- expected /$2/ in:"; cat "$1"; echo "---"; }
}

# --- the fixture directory -------------------------------------------------
"$PROZSEC" plugins list --path "$FIX" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "exit status $rc over the fixtures, expected 1 (some refused)"
has "$TMP/out" '^NAME +KIND +VERSION +ABI +FILE$' "header line"
for good in "test-auth auth" "test-ratelimit ratelimit" "test-connlimit connlimit" "test-transport transport"; do
    set -- $good
    has "$TMP/out" "^$1 +$2 +1\\.0\\.0 +$MAJ\\.$MIN +$FIX/$1\\.so\$" "$1 listed as $2"
done
R="^REFUSED $FIX"
has "$TMP/out" "$R/bad-noentry\\.so: no entry symbol pz_plugin_entry_v1" "bad-noentry refused"
has "$TMP/out" "$R/bad-abi-major\\.so: built for ABI $((MAJ + 1))\\.x, this core is $MAJ\\.$MIN\$" \
    "bad-abi-major refused"
has "$TMP/out" "$R/bad-abi-minor\\.so: built for ABI $MAJ\\.$((MIN + 1)), newer than this core's $MAJ\\.$MIN" \
    "bad-abi-minor refused"
has "$TMP/out" "$R/bad-short-size\\.so: malformed descriptor: struct_size 8 is smaller" "bad-short-size refused"
has "$TMP/out" "$R/bad-null-fn\\.so: malformed descriptor: mandatory function ratelimit\\.allow is NULL\$" \
    "bad-null-fn refused"
has "$TMP/out" "$R/bad-name\\.so: malformed descriptor: provider name \"Bad Name!\" is invalid" "bad-name refused"
has "$TMP/out" "$R/bad-dup\\.so: provider name \"test-auth\" is already taken by $FIX/test-auth\\.so\$" \
    "bad-dup refused as a duplicate"
has "$TMP/out" "$R/bad-init\\.so: init failed: fixture refuses to start: no licence key configured\$" \
    "bad-init refused with the plugin's message"
has "$TMP/out" "$R/bad-ctor-crash\\.so: crashed while loading \\(signal 11, Segmentation fault\\)\$" \
    "bad-ctor-crash reported as a crash"
has "$TMP/out" "$R/bad-undefined\\.so: cannot open: .*undefined symbol: pz_fixture_no_such_function" \
    "bad-undefined refused"
has "$TMP/out" "$R/bad-init-hang\\.so: timed out while loading \\(killed after 5 s\\)\$" \
    "bad-init-hang reported as timed out"
# The crash did not stop the listing: every file after it was probed too.
lines=$(wc -l <"$TMP/out")
[ "$lines" -eq 16 ] || fail "expected 16 lines (header + 15 files), got $lines"

# --- only good plugins: exit 0; --verbose shows description and keys -------
mkdir "$TMP/good"
for p in test-auth test-ratelimit; do cp "$FIX/$p.so" "$TMP/good/"; done
chmod 0755 "$TMP/good"/*.so
"$PROZSEC" plugins list --verbose --path "$TMP/good" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] || { fail "exit status $rc with only good plugins, expected 0"; cat "$TMP/err"; }
has "$TMP/out" '^    test fixture: allows `limit` requests per key, then refuses$' "--verbose description"
has "$TMP/out" '^    config:$' "--verbose config heading"
has "$TMP/out" '^      limit +int +3 +requests each key may make before it is refused$' "--verbose schema key"
has "$TMP/out" '^      allow +list +\[\] +node ids allowed in$' "--verbose list key"

# --- cases made at run time ---------------------------------------------
mkdir "$TMP/odd" "$TMP/odd/dir.so"
cp "$FIX/test-connlimit.so" "$TMP/odd/writable.so"
chmod 0666 "$TMP/odd/writable.so"
"$PROZSEC" plugins list --path "$TMP/odd" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "exit status $rc with refused files, expected 1"
has "$TMP/out" "^REFUSED $TMP/odd/dir\\.so: not a regular file \\(a directory\\)\$" "directory named x.so refused"
has "$TMP/out" "^REFUSED $TMP/odd/writable\\.so: writable by group or others \\(mode 0666\\)" \
    "world-writable copy refused"

# --- --config: plugins.path, relative to the file --------------------------
mkdir "$TMP/conf"
printf 'plugins:\n  path: [../good]\n' >"$TMP/conf/node.yaml"
PROZSEC_PLUGIN_PATH= "$PROZSEC" plugins list --config "$TMP/conf/node.yaml" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] || { fail "exit status $rc with --config, expected 0"; cat "$TMP/err"; }
has "$TMP/out" "^test-auth +auth .* $TMP/good/test-auth\\.so\$" "--config plugins.path used"
printf 'plugins:\n  path: 7\n' >"$TMP/conf/bad.yaml"
"$PROZSEC" plugins list --config "$TMP/conf/bad.yaml" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 2 ] || fail "exit status $rc with a bad plugins.path, expected 2"
has "$TMP/err" "bad\\.yaml:2:[0-9]+: .*path" "bad plugins.path reported with its position"

# --- $PROZSEC_PLUGIN_PATH is the default ------------------------------------
PROZSEC_PLUGIN_PATH="$TMP/good" "$PROZSEC" plugins list >"$TMP/out" 2>"$TMP/err"
has "$TMP/out" "^test-ratelimit +ratelimit .* $TMP/good/test-ratelimit\\.so\$" "\$PROZSEC_PLUGIN_PATH used"

# --- usage --------------------------------------------------------------
"$PROZSEC" plugins list --help >"$TMP/out" 2>&1 || fail "--help failed"
has "$TMP/out" "Exit status: 0 when every file loaded, 1 when any was refused" "--help documents the exit status"
"$PROZSEC" plugins list --no-such-option >"$TMP/out" 2>&1
[ $? -eq 2 ] || fail "unknown option: expected exit status 2"
"$PROZSEC" plugins list extra-arg >"$TMP/out" 2>&1
[ $? -eq 2 ] || fail "extra argument: expected exit status 2"
"$PROZSEC" plugins >"$TMP/out" 2>&1
[ $? -eq 2 ] || fail "no subcommand: expected exit status 2"
has "$TMP/out" "list" "group help names list"
"$PROZSEC" plugins frobnicate >"$TMP/out" 2>&1
[ $? -eq 2 ] || fail "unknown subcommand: expected exit status 2"

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "plugins-list: all checks passed"
