#!/usr/bin/env bash
# Give the test RabbitMQ an AMQPS listener on 127.0.0.1:5671: a throwaway CA, a server
# certificate for localhost/127.0.0.1 and a client certificate (PKCS#8 key), all in
# $TLS_DIR (default /etc/rabbitmq/mqscope-tls), and the listener in rabbitmq.conf.
# Idempotent; prints "restart" when the broker must be restarted to pick it up.
# Test keys only: never point a real broker at these.
set -euo pipefail
TLS_DIR=${TLS_DIR:-/etc/rabbitmq/mqscope-tls}
CONF=${RABBITMQ_CONF:-/etc/rabbitmq/rabbitmq.conf}
mkdir -p "$TLS_DIR"
cd "$TLS_DIR"
if [ ! -f ca.pem ] || [ ! -f client.key ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mqscope test CA" \
    -keyout ca.key -out ca.pem >/dev/null 2>&1
  for who in server client; do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$who.key" >/dev/null 2>&1
    openssl req -new -key "$who.key" -subj "/CN=$( [ $who = server ] && echo localhost || echo mqscope-client )" \
      -out "$who.csr" >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=%s\n' \
      "$( [ $who = server ] && echo serverAuth || echo clientAuth )" > "$who.ext"
    openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile "$who.ext" -out "$who.pem" >/dev/null 2>&1
  done
  chmod 644 ./*.pem ./*.key
fi
if ! grep -q "mqscope-tls" "$CONF" 2>/dev/null; then
  cat >> "$CONF" <<CONF
# mqscope-tls: an AMQPS listener for mqscope's TLS tests (scripts/rabbitmq-tls.sh)
listeners.ssl.default = 127.0.0.1:5671
ssl_options.cacertfile = $TLS_DIR/ca.pem
ssl_options.certfile = $TLS_DIR/server.pem
ssl_options.keyfile = $TLS_DIR/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
CONF
  echo restart
fi
