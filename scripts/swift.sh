#!/usr/bin/env bash
# A single-node OpenStack Swift for Coffer's backup tests: account,
# container, object and proxy servers (tempauth user test:tester / testing,
# the S3 API via s3api, container quotas), plus the memcached that tempauth
# needs. Everything lives under DIR (default /var/tmp/coffer-swift).
#
#   scripts/swift.sh start [DIR]   start (or find running) and wait until it answers
#   scripts/swift.sh stop  [DIR]   stop what start started
#   scripts/swift.sh status [DIR]
#
# The packages come from scripts/install-test-deps.sh. Anything that
# imports swift runs with Debian's /usr/bin/python3.
set -euo pipefail

cmd="${1:-start}"
DIR="${2:-${SWIFT_DIR:-/var/tmp/coffer-swift}}"
PORT="${SWIFT_PORT:-8080}"
MEMCACHED_PORT="${SWIFT_MEMCACHED_PORT:-11211}"
AUTH="http://127.0.0.1:${PORT}/auth/v1.0"

answers() {
  curl -s -o /dev/null -w '%{http_code}' -H 'X-Storage-User: test:tester' \
    -H 'X-Storage-Pass: testing' "$AUTH" 2>/dev/null | grep -q '^200$'
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_confs() {
  mkdir -p "$DIR"/{srv/d1,run,log,cache,rings}
  for kind in object:6200 container:6201 account:6202; do
    name=${kind%%:*}; port=${kind##*:}
    cat >"$DIR/$name-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = root
swift_dir = $DIR/rings
devices = $DIR/srv
mount_check = false
disable_fallocate = true
log_name = $name-server

[pipeline:main]
pipeline = healthcheck recon $name-server

[app:$name-server]
use = egg:swift#$name

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:recon]
use = egg:swift#recon
recon_cache_path = $DIR/cache

[$name-replicator]
[$name-auditor]
[$name-updater]
CONF
  done
  cat >"$DIR/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 0
user = root
swift_dir = $DIR/rings
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl ratelimit s3api tempauth copy container-quotas account-quotas slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin http://127.0.0.1:$PORT/v1/AUTH_test

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
min_segment_size = 1

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:ratelimit]
use = egg:swift#ratelimit
[filter:copy]
use = egg:swift#copy
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
CONF
  if [ ! -f "$DIR/rings/object.ring.gz" ]; then
    # One Python process builds the three rings (~1 s; swift-ring-builder
    # would take ~10 s for the same).
    /usr/bin/python3 - "$DIR/rings" <<'PY'
import sys
from swift.common.ring import RingBuilder
d = sys.argv[1]
for name, port in (("object", 6200), ("container", 6201), ("account", 6202)):
    b = RingBuilder(10, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "d1", "weight": 100})
    b.rebalance()
    b.save(f"{d}/{name}.builder")
    b.get_ring().save(f"{d}/{name}.ring.gz")
PY
  fi
}

start() {
  if answers; then
    echo "COFFER_TEST_SWIFT_AUTH=$AUTH"
    return 0
  fi
  write_confs
  if ! alive "$DIR/run/memcached.pid"; then
    memcached -u root -l 127.0.0.1 -p "$MEMCACHED_PORT" -m 64 -U 0 -d -P "$DIR/run/memcached.pid"
  fi
  for s in object container account proxy; do
    if ! alive "$DIR/run/$s.pid"; then
      # workers = 0: the process started is the server itself.
      setsid "swift-$s-server" "$DIR/$s-server.conf" -v >"$DIR/log/$s.log" 2>&1 < /dev/null &
      echo $! >"$DIR/run/$s.pid"
    fi
  done
  for _ in $(seq 1 300); do
    if answers; then
      echo "COFFER_TEST_SWIFT_AUTH=$AUTH"
      return 0
    fi
    sleep 0.2
  done
  echo "swift did not answer on $AUTH within 60 s; logs in $DIR/log" >&2
  tail -n 20 "$DIR"/log/*.log >&2 || true
  return 1
}

stop() {
  for s in proxy account container object memcached; do
    if alive "$DIR/run/$s.pid"; then kill "$(cat "$DIR/run/$s.pid")" || true; fi
    rm -f "$DIR/run/$s.pid"
  done
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) if answers; then echo "swift answers on $AUTH"; else echo "swift is down"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status [DIR]" >&2; exit 2 ;;
esac
