#!/usr/bin/env bash
# A single-node OpenStack Swift for Coffer's backup tests: account,
# container, object and proxy servers (tempauth user test:tester / testing,
# the S3 API via s3api, container quotas), plus the memcached that tempauth
# keeps its tokens in. Everything it makes lives under DIR (default
# /var/tmp/coffer-swift): confs, rings, devices, logs, pid files.
#
#   scripts/swift.sh start  [DIR]  start what is not running, wait until it answers,
#                                  print the env a test needs
#   scripts/swift.sh stop   [DIR]  stop what start started (from its pid files)
#   scripts/swift.sh status [DIR]
#
# Ports: SWIFT_PORT (proxy, 8080), SWIFT_BACKEND_PORT (object; container and
# account take the next two; 6200), SWIFT_MEMCACHED_PORT (11211). A memcached
# already listening there is used as it is.
#
# Nothing is installed here: the packages come from
# scripts/install-test-deps.sh. Anything that imports swift runs with
# Debian's /usr/bin/python3, not the python3 first on PATH.
set -euo pipefail

cmd="${1:-start}"
DIR="${2:-${SWIFT_DIR:-/var/tmp/coffer-swift}}"
PORT="${SWIFT_PORT:-8080}"
BACKEND="${SWIFT_BACKEND_PORT:-6200}"
MEMCACHED_PORT="${SWIFT_MEMCACHED_PORT:-11211}"
AUTH="http://127.0.0.1:${PORT}/auth/v1.0"
SERVERS=(object container account proxy)

answers() {
  curl -s -m 5 -o /dev/null -w '%{http_code}' -H 'X-Storage-User: test:tester' \
    -H 'X-Storage-Pass: testing' "$AUTH" 2>/dev/null | grep -q '^200$'
}

# Running, and not a zombie that nobody has reaped yet.
alive() {
  [ -f "$1" ] || return 1
  local pid
  pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port_of() {
  case "$1" in
    object) echo "$BACKEND" ;;
    container) echo $((BACKEND + 1)) ;;
    account) echo $((BACKEND + 2)) ;;
    proxy) echo "$PORT" ;;
  esac
}

print_env() {
  echo "COFFER_TEST_SWIFT_AUTH=$AUTH"
  echo "COFFER_TEST_S3_ENDPOINT=http://127.0.0.1:${PORT}"
}

# Install the conf of server $1 from stdin; remember it if it changed, so
# that a running server with an old conf is restarted.
CHANGED=()
put_conf() {
  local conf="$DIR/$1-server.conf"
  cat >"$conf.new"
  if cmp -s "$conf.new" "$conf"; then
    rm -f "$conf.new"
  else
    mv "$conf.new" "$conf"
    CHANGED+=("$1")
  fi
}

write_confs() {
  mkdir -p "$DIR"/{srv/d1,run,log,cache,rings}
  for name in object container account; do
    put_conf "$name" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $(port_of "$name")
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
  # s3api before tempauth (it turns S3 signatures into a tempauth identity)
  # and before slo (S3 multipart uploads become SLOs).
  put_conf proxy <<CONF
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
# The storage URL in the user line: built from the Host header it may lose the port.
user_test_tester = testing .admin http://127.0.0.1:$PORT/v1/AUTH_test
# The same account for clients that reach Swift through a TCP proxy (fault
# tests): its storage URL is built from the Host header, so it names the proxy.
user_test_proxied = testing .admin
# The same account for tests that revoke its tokens, away from everyone else's.
user_test_revoked = testing .admin http://127.0.0.1:$PORT/v1/AUTH_test

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
# Without it, S3 multipart parts under 5 MiB fail with EntityTooSmall.
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
  # The rings name the backend ports: rebuild them when those change.
  local stamp="$DIR/rings/ports"
  if [ ! -f "$DIR/rings/object.ring.gz" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$BACKEND" ]; then
    # One Python process builds the three rings (~1 s; nine
    # swift-ring-builder calls take ~10 s).
    /usr/bin/python3 - "$DIR/rings" "$BACKEND" <<'PY'
import sys
from swift.common.ring import RingBuilder
d, base = sys.argv[1], int(sys.argv[2])
for name, port in (("object", base), ("container", base + 1), ("account", base + 2)):
    b = RingBuilder(10, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "d1", "weight": 100})
    b.rebalance()
    b.save(f"{d}/{name}.builder")
    b.get_ring().save(f"{d}/{name}.ring.gz")
PY
    echo "$BACKEND" >"$stamp"
  fi
}

