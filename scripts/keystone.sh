#!/usr/bin/env bash
# A real OpenStack Keystone (PyPI `keystone` 30.x) on 127.0.0.1:5000 for
# Coffer's tests, with the users, projects, roles and catalog entry they use.
# Everything it makes lives under DIR (COFFER_KEYSTONE_DIR, default
# /var/tmp/coffer-keystone): the venv, keystone.conf, the sqlite DB, the
# fernet and credential keys, the gunicorn pid and log files.
#
#   scripts/keystone.sh start         install (once), set up (once), start
#                                     gunicorn unless it runs, wait until it
#                                     answers, make sure the fixtures exist,
#                                     print the `export` lines of `env`
#   scripts/keystone.sh stop          stop the gunicorn that start started
#   scripts/keystone.sh status
#   scripts/keystone.sh env           `export` lines for a test to eval
#   scripts/keystone.sh endpoint URL  point the database service's public
#                                     endpoint at URL (keep the literal
#                                     $(project_id)s in it)
#
# Fixtures (domain Default):
#   admin / coffer-admin-pw      admin on project admin (keystone-manage bootstrap)
#   coffer / coffer-service-pw   admin on project service (Coffer's service user)
#   alice / alice-pw             member on alpha
#   bob / bob-pw                 member on beta
#   carol / carol-pw             admin on alpha (a cloud admin for Coffer)
#   roles admin, member, reader, service (bootstrap also makes manager, and
#   the implications admin -> manager -> member -> reader: tokens list them)
#   service trove (type database), public endpoint in RegionOne:
#   COFFER_KEYSTONE_DATABASE_URL, default http://127.0.0.1:8779/v1.0/$(project_id)s.
#   start creates that endpoint when missing, and changes an existing one
#   only when COFFER_KEYSTONE_DATABASE_URL is set: a plain start must not
#   undo what `endpoint URL` set for a test that runs now.
#
# The package spec installed is COFFER_KEYSTONE_PIP (default
# "keystone==30.* gunicorn"); the venv's python is COFFER_KEYSTONE_PYTHON
# (default python3).
set -euo pipefail

cmd="${1:-start}"
DIR="${COFFER_KEYSTONE_DIR:-/var/tmp/coffer-keystone}"
VENV="$DIR/venv"
PIP_SPEC="${COFFER_KEYSTONE_PIP:-keystone==30.* gunicorn}"
PYTHON="${COFFER_KEYSTONE_PYTHON:-python3}"
HOST=127.0.0.1
PORT=5000
AUTH_URL="http://$HOST:$PORT/v3"
ADMIN_PW=coffer-admin-pw
DEFAULT_DB_URL='http://127.0.0.1:8779/v1.0/$(project_id)s'
CONF="$DIR/keystone.conf"
PIDFILE="$DIR/run/gunicorn.pid"
LOG="$DIR/log/keystone.log"

log() { echo "keystone.sh: $*" >&2; }

answers() {
  curl -s -m 5 -o /dev/null -w '%{http_code}' "$AUTH_URL" 2>/dev/null | grep -q '^200$'
}

