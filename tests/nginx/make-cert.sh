#!/usr/bin/env bash
# Makes a test CA and a server certificate it signs for 127.0.0.1 and localhost (P-256, valid
# two days), for nginx in front of the emulator (h2.conf.in):
#
#   tests/nginx/make-cert.sh DIR    writes DIR/ca.pem (what clients trust), DIR/server.pem, DIR/server.key
#
# A CA apart from the server certificate, because rustls (webpki) refuses a self-signed
# server certificate used as its own trust anchor.
set -euo pipefail
[ $# = 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
mkdir -p "$dir"
quiet() { "$@" 2>"$dir/openssl.log" || { cat "$dir/openssl.log" >&2; exit 1; }; }
quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=capmonster test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
quiet openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
quiet openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem"
rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.srl" "$dir/openssl.log"
