#!/bin/sh
# tests/integration/e2e-cli.sh — `prozsec e2e` end to end with real node
# certificates (prozsec ca init / cert issue): a round trip, and refusals
# (replay, tampered, wrong recipient, wrong sender, wrong or missing AAD)
# that exit 1 with one line on stderr and nothing on stdout; every suite;
# sealed sender; key rotation with a signed key record; usage errors
# (exit 2).
#
# Environment (set by `make check`): top_builddir. Exit 0 pass, 1 fail,
# 99 hard error.

set -u

: "${top_builddir:=$(pwd)}"
PROZSEC="$top_builddir/prozsec"
[ -x "$PROZSEC" ] || { echo "Bail out! $PROZSEC not built"; exit 99; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pz-e2e-cli.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
trap 'exit 99' INT TERM
cd "$work" || exit 99

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }

# run EXPECTED-EXIT DESCRIPTION CMD... <stdin: stdout in out, stderr in err
run() {
    want=$1 desc=$2
    shift 2
    "$@" >out 2>err
    got=$?
    if [ "$got" -eq "$want" ]; then
        ok "$desc (exit $got)"
    else
        not_ok "$desc: exit $got, expected $want"
        sed 's/^/#   /' err
    fi
}

# refused DESCRIPTION TEXT CMD...: exit 1, empty stdout, one stderr line containing TEXT
refused() {
    desc=$1 text=$2
    shift 2
    run 1 "$desc" "$@"
    if [ -s out ]; then not_ok "$desc: wrote $(wc -c <out) bytes to stdout"; else ok "$desc: nothing on stdout"; fi
    if [ "$(wc -l <err)" -eq 1 ] && grep -qF -- "$text" err; then
        ok "$desc: one line: $(cat err)"
    else
        not_ok "$desc: expected one line with '$text'"
        sed 's/^/#   /' err
    fi
}

same() { # FILE1 FILE2 DESCRIPTION
    if cmp -s "$1" "$2"; then ok "$3"; else not_ok "$3: $1 and $2 differ"; fi
}

