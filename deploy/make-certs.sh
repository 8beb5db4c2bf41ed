#!/usr/bin/env bash
# Make a local certificate authority, a server certificate for the broker and,
# optionally, client certificates, with openssl.
#
#   deploy/make-certs.sh DIR [CLIENT ...]
#
# DIR/ca.crt, ca.key         the CA (created once; reused when it already exists,
#                            so client certificates can be added later)
# DIR/server.crt, server.key the broker's certificate, valid for 127.0.0.1 and
#                            localhost plus every name or address in
#                            ANSIM_CERT_HOSTS (comma separated), e.g.
#                            ANSIM_CERT_HOSTS=broker.city.example,10.0.0.5
# DIR/CLIENT.crt, CLIENT.key one per CLIENT argument (CN = CLIENT), for brokers
#                            that also ask for client certificates
#
# ANSIM_CERT_DAYS sets the validity (default 825 days). Keys are EC P-256 and
# readable by their owner only: give the server key to the broker's user
# (chown mosquitto DIR/server.key) and each client key to its client.
set -euo pipefail

usage() {
    echo "usage: $0 DIR [CLIENT ...]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
dir=$1
shift
days=${ANSIM_CERT_DAYS:-825}
hosts=${ANSIM_CERT_HOSTS:-}

command -v openssl >/dev/null || { echo "$0: openssl not found" >&2; exit 1; }
mkdir -p "$dir"
umask 077

# A name becomes a DNS entry, an address an IP entry.
san="IP:127.0.0.1,DNS:localhost"
if [[ -n $hosts ]]; then
    IFS=',' read -r -a extra <<<"$hosts"
    for host in "${extra[@]}"; do
        host=${host//[[:space:]]/}
        [[ -n $host ]] || continue
        if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then
            san+=",IP:$host"
        else
            san+=",DNS:$host"
        fi
    done
fi

key() {  # key FILE: a new EC P-256 private key
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

sign() {  # sign NAME CN EXTENSIONS: NAME.key, a CSR, and NAME.crt signed by the CA
    local name=$1 cn=$2 extensions=$3
    key "$dir/$name.key"
    openssl req -new -key "$dir/$name.key" -subj "/CN=$cn" -out "$dir/$name.csr"
    printf '%b' "$extensions" >"$dir/$name.ext"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -CAserial "$dir/ca.srl" -days "$days" -sha256 \
        -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
    rm -f "$dir/$name.csr" "$dir/$name.ext"
    chmod 644 "$dir/$name.crt"
    echo "$dir/$name.crt ($cn)"
}

if [[ ! -s $dir/ca.crt || ! -s $dir/ca.key ]]; then
    key "$dir/ca.key"
    openssl req -new -x509 -key "$dir/ca.key" -subj "/CN=Ansim local CA" -days "$days" \
        -sha256 -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.crt"
    chmod 644 "$dir/ca.crt"
    echo "$dir/ca.crt (new CA)"
else
    echo "$dir/ca.crt (existing CA, reused)"
fi

server_cn=${hosts%%,*}
server_cn=${server_cn//[[:space:]]/}
sign server "${server_cn:-localhost}" \
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=$san\n"

for client in "$@"; do
    if [[ ! $client =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
        echo "$0: bad client name '$client' (letters, digits, . _ -)" >&2
        exit 2
    fi
    sign "$client" "$client" \
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
done
