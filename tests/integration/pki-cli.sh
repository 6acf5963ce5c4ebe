#!/bin/sh
# tests/integration/pki-cli.sh — the PKI commands end to end: ca init, cert
# issue, show, verify (valid), revoke, verify (revoked: exit 1), overwrite
# refused without --force, bad node ids; `certtool -i` must show every
# field of an issued certificate.
#
# Environment (set by `make check`): top_builddir. Exit 0 pass, 1 fail,
# 99 hard error.

set -u

: "${top_builddir:=$(pwd)}"
PROZSEC="$top_builddir/prozsec"
[ -x "$PROZSEC" ] || { echo "Bail out! $PROZSEC not built"; exit 99; }
CERTTOOL=$(command -v certtool || true)

work=$(mktemp -d "${TMPDIR:-/tmp}/pz-pki-cli.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
trap 'exit 99' INT TERM

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }

# run EXPECTED-EXIT DESCRIPTION CMD...: output in $work/out
run() {
    want=$1 desc=$2
    shift 2
    "$@" >"$work/out" 2>&1
    got=$?
    if [ "$got" -eq "$want" ]; then
        ok "$desc (exit $got)"
    else
        not_ok "$desc: exit $got, expected $want"
        sed 's/^/#   /' "$work/out"
    fi
}

# has TEXT DESCRIPTION: $work/out contains TEXT (fixed string)
has() {
    if grep -qF -- "$1" "$work/out"; then
        ok "$2"
    else
        not_ok "$2: no \"$1\" in output"
        sed 's/^/#   /' "$work/out"
    fi
}

mode() { stat -c %a "$1"; }

CA="$work/ca"
NODE="$work/node"
ID="val-01.eu_west"
TYPE="validator"

# ---- ca init
run 0 "ca init" "$PROZSEC" ca init --dir "$CA" --org "ProzChain Test" --days 30
for f in ca.crt ca.key ca.crl ca.yaml; do
    [ -f "$CA/$f" ] && ok "ca init wrote $f" || not_ok "ca init did not write $f"
done
[ "$(mode "$CA/ca.key")" = 600 ] && ok "ca.key is 0600" || not_ok "ca.key mode $(mode "$CA/ca.key")"
sum_ca=$(cat "$CA/ca.crt" | cksum)
run 2 "ca init again without --force is refused" "$PROZSEC" ca init --dir "$CA"
has "--force" "the refusal names --force"
[ "$(cat "$CA/ca.crt" | cksum)" = "$sum_ca" ] && ok "ca.crt untouched" || not_ok "ca.crt was replaced"
run 2 "ca init with an unknown key type" "$PROZSEC" ca init --dir "$work/ca2" --key rsa-1024
[ ! -e "$work/ca2" ] && ok "nothing written for a bad key type" || not_ok "$work/ca2 exists"

# ---- cert issue
run 0 "cert issue" "$PROZSEC" cert issue --ca "$CA" --node-id "$ID" --node-type "$TYPE" --out "$NODE" \
    --days 10 --country DE --state Berlin --locality Mitte
for f in node.crt node.key; do
    [ -f "$NODE/$f" ] && ok "cert issue wrote $f" || not_ok "cert issue did not write $f"
done
[ "$(mode "$NODE/node.key")" = 600 ] && ok "node.key is 0600" || not_ok "node.key mode $(mode "$NODE/node.key")"
nfiles=$(ls -A "$NODE" | wc -l)
[ "$nfiles" -ge 4 ] && ok "the node's signing and E2E key files are there ($nfiles files)" ||
    not_ok "only $nfiles files in $NODE"
ls -A "$NODE" | grep -q '^\.pzstage' && not_ok "staging directory left behind" || ok "no staging directory left"
sum_node=$(cat "$NODE/node.crt" | cksum)

run 2 "cert issue again without --force is refused" "$PROZSEC" cert issue --ca "$CA" --node-id "$ID" \
    --node-type "$TYPE" --out "$NODE"