# Running, and not a zombie that nobody has reaped yet.
alive() {
  [ -f "$1" ] || return 1
  local pid
  pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

# The venv is made once; the stamp says which spec it holds, so a half-done
# install (or a new spec) is redone.
install() {
  local stamp="$VENV/.coffer-installed"
  if [ -x "$VENV/bin/gunicorn" ] && [ -x "$VENV/bin/keystone-manage" ] &&
    [ "$(cat "$stamp" 2>/dev/null)" = "$PIP_SPEC" ]; then
    return 0
  fi
  log "installing $PIP_SPEC into $VENV (a minute or two)"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  # shellcheck disable=SC2086 # the spec is a list of requirements
  "$VENV/bin/pip" install -q $PIP_SPEC >"$DIR/log/pip.log" 2>&1 || {
    log "pip install failed; the end of $DIR/log/pip.log:"
    tail -n 20 "$DIR/log/pip.log" >&2
    return 1
  }
  echo "$PIP_SPEC" >"$stamp"
}

# Write keystone.conf and the WSGI wrapper; say (exit 0) whether either
# changed, so that a running server with an old one is restarted.
write_conf() {
  local changed=1
  cat >"$CONF.new" <<CONF
[DEFAULT]
# Logs go to stderr, which is gunicorn's log file.
use_stderr = true

[database]
connection = sqlite:///$DIR/keystone.db

[token]
provider = fernet

[fernet_tokens]
key_repository = $DIR/fernet-keys

[fernet_receipts]
key_repository = $DIR/fernet-keys

[credential]
key_repository = $DIR/credential-keys

[identity]
# bcrypt's cheapest cost: tests issue many tokens, and the default (12)
# costs ~0.25 s of CPU per password check.
password_hash_rounds = 4
CONF
  if ! cmp -s "$CONF.new" "$CONF"; then mv "$CONF.new" "$CONF"; changed=0; else rm -f "$CONF.new"; fi

  # There is no keystone-wsgi-public script in the wheel. oslo.config
  # parses sys.argv when keystone configures itself, and would choke on
  # gunicorn's arguments (the workers die): hide them.
  cat >"$DIR/keystone_wsgi.py.new" <<'PY'
import sys

sys.argv = sys.argv[:1]

from keystone.server import wsgi  # noqa: E402

application = wsgi.initialize_public_application()
PY
  if ! cmp -s "$DIR/keystone_wsgi.py.new" "$DIR/keystone_wsgi.py"; then
    mv "$DIR/keystone_wsgi.py.new" "$DIR/keystone_wsgi.py"
    changed=0
  else
    rm -f "$DIR/keystone_wsgi.py.new"
  fi
  return $changed
}

# DB schema, keys and the admin user/project/roles/identity endpoint: once
# (~15 s). Redone from the top if it did not finish: every step is
# idempotent.
setup_once() {
  [ -f "$DIR/.setup-done" ] && return 0
  log "setting up the database and keys"
  local km=("$VENV/bin/keystone-manage" --config-file "$CONF")
  {
    "${km[@]}" db_sync &&
      "${km[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" &&
      "${km[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" &&
      "${km[@]}" bootstrap --bootstrap-password "$ADMIN_PW" \
        --bootstrap-public-url "$AUTH_URL/" --bootstrap-region-id RegionOne
  } >>"$DIR/log/setup.log" 2>&1 || {
    log "keystone-manage failed; the end of $DIR/log/setup.log:"
    tail -n 20 "$DIR/log/setup.log" >&2
    return 1
  }
  touch "$DIR/.setup-done"
}

serve() {
  # setsid: gunicorn leads its own process group, which stop signals.
  # 9>&-: it must not inherit (and hold) the lock. No --preload: the
  # workers must not share the master's sqlite connections.
  local extra=()
  # gunicorn 25.1+ otherwise opens a control socket at a path every gunicorn
  # of this user shares (~/.gunicorn/gunicorn.ctl).
  # (Not `| grep -q`: with pipefail, the SIGPIPE of --help would count.)
  if [[ "$("$VENV/bin/gunicorn" --help 2>/dev/null)" == *--no-control-socket* ]]; then
    extra+=(--no-control-socket)
  fi
  OS_KEYSTONE_CONFIG_FILES="$CONF" setsid "$VENV/bin/gunicorn" \
    --bind "$HOST:$PORT" --workers 2 --timeout 120 --graceful-timeout 5 \
    ${extra[@]+"${extra[@]}"} \
    --chdir "$DIR" --pythonpath "$DIR" --access-logfile - \
    keystone_wsgi:application >>"$LOG" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDFILE"
}

wait_answers() {
  for _ in $(seq 1 300); do
    answers && return 0
    if ! alive "$PIDFILE"; then
      log "gunicorn exited; the end of $LOG:"
      tail -n 30 "$LOG" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  log "keystone did not answer on $AUTH_URL within 60 s; the end of $LOG:"
  tail -n 30 "$LOG" >&2 || true
  return 1
}

# Talks to the Keystone v3 API as admin: `ensure` makes the fixtures exist
# and writes $DIR/env.sh; `endpoint URL` sets the database endpoint. One
# Python process (stdlib only) does it in ~10 requests.
fixtures() {
  local py="$PYTHON"
  [ -x "$VENV/bin/python" ] && py="$VENV/bin/python"
  KS_URL="$AUTH_URL" KS_ADMIN_PW="$ADMIN_PW" KS_ENV_FILE="$DIR/env.sh" \
    KS_DEFAULT_DB_URL="$DEFAULT_DB_URL" "$py" - "$@" <<'PY'
import json
import os
import sys
import urllib.error
import urllib.request

URL = os.environ["KS_URL"]


def call(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, resp.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        if method == "HEAD" and e.code == 404:
            return 404, e.headers, None
        sys.exit(f"keystone.sh: {method} {path} -> {e.code}: {e.read().decode()[:500]}")


def admin_token():
    auth = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"},
            "password": os.environ["KS_ADMIN_PW"]}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    return call("POST", "/auth/tokens", auth)[1]["X-Subject-Token"]


def by_name(tok, collection, extra=""):
    body = call("GET", f"/{collection}?domain_id=default{extra}", token=tok)[2]
    return {x["name"]: x for x in body[collection]}


def ensure_service(tok):
    services = call("GET", "/services?type=database", token=tok)[2]["services"]
    for s in services:
        if s.get("name") == "trove":
            return s["id"]
    body = {"service": {"type": "database", "name": "trove", "enabled": True,
                        "description": "Coffer (Trove API)"}}
    return call("POST", "/services", body, tok)[2]["service"]["id"]


def set_endpoint(tok, service_id, url, force):
    eps = call("GET", f"/endpoints?service_id={service_id}&interface=public",
               token=tok)[2]["endpoints"]
    if not eps:
        body = {"endpoint": {"service_id": service_id, "interface": "public",
                             "region_id": "RegionOne", "url": url, "enabled": True}}
        call("POST", "/endpoints", body, tok)
        return
    for ep in eps:
        if force and ep["url"] != url:
            call("PATCH", f"/endpoints/{ep['id']}", {"endpoint": {"url": url}}, tok)


def ensure():
    tok = admin_token()
    # The default domain's roles have domain_id null: list them all.
    roles = {r["name"]: r for r in call("GET", "/roles", token=tok)[2]["roles"]}
    for name in ("admin", "member", "reader", "service"):
        if name not in roles:
            roles[name] = call("POST", "/roles", {"role": {"name": name}}, tok)[2]["role"]
    projects = by_name(tok, "projects")
    for name in ("service", "alpha", "beta"):
        if name not in projects:
            body = {"project": {"name": name, "domain_id": "default", "enabled": True}}
            projects[name] = call("POST", "/projects", body, tok)[2]["project"]
    users = by_name(tok, "users")
    wanted = [  # user, password, role, project
        ("coffer", "coffer-service-pw", "admin", "service"),
        ("alice", "alice-pw", "member", "alpha"),
        ("bob", "bob-pw", "member", "beta"),
        ("carol", "carol-pw", "admin", "alpha"),
    ]
    for user, pw, role, project in wanted:
        pid = projects[project]["id"]
        if user not in users:
            # An existing user's password is left alone: changing it
            # would revoke the tokens tests hold.
            body = {"user": {"name": user, "password": pw, "domain_id": "default",
                             "default_project_id": pid, "enabled": True}}
            users[user] = call("POST", "/users", body, tok)[2]["user"]
        grant = f"/projects/{pid}/users/{users[user]['id']}/roles/{roles[role]['id']}"
        if call("HEAD", grant, token=tok)[0] == 404:
            call("PUT", grant, token=tok)
    service_id = ensure_service(tok)
    env_url = os.environ.get("COFFER_KEYSTONE_DATABASE_URL")
    set_endpoint(tok, service_id, env_url or os.environ["KS_DEFAULT_DB_URL"],
                 force=bool(env_url))
    lines = [
        f"export OS_AUTH_URL={URL}",
        "export OS_IDENTITY_API_VERSION=3",
        "export OS_USER_DOMAIN_NAME=Default",
        "export OS_PROJECT_DOMAIN_NAME=Default",
        f"export COFFER_KS_ALPHA_ID={projects['alpha']['id']}",
        f"export COFFER_KS_BETA_ID={projects['beta']['id']}",
        f"export COFFER_KS_SERVICE_ID={projects['service']['id']}",
    ]
    path = os.environ["KS_ENV_FILE"]
    with open(path + ".new", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".new", path)


if sys.argv[1] == "ensure":
    ensure()
elif sys.argv[1] == "endpoint":
    tok = admin_token()
    set_endpoint(tok, ensure_service(tok), sys.argv[2], force=True)
PY
}

start() {
  mkdir -p "$DIR/run" "$DIR/log"
  # A Keystone we did not start answers here: use it, fixtures only.
  if ! alive "$PIDFILE" && answers; then
    fixtures ensure
    cat "$DIR/env.sh"
    return 0
  fi
  # When ours runs, each step below is a quick check.
  install
  local new_conf=1
  write_conf && new_conf=0
  setup_once
  if alive "$PIDFILE" && [ "$new_conf" = 0 ]; then
    log "new keystone.conf: restarting gunicorn"
    stop
  fi
  if ! alive "$PIDFILE"; then
    log "starting gunicorn on $HOST:$PORT (log: $LOG)"
    serve
  fi
  wait_answers
  fixtures ensure
  cat "$DIR/env.sh"
}

# TERM gunicorn's process group (master and workers), up to 10 s to go (and
# free the port), then KILL.
stop() {
  alive "$PIDFILE" || {
    rm -f "$PIDFILE"
    return 0
  }
  local pid
  pid="$(cat "$PIDFILE")"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    alive "$PIDFILE" || break
    sleep 0.2
  done
  alive "$PIDFILE" && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$PIDFILE"
}

status() {
  if alive "$PIDFILE"; then
    echo "gunicorn: running (pid $(cat "$PIDFILE"))"
  else
    echo "gunicorn: not running"
  fi
  if answers; then
    echo "keystone answers on $AUTH_URL"
  else
    echo "keystone does not answer on $AUTH_URL"
    return 1
  fi
}

print_env() {
  if [ -f "$DIR/env.sh" ]; then
    cat "$DIR/env.sh"
  else
    log "no $DIR/env.sh yet: run $0 start"
    return 1
  fi
}

endpoint() {
  answers || {
    log "keystone does not answer on $AUTH_URL: run $0 start"
    return 1
  }
  fixtures endpoint "$1"
}

case "$cmd" in
  start | stop) ;;
  status)
    status
    exit
    ;;
  env)
    print_env
    exit
    ;;
  endpoint)
    [ $# = 2 ] || {
      echo "usage: $0 endpoint URL" >&2
      exit 2
    }
    ;;
  *)
    echo "usage: $0 start|stop|status|env|endpoint URL" >&2
    exit 2
    ;;
esac

# One start, stop or endpoint at a time per DIR: test binaries run in
# parallel and each of them asks for a Keystone.
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
if [ "$cmd" = endpoint ]; then endpoint "$2"; else "$cmd"; fi
