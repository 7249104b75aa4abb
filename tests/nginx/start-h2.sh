#!/usr/bin/env bash
# Starts nginx with TLS and HTTP/2 in front of an emulator, in the foreground (exec):
#
#   tests/nginx/start-h2.sh DIR PORT UPSTREAM_PORT
#
# DIR: a scratch directory (made if missing): the certificates (make-cert.sh, unless DIR/ca.pem
# is there already), the filled-in h2.conf.in as DIR/nginx.conf, nginx's logs and temp files.
# Clients trust DIR/ca.pem and call https://127.0.0.1:PORT. Run it in the background and stop
# it with its pid; it listens once `curl --cacert DIR/ca.pem https://127.0.0.1:PORT/_nginx/status`
# answers.
set -euo pipefail
[ $# = 3 ] || { echo "usage: $0 DIR PORT UPSTREAM_PORT" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
[ -s "$dir/ca.pem" ] || "$here/make-cert.sh" "$dir"
sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$2|g" -e "s|@UPSTREAM_PORT@|$3|g" \
    -e "s|@CERT@|$dir/server.pem|g" -e "s|@KEY@|$dir/server.key|g" "$here/h2.conf.in" >"$dir/nginx.conf"
nginx=$(command -v nginx || echo /usr/sbin/nginx)
exec "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