# flip FILE OFFSET: xor the byte at OFFSET with 1
flip() {
    b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    # shellcheck disable=SC2059
    printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

"$PROZSEC" ca init --dir ca >/dev/null 2>&1 || { echo "Bail out! ca init failed"; exit 99; }
for node in alice bob carol; do
    "$PROZSEC" cert issue --ca ca --node-id "$node" --node-type validator --out "$node" >/dev/null 2>&1 ||
        { echo "Bail out! cert issue $node failed"; exit 99; }
done

# A 1 KiB message (and an empty one).
i=0
: >msg
while [ $i -lt 16 ]; do printf 'E2E payload line %02d padded to sixty-four bytes.................\n' $i >>msg; i=$((i + 1)); done
[ "$(wc -c <msg)" -eq 1024 ] || { echo "Bail out! message is not 1 KiB"; exit 99; }

# --- round trip ---------------------------------------------------------
run 0 "seal alice -> bob" "$PROZSEC" e2e seal --key-dir alice --to bob/node.crt --aad "topic=blocks" <msg
cp out sealed
[ -s err ] && not_ok "seal wrote to stderr" || ok "seal: stderr empty"
run 0 "open at bob" "$PROZSEC" e2e open --key-dir bob --from alice/node.crt --aad "topic=blocks" <sealed
same out msg "round trip gives the message back"

# --- refusals -------------------------------------------------------------
refused "replay of the same envelope" "replay" \
    "$PROZSEC" e2e open --key-dir bob --from alice/node.crt --aad "topic=blocks" <sealed

"$PROZSEC" e2e seal --key-dir alice --to bob/node.crt --aad "topic=blocks" <msg >fresh 2>/dev/null
cp fresh tampered
flip tampered 600
refused "tampered ciphertext byte" "signature by alice does not verify" \
    "$PROZSEC" e2e open --key-dir bob --from alice/node.crt --aad "topic=blocks" <tampered
refused "wrong recipient (carol opens bob's envelope)" "is for node bob, this is carol" \
    "$PROZSEC" e2e open --key-dir carol --from alice/node.crt --aad "topic=blocks" <fresh
refused "wrong sender expected" "expected carol" \
    "$PROZSEC" e2e open --key-dir bob --from carol/node.crt --aad "topic=blocks" <fresh
refused "different associated data" "associated data" \
    "$PROZSEC" e2e open --key-dir bob --from alice/node.crt --aad "topic=txs" <fresh
refused "associated data missing" "associated data" \
    "$PROZSEC" e2e open --key-dir bob --from alice/node.crt <fresh
: >empty
refused "empty input" "malformed" "$PROZSEC" e2e open --key-dir bob --from alice/node.crt <empty
refused "not an envelope" "unknown envelope version" "$PROZSEC" e2e open --key-dir bob --from alice/node.crt <msg
# The refusals did not consume the fresh envelope.
run 0 "the untampered envelope still opens" \
    "$PROZSEC" e2e open --key-dir bob --from alice/node.crt --aad "topic=blocks" <fresh
same out msg "... with the message"

# --- suites, sealed sender, empty message ---------------------------------
for suite in chacha20-poly1305 aes-256-gcm aes-128-gcm; do
    "$PROZSEC" e2e seal --key-dir bob --to alice/node.crt --suite "$suite" <msg >s 2>/dev/null
    run 0 "suite $suite" "$PROZSEC" e2e open --key-dir alice --from bob/node.crt <s
    same out msg "suite $suite round trip"
done
run 0 "sealed sender" "$PROZSEC" e2e seal --key-dir alice --to bob/node.crt --sealed-sender <msg
cp out ss
if grep -q alice ss; then not_ok "sealed sender: the envelope names alice"; else ok "sealed sender: alice's id is not in the envelope"; fi
grep -q bob ss && ok "sealed sender: the recipient is visible" || not_ok "sealed sender: recipient not visible"
run 0 "sealed sender opens" "$PROZSEC" e2e open --key-dir bob --from alice/node.crt <ss
same out msg "sealed sender round trip"
run 0 "empty message" "$PROZSEC" e2e seal --key-dir alice --to bob/node.crt <empty
cp out se
run 0 "empty message opens" "$PROZSEC" e2e open --key-dir bob --from alice/node.crt <se
same out empty "empty round trip"

# --- rotation -----------------------------------------------------------
run 0 "bob rotates" "$PROZSEC" e2e rotate --key-dir bob --interval 1h --grace 10m
cp out bob.rec
grep -q "BEGIN PROZSEC E2E KEY RECORD" bob.rec && ok "rotate prints the key record" || not_ok "no key record printed"
ls bob/e2e.d/*.key >/dev/null 2>&1 && ok "rotated key in bob/e2e.d" || not_ok "no rotated key file"
run 0 "rotate again: not due" "$PROZSEC" e2e rotate --key-dir bob --interval 1h --grace 10m
same out bob.rec "the same record while current"
run 0 "seal with bob's record" "$PROZSEC" e2e seal --key-dir alice --to bob/node.crt --record bob.rec <msg
cp out rot
run 0 "open with the rotated key" "$PROZSEC" e2e open --key-dir bob --from alice/node.crt <rot
same out msg "rotated round trip"
run 2 "a record signed by someone else" "$PROZSEC" e2e seal --key-dir alice --to carol/node.crt --record bob.rec <msg

# --- usage ----------------------------------------------------------------
run 2 "seal without --to" "$PROZSEC" e2e seal --key-dir alice <msg
run 2 "open without --from" "$PROZSEC" e2e open --key-dir bob <sealed
run 2 "missing certificate" "$PROZSEC" e2e seal --key-dir alice --to nowhere.crt <msg
run 2 "missing key directory" "$PROZSEC" e2e seal --key-dir nowhere --to bob/node.crt <msg
run 2 "unknown suite" "$PROZSEC" e2e seal --key-dir alice --to bob/node.crt --suite rot13 <msg
run 2 "unknown subcommand" "$PROZSEC" e2e frobnicate
chmod 644 alice/sign.key
run 2 "private key readable by others" "$PROZSEC" e2e seal --key-dir alice --to bob/node.crt <msg
grep -q "chmod 600" err && ok "... says how to fix it" || not_ok "no fix in the message"
chmod 600 alice/sign.key
run 0 "keygen" "$PROZSEC" e2e keygen --key-dir dave
grep -q "^sign_pub [0-9a-f]\{64\}$" out && ok "keygen prints the public keys" || not_ok "keygen output"
run 2 "keygen refuses to overwrite" "$PROZSEC" e2e keygen --key-dir dave
run 0 "keygen --force" "$PROZSEC" e2e keygen --key-dir dave --force
run 0 "seal with --id (no certificate in the key dir)" "$PROZSEC" e2e seal --key-dir dave --id dave --to bob/node.crt <msg

echo "1..$n"
[ "$fails" -eq 0 ]
