#!/usr/bin/env bash
# The main job on embedded defaults: start Coffer (SQLite metadata,
# in-process bus, local-process compute), walk a tenant through creating a
# MariaDB instance, writing and reading data with the stock mariadb client,
# restarting it, backing it up (full, then incremental), restoring the
# incremental into a new instance and reading every row back there, and
# deleting it all; then PostgreSQL (psql) and Redis (redis-cli). Leaves
# nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh >/dev/null
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/coffer-target}"
echo "== building coffer"
cargo build --quiet --bin coffer --bin coffer-agent
coffer="$CARGO_TARGET_DIR/debug/coffer"

state=$(mktemp -d /tmp/coffer-demo.XXXXXX)
port=${COFFER_DEMO_PORT:-8779}
export COFFER_ENDPOINT="http://127.0.0.1:$port" COFFER_PROJECT=demo
cleanup() {
  [ -n "${up_pid:-}" ] && kill "$up_pid" 2>/dev/null && wait "$up_pid" 2>/dev/null
  # Anything still running from this state dir (only if a step failed).
  pkill -9 -f "$state" 2>/dev/null || true
  # The instances root is a (shared) mount of its own; loop volumes of
  # instances a failed step left behind are mounted under it.
  for _ in $(seq 30); do
    mountpoint -q "$state/instances" || break
    umount -R "$state/instances" 2>/dev/null || sleep 0.1
  done
  rm -rf "$state"
}
trap cleanup EXIT

echo "== coffer up (state in $state)"
COFFER__API__LISTEN="127.0.0.1:$port" "$coffer" up --state-dir "$state" >"$state/coffer.log" 2>&1 &
up_pid=$!
for _ in $(seq 1 100); do curl -sf "$COFFER_ENDPOINT/" >/dev/null && break; sleep 0.1; done
curl -sf "$COFFER_ENDPOINT/" >/dev/null || { cat "$state/coffer.log"; exit 1; }

echo "== datastores and flavors"
"$coffer" datastore list
"$coffer" flavor list

echo "== create a MariaDB instance"
t0=$(date +%s%N)
"$coffer" instance create db1 --datastore mariadb --flavor small --size 1 \
  --database app --user app:secret --wait
echo "   ACTIVE after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
ip=$("$coffer" instance show db1 -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ip"][0])')

echo "== write and read data as the tenant, with the mariadb client at $ip"
mariadb --no-defaults -h "$ip" -u app -psecret app -e \
  "CREATE TABLE greetings (id INT PRIMARY KEY, msg TEXT); INSERT INTO greetings VALUES (1, 'hello from coffer');"
got=$(mariadb --no-defaults -h "$ip" -u app -psecret app -N -e "SELECT msg FROM greetings WHERE id = 1")
[ "$got" = "hello from coffer" ] || { echo "read back '$got'"; exit 1; }
echo "   read back: $got"

echo "== a configuration group: max_connections at once, innodb_log_buffer_size at the restart"
"$coffer" configuration create tuned --datastore mariadb \
  --values '{"max_connections": 321, "innodb_log_buffer_size": 33554432}' >/dev/null
"$coffer" configuration attach db1 tuned
for _ in $(seq 100); do
  [ "$("$coffer" instance show db1 -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" = RESTART_REQUIRED ] && break
  sleep 0.2
done
variable() { mariadb --no-defaults -h "$ip" -u app -psecret -N -e "SHOW GLOBAL VARIABLES LIKE '$1'" | cut -f2; }
[ "$(variable max_connections)" = 321 ] || { echo "max_connections is $(variable max_connections)"; exit 1; }
echo "   max_connections = $(variable max_connections), instance RESTART_REQUIRED"

echo "== restart, and the data is still there"
"$coffer" instance restart db1 --wait >/dev/null
[ "$(variable innodb_log_buffer_size)" = 33554432 ] || { echo "innodb_log_buffer_size is $(variable innodb_log_buffer_size)"; exit 1; }
echo "   innodb_log_buffer_size = $(variable innodb_log_buffer_size) after the restart"
got=$(mariadb --no-defaults -h "$ip" -u app -psecret app -N -e "SELECT msg FROM greetings WHERE id = 1")
[ "$got" = "hello from coffer" ] || { echo "after restart: '$got'"; exit 1; }
echo "   read back after restart: $got"

echo "== the same through the Trove-compatible REST API"
curl -sf -H 'X-Auth-Token: demo' "$COFFER_ENDPOINT/v1.0/demo/instances" \
  | python3 -c 'import json,sys; i=json.load(sys.stdin)["instances"][0]; print(json.dumps({k: i[k] for k in ("id","name","status","operating_status","ip","datastore","volume")}, indent=2))'

echo "== back up (full), write more, back up (incremental)"
"$coffer" backup create nightly --instance db1 --description "full" --wait
mariadb --no-defaults -h "$ip" -u app -psecret app -e \
  "INSERT INTO greetings VALUES (2, 'written after the full backup')"
"$coffer" backup create hourly --instance db1 --incremental --wait
"$coffer" backup list --instance db1

echo "== restore the incremental into a new instance and read every row there"
"$coffer" instance create db1-copy --flavor small --size 1 --backup hourly --wait >/dev/null
copy_ip=$("$coffer" instance show db1-copy -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ip"][0])')
got=$(mariadb --no-defaults -h "$copy_ip" -u app -psecret app -N -e "SELECT GROUP_CONCAT(msg ORDER BY id SEPARATOR ' | ') FROM greetings")
[ "$got" = "hello from coffer | written after the full backup" ] || { echo "restored: '$got'"; exit 1; }
echo "   read back from the restored copy at $copy_ip: $got"

echo "== resize to the medium flavor: the buffer pool follows"
"$coffer" instance resize-flavor db1 medium --wait >/dev/null
echo "   innodb_buffer_pool_size = $(variable innodb_buffer_pool_size)"

echo "== delete (the backups go with 'backup delete': the full one takes its incremental along)"
"$coffer" instance delete db1-copy --wait
"$coffer" instance delete db1 --wait
"$coffer" backup delete nightly --wait

echo "== PostgreSQL: create, write and read with psql, delete"
"$coffer" instance create pg1 --datastore postgresql --flavor small --size 1 \
  --database app --user app:secret --wait >/dev/null
pg_ip=$("$coffer" instance show pg1 -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ip"][0])')
PGPASSWORD=secret psql -h "$pg_ip" -U app -d app -q -c "CREATE TABLE notes (msg text); INSERT INTO notes VALUES ('hello from postgres')"
got=$(PGPASSWORD=secret psql -h "$pg_ip" -U app -d app -tA -c "SELECT msg FROM notes")
[ "$got" = "hello from postgres" ] || { echo "psql read back '$got'"; exit 1; }
echo "   read back: $got"
"$coffer" instance delete pg1 --wait

echo "== Redis: create, write and read with redis-cli, delete"
"$coffer" instance create cache1 --datastore redis --flavor small --size 1 --user app:secret --wait >/dev/null
r_ip=$("$coffer" instance show cache1 -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ip"][0])')
redis-cli -h "$r_ip" --user app --pass secret --no-auth-warning SET greeting "hello from redis" >/dev/null
got=$(redis-cli -h "$r_ip" --user app --pass secret --no-auth-warning GET greeting)
[ "$got" = "hello from redis" ] || { echo "redis-cli read back '$got'"; exit 1; }
echo "   read back: $got"
"$coffer" instance delete cache1 --wait
"$coffer" instance list
echo "demo: OK"
