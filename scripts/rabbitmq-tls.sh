#!/usr/bin/env bash
# A throwaway CA, a server certificate for localhost/127.0.0.1 and a client certificate
# (PKCS#8 key), all in $TLS_DIR, and an AMQPS listener on 127.0.0.1:$TLS_PORT using them,
# appended to $RABBITMQ_CONF. tests/rabbitmq_tls.rs runs it for the private RabbitMQ node it
# starts; nothing here touches a broker's own configuration unless told to.
# Idempotent; prints "restart" when it added the listener (a running broker would need a
# restart to pick it up). Test keys only: never point a real broker at these.
set -euo pipefail
TLS_DIR=${TLS_DIR:?set TLS_DIR to the directory for the certificates}
CONF=${RABBITMQ_CONF:?set RABBITMQ_CONF to the rabbitmq.conf to add the listener to}
PORT=${TLS_PORT:-5671}
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
listeners.ssl.default = 127.0.0.1:$PORT
ssl_options.cacertfile = $TLS_DIR/ca.pem
ssl_options.certfile = $TLS_DIR/server.pem
ssl_options.keyfile = $TLS_DIR/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
CONF
  echo restart
fi