has "--force" "the refusal names --force"
[ "$(cat "$NODE/node.crt" | cksum)" = "$sum_node" ] && ok "node.crt untouched" || not_ok "node.crt was replaced"

for bad in ".dot-first" "-dash-first" "has space" "a/b" "x:y" \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; do
    run 2 "bad node id \"$bad\" refused" "$PROZSEC" cert issue --ca "$CA" --node-id "$bad" \
        --node-type "$TYPE" --out "$work/bad"
    has "--node-id" "the refusal names --node-id"
done
run 2 "bad node type refused" "$PROZSEC" cert issue --ca "$CA" --node-id ok1 --node-type Validator --out "$work/bad"
run 2 "bad country refused" "$PROZSEC" cert issue --ca "$CA" --node-id ok1 --node-type v --country Germany \
    --out "$work/bad"
[ ! -e "$work/bad" ] && ok "nothing written for bad input" || not_ok "$work/bad exists"

# ---- cert show
run 0 "cert show" "$PROZSEC" cert show "$NODE/node.crt"
has "node id:             $ID" "show: node id"
has "node type:           $TYPE" "show: node type"
has "serial:" "show: serial"
has "valid until:" "show: validity"
has "ECDSA SECP384R1" "show: key"
has "SHA-256 fingerprint:" "show: fingerprint"
has "signing key:" "show: embedded signing key"
has "E2E key:" "show: embedded E2E key"
run 2 "cert show of a missing file" "$PROZSEC" cert show "$work/missing.crt"

# ---- certtool shows every field
if [ -n "$CERTTOOL" ]; then
    run 0 "certtool -i" "$CERTTOOL" -i --infile "$NODE/node.crt"
    has "Version: 3" "certtool: version 3"
    has "Subject: CN=node:$ID,OU=$TYPE:nodes,O=ProzChain Test,L=Mitte,ST=Berlin,C=DE" "certtool: subject"
    has "Issuer: CN=prozsec CA " "certtool: issuer is the CA"
    has "Serial Number (hex):" "certtool: serial"
    has "Subject Public Key Algorithm: EC/ECDSA" "certtool: ECDSA key"
    has "SECP384R1" "certtool: P-384 curve"
    has "Signature Algorithm: ECDSA-SHA384" "certtool: SHA-384 signature"
    has "Basic Constraints (critical):" "certtool: basic constraints"
    has "Certificate Authority (CA): FALSE" "certtool: not a CA"
    has "Digital signature." "certtool: KU digitalSignature"
    has "Key encipherment." "certtool: KU keyEncipherment"
    has "TLS WWW Server." "certtool: EKU serverAuth"
    has "TLS WWW Client." "certtool: EKU clientAuth"
    has "DNSname: $ID.nodes.prozchain.io" "certtool: SAN DNS"
    has "URI: prozchain://$ID" "certtool: SAN URI"
    has "Unknown extension 2.25.961848862481022722.1 (not critical):" "certtool: node-keys extension"
    has "Hexdump: 30440420" "certtool: node-keys extension is SEQUENCE { OCTET STRING(32), ... }"
    has "Subject Key Identifier" "certtool: subject key id"
    has "Authority Key Identifier" "certtool: authority key id"
    has "Not After:" "certtool: validity"
else
    echo "# certtool not installed: field checks skipped"
fi

# ---- verify, revoke, verify
cp "$CA/ca.crl" "$work/before-revoke.crl"
run 0 "cert verify (valid)" "$PROZSEC" cert verify --ca "$CA" "$NODE/node.crt"
has "$NODE/node.crt: valid (node $ID, type $TYPE)" "verify prints the node and type"

