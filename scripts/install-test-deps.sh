#!/usr/bin/env bash
# Install what Coffer's tests need on a Debian machine of this kind, and
# make sure the local services the tests use are running. Idempotent.
set -euo pipefail

need_apt=()
command -v mariadb-install-db >/dev/null || need_apt+=(mariadb-server)
command -v mariadb >/dev/null || need_apt+=(mariadb-client)
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql-15)
command -v psql >/dev/null || need_apt+=(postgresql-client-15)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v setpriv >/dev/null || need_apt+=(util-linux)
# Every instance's datastore runs in a sandbox of its own (bubblewrap).
command -v bwrap >/dev/null || need_apt+=(bubblewrap)
# Backups: MariaDB's physical backup tool, and a single-node OpenStack Swift
# (with s3api) for the object-storage tests; Swift needs memcached.
command -v mariabackup >/dev/null || need_apt+=(mariadb-backup)
command -v swift-proxy-server >/dev/null || need_apt+=(swift swift-proxy swift-account swift-container swift-object python3-swiftclient)
command -v memcached >/dev/null || need_apt+=(memcached)
command -v zstd >/dev/null || need_apt+=(zstd)
command -v openssl >/dev/null || need_apt+=(openssl)
# Several hosts as network namespaces, bridged to the machine's services.
command -v ip >/dev/null || need_apt+=(iproute2)
command -v socat >/dev/null || need_apt+=(socat)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# The metadata-store conformance suite uses the machine's PostgreSQL.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
fi

# The RabbitMQ bus tests use the machine's broker and its HTTP management
# API (users and permissions per agent), listening on 127.0.0.1 only: the
# running node is told before the plugin starts, and rabbitmq.conf keeps it
# so after a restart.
if ! pgrep -f beam.smp >/dev/null; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  for _ in $(seq 1 100); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 0.3; done
fi
conf=/etc/rabbitmq/rabbitmq.conf
grep -q '^management.tcp.ip' "$conf" 2>/dev/null || {
  echo 'management.tcp.ip = 127.0.0.1' >>"$conf"
  echo 'management.tcp.port = 15672' >>"$conf"
}
if ! curl -fs -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null; then
  echo "enabling the RabbitMQ management API on 127.0.0.1:15672"
  rabbitmqctl -q eval 'application:set_env(rabbitmq_management, tcp_config, [{port, 15672}, {ip, "127.0.0.1"}]).' >/dev/null
  rabbitmq-plugins -q enable rabbitmq_management >/dev/null
  for _ in $(seq 1 100); do curl -fs -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null && break; sleep 0.2; done
fi

# The real clients Coffer must satisfy, unpatched, in a venv the tests use.
clients=/var/tmp/coffer-clients
if [ ! -x "$clients/bin/openstack" ]; then
  echo "installing python-troveclient and python-openstackclient into $clients"
  python3 -m venv "$clients"
  "$clients/bin/pip" install -q python-troveclient==8.11.0 python-openstackclient==10.5.0
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
