#!/usr/bin/env bash
# Makes the certificates for mutual TLS between agentexec cluster nodes (Pekko Artery tls-tcp): a CA
# of the cluster's own, and for each node a key store holding its key and a certificate that CA
# signed. A node accepts a connection only from a peer presenting a certificate of that CA, so keep
# the CA for this cluster alone.
#
#   scripts/make-certs.sh DIR NODE[=SAN] ...
#
# NODE is a name (the certificate's CN; also its DNS subject alternative name unless SAN is given,
# e.g. node-1=dns:node-1.example,ip:10.0.0.5). Hostnames are not verified between nodes (pods come
# and go with new addresses): the CA is what is trusted.
#
# In DIR:
#   ca.p12           the CA's key. Needed only to sign more nodes (running again with the same DIR
#                    reuses it); keep it off the nodes.
#   ca.crt           the CA's certificate (PEM)
#   truststore.p12   the CA's certificate, for every node: AGENTEXEC_TLS_TRUST_STORE
#   NODE.p12         that node's key and certificate chain: AGENTEXEC_TLS_KEY_STORE on that node
#   store-password   the password of all these stores (mode 600), unless AGENTEXEC_TLS_STORE_PASSWORD
#                    gave one: AGENTEXEC_TLS_KEY_STORE_PASSWORD and AGENTEXEC_TLS_TRUST_STORE_PASSWORD
#
# Environment: AGENTEXEC_TLS_STORE_PASSWORD (default: DIR/store-password, made at random the first
# time), AGENTEXEC_TLS_VALIDITY_DAYS (825), AGENTEXEC_TLS_KEY_SIZE (RSA bits, 3072).
# Needs only the JDK's keytool.
set -euo pipefail

usage() {
  sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
dir="$1"
shift
keytool="${JAVA_HOME:+$JAVA_HOME/bin/}keytool"
command -v "$keytool" >/dev/null || { echo "make-certs: keytool not found (install a JDK or set JAVA_HOME)" >&2; exit 1; }
days="${AGENTEXEC_TLS_VALIDITY_DAYS:-825}"
bits="${AGENTEXEC_TLS_KEY_SIZE:-3072}"

mkdir -p "$dir"
chmod 700 "$dir"
if [[ -z "${AGENTEXEC_TLS_STORE_PASSWORD:-}" ]]; then
  if [[ ! -s "$dir/store-password" ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$dir/store-password")
  fi
  AGENTEXEC_TLS_STORE_PASSWORD="$(cat "$dir/store-password")"
fi
export AGENTEXEC_TLS_STORE_PASSWORD
pass=(-storepass:env AGENTEXEC_TLS_STORE_PASSWORD -keypass:env AGENTEXEC_TLS_STORE_PASSWORD)
# keytool is a short-lived JVM: start it cheaply; show its chatter only when it fails.
kt() {
  local log
  log="$(mktemp)"
  if ! "$keytool" -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "make-certs: keytool $1 failed" >&2
    exit 1
  fi
  rm -f "$log"
}

if [[ ! -f "$dir/ca.p12" ]]; then
  kt -genkeypair -storetype PKCS12 -keystore "$dir/ca.p12" "${pass[@]}" -alias ca -keyalg RSA -keysize "$bits" \
     -validity "$days" -dname "CN=agentexec cluster CA $(date -u +%Y%m%dT%H%M%SZ)" \
     -ext bc:c=ca:true -ext KeyUsage:c=keyCertSign,cRLSign
  echo "make-certs: new CA in $dir/ca.p12" >&2
fi
kt -exportcert -rfc -keystore "$dir/ca.p12" -storepass:env AGENTEXEC_TLS_STORE_PASSWORD -alias ca -file "$dir/ca.crt"
rm -f "$dir/truststore.p12"
kt -importcert -noprompt -storetype PKCS12 -keystore "$dir/truststore.p12" -storepass:env AGENTEXEC_TLS_STORE_PASSWORD \
   -alias agentexec-ca -file "$dir/ca.crt"

for spec in "$@"; do
  name="${spec%%=*}"
  san="dns:$name"
  [[ "$spec" == *=* ]] && san="${spec#*=}"
  if [[ ! "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
    echo "make-certs: a node name is letters, digits, '.', '_' or '-'; got '$name'" >&2
    exit 2
  fi
  store="$dir/$name.p12"
  if [[ -e "$store" ]]; then
    echo "make-certs: $store exists; remove it to make a new one" >&2
    exit 1
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  kt -genkeypair -storetype PKCS12 -keystore "$work/node.p12" "${pass[@]}" -alias node -keyalg RSA -keysize "$bits" \
     -validity "$days" -dname "CN=$name"
  kt -certreq -keystore "$work/node.p12" -storepass:env AGENTEXEC_TLS_STORE_PASSWORD -alias node -file "$work/node.csr"
  kt -gencert -rfc -keystore "$dir/ca.p12" -storepass:env AGENTEXEC_TLS_STORE_PASSWORD -alias ca -validity "$days" \
     -infile "$work/node.csr" -outfile "$work/node.crt" \
     -ext KeyUsage:c=digitalSignature,keyEncipherment -ext ExtendedKeyUsage=serverAuth,clientAuth -ext "SAN=$san"
  # The chain (node certificate, then the CA's) replaces the self-signed certificate of the key.
  cat "$work/node.crt" "$dir/ca.crt" > "$work/chain.crt"
  kt -importcert -noprompt -keystore "$work/node.p12" "${pass[@]}" -alias node -file "$work/chain.crt"
  install -m 600 "$work/node.p12" "$store"
  rm -rf "$work"
  trap - EXIT
  echo "make-certs: $store (CN=$name, SAN $san)" >&2
done
chmod 600 "$dir"/*.p12
chmod 644 "$dir/ca.crt"