run 0 "cert revoke" "$PROZSEC" cert revoke --ca "$CA" "$NODE/node.crt"
grep -q "crl_number: 2" "$CA/ca.yaml" && ok "CRL number bumped to 2" || not_ok "ca.yaml: $(grep crl_number "$CA/ca.yaml")"
if [ -n "$CERTTOOL" ]; then
    run 0 "certtool --crl-info" "$CERTTOOL" --crl-info --infile "$CA/ca.crl"
    has "Revoked certificates (1):" "the CRL lists one certificate"
fi
run 1 "cert verify (revoked)" "$PROZSEC" cert verify --ca "$CA" "$NODE/node.crt"
has "$NODE/node.crt: invalid: certificate revoked by its CA [revoked]" "verify names the reason"
run 1 "cert revoke again" "$PROZSEC" cert revoke --ca "$CA" "$NODE/node.crt"
has "already revoked" "the second revocation is refused"
run 0 "cert verify --crl with the CRL from before the revocation" "$PROZSEC" cert verify --ca "$CA" \
    --crl "$work/before-revoke.crl" "$NODE/node.crt"

# ---- replace with --force: a new certificate, valid again
run 0 "cert issue --force" "$PROZSEC" cert issue --ca "$CA" --node-id "$ID" --node-type "$TYPE" --out "$NODE" --force
[ "$(cat "$NODE/node.crt" | cksum)" != "$sum_node" ] && ok "node.crt replaced" || not_ok "node.crt unchanged"
run 0 "cert verify of the re-issued certificate" "$PROZSEC" cert verify --ca "$CA" "$NODE/node.crt"

# ---- a certificate of another CA
run 0 "second CA" "$PROZSEC" ca init --dir "$work/other" --key ecdsa-p521
run 0 "issue under the second CA" "$PROZSEC" cert issue --ca "$work/other" --node-id other --node-type v \
    --out "$work/othernode"
run 1 "cert verify against the wrong CA" "$PROZSEC" cert verify --ca "$CA" "$work/othernode/node.crt"
has "[untrusted]" "the reason is untrusted"
run 2 "cert revoke at the wrong CA" "$PROZSEC" cert revoke --ca "$CA" "$work/othernode/node.crt"
has "not issued by" "the refusal says why"
run 2 "cert verify without --ca" "$PROZSEC" cert verify "$NODE/node.crt"

# ---- usage errors
run 0 "cert verify --purpose client" "$PROZSEC" cert verify --ca "$CA" --purpose client "$NODE/node.crt"
run 2 "cert verify --purpose bogus" "$PROZSEC" cert verify --ca "$CA" --purpose bogus "$NODE/node.crt"
run 2 "cert verify with a missing CRL" "$PROZSEC" cert verify --ca "$CA" --crl "$work/none.crl" "$NODE/node.crt"
run 2 "cert verify of a missing file" "$PROZSEC" cert verify --ca "$CA" "$work/none.crt"
run 2 "cert issue --days -1" "$PROZSEC" cert issue --ca "$CA" --node-id z --node-type v --out "$work/z" --days -1
run 2 "cert issue without --out" "$PROZSEC" cert issue --ca "$CA" --node-id z --node-type v
run 2 "cert issue with a stray argument" "$PROZSEC" cert issue --ca "$CA" --node-id z --node-type v --out "$work/z" extra
run 2 "cert show with two files" "$PROZSEC" cert show "$NODE/node.crt" "$NODE/node.crt"
run 2 "cert revoke without a certificate" "$PROZSEC" cert revoke --ca "$CA"
run 2 "ca init without --dir" "$PROZSEC" ca init
run 2 "ca without a command" "$PROZSEC" ca
run 2 "cert with an unknown command" "$PROZSEC" cert frobnicate
run 0 "cert --help" "$PROZSEC" cert --help
has "verify" "cert --help lists verify"
[ ! -e "$work/z" ] && ok "nothing written on usage errors" || not_ok "$work/z exists"

echo "1..$n"
[ "$fails" -eq 0 ] || { echo "# $fails of $n checks failed"; exit 1; }
exit 0
