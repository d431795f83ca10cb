#!/usr/bin/env python3
"""Provisioning benchmark: POST /instances -> ACTIVE for MariaDB through
Coffer, next to the bare `mariadb-install-db` + `mariadbd` start (until the
server answers) on the same machine, in the same run. Prints a table and
writes the figures as JSON (bench/results/provision-<time>.json).

Usage: bench/provision.py COFFER_BINARY [--runs N]
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request
from common import free_port, http, wait_until


def bare_mariadb(workdir, ip):
    """install-db + start until a query answers; returns seconds."""
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    sock = os.path.join(workdir, "sock")
    t0 = time.monotonic()
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--skip-test-db",
                    "--skip-name-resolve", "--auth-root-authentication-method=socket"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.Popen(["mariadbd", "--no-defaults", "--user=root", f"--datadir={data}",
                             f"--bind-address={ip}", "--port=3306", f"--socket={sock}",
                             f"--pid-file={workdir}/pid", f"--log-error={workdir}/err.log",
                             "--skip-name-resolve", "--innodb-buffer-pool-size=256M"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: subprocess.run(["mariadb", "--no-defaults", "-S", sock, "-u", "root", "-e", "SELECT 1"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0)
        return time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("coffer")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    state = tempfile.mkdtemp(prefix="coffer-bench-")
    port = free_port()
    env = dict(os.environ, COFFER__API__LISTEN=f"127.0.0.1:{port}",
               COFFER__COMPUTE__ADDRESS_RANGE="127.77.0.0/16", RUST_LOG="warn")
    log = open(os.path.join(state, "coffer.log"), "w")
    up = subprocess.Popen([args.coffer, "up", "--state-dir", state], env=env, stdout=log, stderr=log)
    ep = f"http://127.0.0.1:{port}/v1.0/bench"
    coffer_times, baseline_times = [], []
    try:
        wait_until(lambda: _ok(f"http://127.0.0.1:{port}/"), timeout=30, every=0.05)
        for i in range(args.runs):
            body = {"instance": {"name": f"bench{i}", "flavorRef": "1", "volume": {"size": 1},
                                 "datastore": {"type": "mariadb"}}}
            t0 = time.monotonic()
            code, v = http("POST", f"{ep}/instances", body)
            assert code == 200, v
            iid = v["instance"]["id"]
            inst = wait_until(lambda: _status(ep, iid) in ("ACTIVE", "ERROR") and _status(ep, iid))
            elapsed = time.monotonic() - t0
            assert inst == "ACTIVE", f"instance ended {inst}"
            coffer_times.append(elapsed)
            http("DELETE", f"{ep}/instances/{iid}")
            wait_until(lambda: http("GET", f"{ep}/instances/{iid}")[0] == 404, timeout=60, every=0.05)

            work = tempfile.mkdtemp(prefix="bare-mariadb-")
            try:
                baseline_times.append(bare_mariadb(work, "127.78.0.1"))
            finally:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=30)
        subprocess.run(["pkill", "-9", "-f", state])
        shutil.rmtree(state, ignore_errors=True)

    c, b = statistics.median(coffer_times), statistics.median(baseline_times)
    result = {"benchmark": "provision-mariadb", "runs": args.runs, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "coffer_post_to_active_s": coffer_times, "bare_init_start_s": baseline_times,
              "median_coffer_s": c, "median_bare_s": b, "overhead_s": c - b, "ratio": c / b}
    print(f"{'figure':<44}{'coffer':>10}{'baseline':>10}{'overhead':>10}{'ratio':>8}")
    print(f"{'MariaDB POST->ACTIVE vs install-db+start (s)':<44}{c:>10.3f}{b:>10.3f}{c - b:>10.3f}{c / b:>8.2f}")
    print(f"goal: control-plane overhead under 0.5 s -> {'met' if c - b < 0.5 else 'NOT met'}")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"provision-{result['time'].replace(':', '')}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"results: {path}")


def _ok(url):
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False


def _status(ep, iid):
    return http("GET", f"{ep}/instances/{iid}")[1]["instance"]["status"]


if __name__ == "__main__":
    sys.exit(main())
