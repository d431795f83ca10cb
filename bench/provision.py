#!/usr/bin/env python3
"""Provisioning benchmark: POST /instances -> ACTIVE through Coffer for
MariaDB, PostgreSQL 15 and Redis 7, each next to the bare initialisation and
start of the same server (until it answers) on the same machine, in the
same run:

  mariadb     mariadb-install-db + mariadbd, until `SELECT 1` answers
  postgresql  initdb + postgres -D (as the postgres OS user), until `SELECT 1` answers
  redis       redis-server with a minimal config (appendonly yes), until PING answers

Prints a table and writes the figures as JSON
(bench/results/provision-<time>.json).

Usage: bench/provision.py COFFER_BINARY [--runs N] [--datastores mariadb,postgresql,redis]
"""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, time
from common import remove_state, free_port, http, http_ok, wait_until, write_result

DATASTORES = ("mariadb", "postgresql", "redis")
PG_BIN = "/usr/lib/postgresql/15/bin"
PG_USER = "postgres"
# A private address per bare server (Coffer's instances use 127.77.0.0/16).
BARE_IP = {"mariadb": "127.78.0.1", "postgresql": "127.78.0.2", "redis": "127.78.0.3"}
QUIET = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(proc, sig=signal.SIGTERM):
    """Stop a bare server (its own session) and wait for it."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _answers(cmd, env=None):
    return subprocess.run(cmd, env=env, **QUIET).returncode == 0


def bare_mariadb(workdir, ip):
    """install-db + start until a query answers; returns seconds."""
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    sock = os.path.join(workdir, "sock")
    t0 = time.monotonic()
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--skip-test-db",
                    "--skip-name-resolve", "--auth-root-authentication-method=socket"],
                   check=True, **QUIET)
    proc = subprocess.Popen(["mariadbd", "--no-defaults", "--user=root", f"--datadir={data}",
                             f"--bind-address={ip}", "--port=3306", f"--socket={sock}",
                             f"--pid-file={workdir}/pid", f"--log-error={workdir}/err.log",
                             "--skip-name-resolve", "--innodb-buffer-pool-size=256M"],
                            start_new_session=True, **QUIET)
    try:
        wait_until(lambda: proc.poll() is not None or
                   _answers(["mariadb", "--no-defaults", "-S", sock, "-u", "root", "-e", "SELECT 1"]))
        assert proc.poll() is None, f"mariadbd exited: {_tail(os.path.join(workdir, 'err.log'))}"
        return time.monotonic() - t0
    finally:
        _stop(proc)


def _as_postgres(cmd):
    """`cmd` run as the postgres OS user, as Coffer's agent runs initdb and the server."""
    return ["setpriv", "--reuid", PG_USER, "--regid", PG_USER, "--init-groups", "--"] + cmd


def bare_postgresql(workdir, ip):
    """initdb (the options Coffer's agent gives it) + `postgres -D` until
    `SELECT 1` answers over the unix socket; returns seconds."""
    pw = os.urandom(12).hex()
    data, run = os.path.join(workdir, "data"), os.path.join(workdir, "run")
    pwfile = os.path.join(workdir, "pwfile")
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, pw.encode())
    os.close(fd)
    os.makedirs(run)
    for p in (workdir, run, pwfile):
        shutil.chown(p, PG_USER, PG_USER)
    env = {"PATH": "/usr/bin:/bin"}
    t0 = time.monotonic()
    subprocess.run(_as_postgres([f"{PG_BIN}/initdb", f"--pgdata={data}", "--username=os_admin", f"--pwfile={pwfile}",
                                 "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=UTF8",
                                 "--locale=C.UTF-8", "--data-checksums", "--no-instructions"]),
                   check=True, env=env, cwd="/", **QUIET)
    log = open(os.path.join(workdir, "server.log"), "w")
    proc = subprocess.Popen(_as_postgres([f"{PG_BIN}/postgres", "-D", data, "-c", f"listen_addresses={ip}",
                                          "-c", "port=5432", "-c", f"unix_socket_directories={run}"]),
                            env=env, cwd="/", stdout=log, stderr=log, start_new_session=True)
    log.close()
    client_env = dict(env, PGPASSWORD=pw, PGCONNECT_TIMEOUT="5")
    try:
        wait_until(lambda: proc.poll() is not None or
                   _answers(["psql", "-h", run, "-p", "5432", "-U", "os_admin", "-d", "postgres", "-X", "-A", "-t",
                             "-c", "SELECT 1"], env=client_env))
        assert proc.poll() is None, f"postgres exited: {_tail(os.path.join(workdir, 'server.log'))}"
        return time.monotonic() - t0
    finally:
        _stop(proc, signal.SIGINT)   # fast shutdown


def bare_redis(workdir, ip):
    """redis-server with a minimal config until PING answers; returns seconds."""
    conf = os.path.join(workdir, "redis.conf")
    with open(conf, "w") as f:
        f.write(f"bind {ip}\nport 6379\ndir {workdir}\nappendonly yes\ndaemonize no\n"
                f"logfile {workdir}/redis.log\npidfile {workdir}/redis.pid\n")
    t0 = time.monotonic()
    proc = subprocess.Popen(["redis-server", conf], start_new_session=True, **QUIET)
    try:
        wait_until(lambda: proc.poll() is not None or
                   subprocess.run(["redis-cli", "-h", ip, "-p", "6379", "PING"], capture_output=True,
                                  text=True).stdout.strip() == "PONG")
        assert proc.poll() is None, f"redis-server exited: {_tail(os.path.join(workdir, 'redis.log'))}"
        return time.monotonic() - t0
    finally:
        _stop(proc)