all_alive() {
  for s in "${SERVERS[@]}"; do alive "$DIR/run/$s.pid" || return 1; done
}

start() {
  # A Swift we did not start answers here: use it.
  if answers && ! ls "$DIR"/run/*.pid >/dev/null 2>&1; then
    print_env
    return 0
  fi
  if ! command -v swift-proxy-server >/dev/null || ! command -v memcached >/dev/null; then
    echo "swift or memcached is not installed: run scripts/install-test-deps.sh" >&2
    return 1
  fi
  write_confs
  # Quick answer: ours is up, with the confs written now.
  if [ ${#CHANGED[@]} = 0 ] && all_alive && answers; then
    print_env
    return 0
  fi
  for s in ${CHANGED[@]+"${CHANGED[@]}"}; do
    if alive "$DIR/run/$s.pid"; then
      echo "swift-$s-server: new conf, restarting it" >&2
      stop_pids "$(cat "$DIR/run/$s.pid")"
    fi
  done
  if ! alive "$DIR/run/memcached.pid" && ! listening "$MEMCACHED_PORT"; then
    # 9>&-: the servers must not inherit (and hold) the lock.
    memcached -u root -l 127.0.0.1 -p "$MEMCACHED_PORT" -m 64 -U 0 -d -P "$DIR/run/memcached.pid" 9>&-
  fi
  for s in "${SERVERS[@]}"; do
    if ! alive "$DIR/run/$s.pid"; then
      # workers = 0: the process started is the server itself.
      setsid "swift-$s-server" "$DIR/$s-server.conf" -v >>"$DIR/log/$s.log" 2>&1 </dev/null 9>&- &
      echo $! >"$DIR/run/$s.pid"
    fi
  done
  for _ in $(seq 1 300); do
    if answers && listening "$BACKEND" && listening $((BACKEND + 1)) && listening $((BACKEND + 2)); then
      print_env
      return 0
    fi
    for s in "${SERVERS[@]}"; do
      if ! alive "$DIR/run/$s.pid"; then
        echo "swift-$s-server exited; the end of $DIR/log/$s.log:" >&2
        tail -n 20 "$DIR/log/$s.log" >&2 || true
        return 1
      fi
    done
    sleep 0.2
  done
  echo "swift did not answer on $AUTH within 60 s; logs in $DIR/log" >&2
  tail -n 20 "$DIR"/log/*.log >&2 || true
  return 1
}

# Stop these processes: TERM, up to 10 s to go (and free their ports), KILL.
stop_pids() {
  local p left
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    left=0
    for p in "$@"; do
      kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && left=1
    done
    [ "$left" = 0 ] && return 0
    sleep 0.2
  done
  for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
}

stop() {
  local pids=()
  for s in proxy account container object memcached; do
    if alive "$DIR/run/$s.pid"; then pids+=("$(cat "$DIR/run/$s.pid")"); fi
    rm -f "$DIR/run/$s.pid"
  done
  if [ ${#pids[@]} -gt 0 ]; then stop_pids "${pids[@]}"; fi
}

status() {
  for s in "${SERVERS[@]}" memcached; do
    if alive "$DIR/run/$s.pid"; then
      echo "$s: running (pid $(cat "$DIR/run/$s.pid"))"
    else
      echo "$s: not running"
    fi
  done
  if answers; then
    echo "swift answers on $AUTH"
  else
    echo "swift does not answer on $AUTH"
    return 1
  fi
}

case "$cmd" in
  start | stop) ;;
  status)
    status
    exit
    ;;
  *)
    echo "usage: $0 start|stop|status [DIR]" >&2
    exit 2
    ;;
esac

# One start or stop at a time per DIR: test binaries run in parallel and
# each of them asks for a Swift.
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
"$cmd"