BARE = {"mariadb": (bare_mariadb, "mariadb-install-db + mariadbd until SELECT 1 answers"),
        "postgresql": (bare_postgresql, "initdb + postgres -D (as postgres) until SELECT 1 answers"),
        "redis": (bare_redis, "redis-server (appendonly yes) until PING answers")}
LABEL = {"mariadb": "MariaDB", "postgresql": "PostgreSQL", "redis": "Redis"}


def coffer_create(ep, ds, i):
    """POST /instances -> ACTIVE; deletes the instance; returns seconds."""
    body = {"instance": {"name": f"bench-{ds}-{i}", "flavorRef": "1", "volume": {"size": 1},
                         "datastore": {"type": ds}}}
    t0 = time.monotonic()
    code, v = http("POST", f"{ep}/instances", body)
    assert code == 200, v
    iid = v["instance"]["id"]
    try:
        status = wait_until(lambda: _status(ep, iid) in ("ACTIVE", "ERROR") and _status(ep, iid))
        elapsed = time.monotonic() - t0
        assert status == "ACTIVE", f"{ds} instance ended {status}: {http('GET', f'{ep}/instances/{iid}')[1]}"
        return elapsed
    finally:
        http("DELETE", f"{ep}/instances/{iid}")
        wait_until(lambda: http("GET", f"{ep}/instances/{iid}")[0] == 404, timeout=60, every=0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("coffer")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--datastores", default=",".join(DATASTORES),
                    help="comma-separated, of: " + ", ".join(DATASTORES))
    args = ap.parse_args()
    datastores = [d.strip() for d in args.datastores.split(",") if d.strip()]
    unknown = [d for d in datastores if d not in DATASTORES]
    if unknown or not datastores:
        ap.error(f"unknown datastore(s) {unknown}; known: {', '.join(DATASTORES)}")

    def stop(signum, frame):   # SIGTERM/SIGINT: clean up through the finally blocks
        print(f"signal {signum}: cleaning up", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    state = tempfile.mkdtemp(prefix="coffer-bench-")
    port = free_port()
    env = dict(os.environ, COFFER__API__LISTEN=f"127.0.0.1:{port}",
               COFFER__COMPUTE__ADDRESS_RANGE="127.77.0.0/16", COFFER__QUOTAS__INSTANCES="-1",
               COFFER__QUOTAS__VOLUMES="-1", COFFER__QUOTAS__BACKUPS="-1", RUST_LOG="warn")
    log = open(os.path.join(state, "coffer.log"), "w")
    up = subprocess.Popen([args.coffer, "up", "--state-dir", state], env=env, stdout=log, stderr=log)
    ep = f"http://127.0.0.1:{port}/v1.0/bench"
    figures = {}
    try:
        wait_until(lambda: up.poll() is not None or http_ok(f"http://127.0.0.1:{port}/"), timeout=30, every=0.05)
        assert up.poll() is None, f"coffer exited: {_tail(os.path.join(state, 'coffer.log'))}"
        for ds in datastores:
            bare, _ = BARE[ds]
            coffer_times, bare_times = [], []
            for i in range(args.runs):
                coffer_times.append(coffer_create(ep, ds, i))
                work = tempfile.mkdtemp(prefix=f"bare-{ds}-")
                try:
                    bare_times.append(bare(work, BARE_IP[ds]))
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                print(f"{ds} run {i + 1}: coffer {coffer_times[-1]:.3f} s, bare {bare_times[-1]:.3f} s", flush=True)
            figures[ds] = (coffer_times, bare_times)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        log.close()
        subprocess.run(["pkill", "-9", "-f", state])
        remove_state(state)

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = {"benchmark": "provision", "time": now, "machine": {"cores": os.cpu_count()}, "runs": args.runs,
              "datastores": {}}
    print()
    print(f"runs: {args.runs} (median); seconds")
    print(f"{'datastore':<12}{'coffer':>10}{'bare':>10}{'overhead':>10}{'ratio':>8}  goal: overhead < 0.5 s")
    for ds, (coffer_times, bare_times) in figures.items():
        c, b = statistics.median(coffer_times), statistics.median(bare_times)
        result["datastores"][ds] = {
            "coffer": "POST /instances (flavor 1, 1 GB volume) -> ACTIVE", "bare": BARE[ds][1],
            "coffer_post_to_active_s": coffer_times, "bare_init_start_s": bare_times,
            "median_coffer_s": c, "median_bare_s": b, "overhead_s": c - b, "ratio": c / b,
            "goal_overhead_under_0.5s": c - b < 0.5}
        print(f"{LABEL[ds]:<12}{c:>10.3f}{b:>10.3f}{c - b:>10.3f}{c / b:>8.2f}  {'met' if c - b < 0.5 else 'NOT met'}")
    print(f"results: {write_result(result, 'provision')}")


def _tail(path, n=3000):
    try:
        with open(path) as f:
            return f.read()[-n:]
    except OSError as e:
        return str(e)


def _status(ep, iid):
    return http("GET", f"{ep}/instances/{iid}")[1]["instance"]["status"]


if __name__ == "__main__":
    sys.exit(main())
