#!/usr/bin/env python3
"""Backup benchmark: load ~N GB into a MariaDB instance run by Coffer, then in
one run measure on the same data
  - raw:      mariabackup --stream=xbstream | cat > /dev/null
  - operator: mariabackup --stream=xbstream | gzip | openssl enc -aes-256-cbc > file
  - Coffer:   POST /backups -> COMPLETED (zstd, and with compression off)
  - restore:  POST /instances with restorePoint -> ACTIVE
and print throughput (MB/s of datastore bytes, the stream mariabackup
produces), stored size, peak RSS of the guest agent, and the ratios the issue
sets as goals. Writes JSON to bench/results/backups-<time>.json.

The raw stream goes to /dev/null; a second raw row writes it to a file on the
same disk as Coffer's filesystem storage, which bounds any pipeline that
stores the backup there.

Usage: bench/backups.py COFFER_BINARY [--gb 1.0] [--codec zstd:1]
"""
import argparse, glob, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.request

PROJECT = "bench"


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"X-Auth-Token": "bench", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout=600, every=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise TimeoutError("condition not met")


class Coffer:
    def __init__(self, binary, state, codec):
        self.binary, self.state, self.proc = binary, state, None
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/v1.0/{PROJECT}"
        self.start(codec)

    def start(self, codec):
        env = dict(os.environ, COFFER__API__LISTEN=f"127.0.0.1:{self.port}",
                   COFFER__COMPUTE__ADDRESS_RANGE="127.77.0.0/16",
                   COFFER__BACKUP__CODEC=codec, RUST_LOG="warn")
        log = open(os.path.join(self.state, "coffer.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "up", "--state-dir", self.state], env=env,
                                     stdout=log, stderr=log, start_new_session=True)
        wait_until(lambda: self._up(), timeout=30)

    def _up(self):
        try:
            return http("GET", f"http://127.0.0.1:{self.port}/")[0] == 200
        except OSError:
            return False

    def restart(self, codec):
        """Instances keep running; only the control plane restarts."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.start(codec)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["pkill", "-9", "-f", self.state], stderr=subprocess.DEVNULL)

    def wait_instance(self, iid):
        def done():
            s, v = http("GET", f"{self.api}/instances/{iid}")
            st = v["instance"]["status"]
            return v["instance"] if st in ("ACTIVE", "ERROR") else None
        inst = wait_until(done, timeout=3600, every=0.05)
        if inst["status"] != "ACTIVE":
            sys.exit(f"instance {iid} is {inst['status']}: {inst.get('fault')}")
        return inst


def agent_pid(state, iid):
    for p in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            cmd = open(p, "rb").read().split(b"\0")
        except OSError:
            continue
        if b"guest-agent" in cmd and any(iid.encode() in c for c in cmd):
            return int(p.split("/")[2])
    return None


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    """Direct children, whichever of the agent's threads started them."""
    out = []
    for t in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            out += [int(c) for c in open(t).read().split()]
        except OSError:
            pass
    return out


class RssSampler(threading.Thread):
    """Peak RSS of the agent and (separately) of its child processes."""
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak_agent, self.peak_children, self.stop_flag = pid, 0, 0, False

    def run(self):
        while not self.stop_flag:
            self.peak_agent = max(self.peak_agent, rss_kib(self.pid))
            self.peak_children = max(self.peak_children, sum(rss_kib(c) for c in children(self.pid)))
            time.sleep(0.05)


def timed_shell(cmd):
    t0 = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("coffer")
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--codec", default="zstd:1")
    args = ap.parse_args()
    for tool in ("mariabackup", "mariadb", "gzip", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (scripts/install-test-deps.sh installs it)")

    state = tempfile.mkdtemp(prefix="coffer-bench-backups-")
    work = tempfile.mkdtemp(prefix="coffer-bench-work-")
    c = Coffer(os.path.abspath(args.coffer), state, args.codec)
    results = {"gb_requested": args.gb, "codec": args.codec}
    try:
        s, v = http("GET", f"{c.api}/flavors")
        flavor = max(v["flavors"], key=lambda f: f["ram"])
        s, v = http("POST", f"{c.api}/instances", {"instance": {
            "name": "bench", "flavorRef": str(flavor["id"]), "volume": {"size": max(5, int(args.gb * 4) + 2)},
            "datastore": {"type": "mariadb"}, "databases": [{"name": "sbtest"}]}})
        assert s == 200, v
        iid = v["instance"]["id"]
        c.wait_instance(iid)
        idir = os.path.join(state, "instances", iid)
        sock = glob.glob(os.path.join(idir, "run", "*.sock"))[0]
        pw = open(os.path.join(idir, "secret", "os_admin.password")).read().strip()
        env = dict(os.environ, MYSQL_PWD=pw)

        def sql(q):
            subprocess.run(["mariadb", "--no-defaults", "-S", sock, "-u", "os_admin", "sbtest", "-e", q],
                           check=True, env=env)

        # sysbench's table: digit groups compress about as real data does.
        print(f"loading ~{args.gb} GB (sysbench-like rows) ...", flush=True)
        t0 = time.monotonic()
        sql("CREATE TABLE sbtest1 (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, "
            "pad CHAR(60) NOT NULL, KEY k_1 (k)) ENGINE=InnoDB")
        rows = int(args.gb * (1 << 30) / 240)
        batch = 250_000
        done = 0
        group = "LPAD(FLOOR(RAND()*99999999999), 11, '0')"
        while done < rows:
            n = min(batch, rows - done)
            sql(f"INSERT INTO sbtest1 SELECT seq, FLOOR(RAND()*{rows}), "
                f"CONCAT_WS('-', {', '.join([group] * 10)}), "
                f"CONCAT_WS('-', {', '.join([group] * 5)}) FROM seq_{done + 1}_to_{done + n}")
            done += n
        results["load_seconds"] = round(time.monotonic() - t0, 1)
        du = int(subprocess.run(["du", "-sb", os.path.join(idir, "data")], capture_output=True,
                                text=True).stdout.split()[0])
        results["data_dir_bytes"] = du
        print(f"loaded {rows} rows in {results['load_seconds']} s; data dir {du / 1e9:.2f} GB", flush=True)

        cnf = os.path.join(work, "backup.cnf")
        with open(os.open(cnf, os.O_CREAT | os.O_WRONLY, 0o600), "w") as f:
            f.write(f"[mariabackup]\nuser=os_admin\npassword={pw}\nsocket={sock}\n")
        key = os.path.join(work, "key")
        with open(os.open(key, os.O_CREAT | os.O_WRONLY, 0o600), "w") as f:
            f.write(os.urandom(32).hex())
        mb = f"mariabackup --defaults-file={cnf} --backup --stream=xbstream --target-dir={work}/t"

        def fresh():
            shutil.rmtree(f"{work}/t", ignore_errors=True)
            os.makedirs(f"{work}/t")

        # Warm the page cache the same way for everyone.
        fresh(); timed_shell(f"{mb} | cat > /dev/null")
        fresh(); raw = timed_shell(f"{mb} | cat > /dev/null")
        # The same stream written to a file: what the disk allows.
        to_file = os.path.join(work, "raw.xb")
        fresh(); raw_file = timed_shell(f"{mb} > {to_file} && sync -f {to_file}")
        os.remove(to_file)
        out = os.path.join(work, "operator.xb.gz.enc")
        fresh(); operator = timed_shell(f"{mb} | gzip | openssl enc -aes-256-cbc -pbkdf2 -pass file:{key} > {out}")
        operator_size = os.path.getsize(out)
        os.remove(out)

        def coffer_backup(name):
            pid = agent_pid(state, iid)
            sampler = RssSampler(pid)
            sampler.start()
            t0 = time.monotonic()
            s, v = http("POST", f"{c.api}/backups", {"backup": {"name": name, "instance": iid}})
            assert s == 202, v
            bid = v["backup"]["id"]

            def done():
                s, v = http("GET", f"{c.api}/backups/{bid}")
                return v["backup"] if v["backup"]["status"] in ("COMPLETED", "FAILED") else None
            b = wait_until(done, timeout=3600, every=0.02)
            secs = time.monotonic() - t0
            sampler.stop_flag = True
            sampler.join()
            if b["status"] != "COMPLETED":
                sys.exit(f"backup failed: {b.get('fail_reason')}")
            wait_until(lambda: http("GET", f"{c.api}/instances/{iid}")[1]["instance"]["status"] == "ACTIVE")
            return b, secs, sampler.peak_agent, sampler.peak_children

        b_zstd, t_zstd, rss_zstd, rss_tool = coffer_backup("bench-" + args.codec)
        c.restart("none")
        b_none, t_none, rss_none, _ = coffer_backup("bench-none")
        c.restart(args.codec)

        t0 = time.monotonic()
        s, v = http("POST", f"{c.api}/instances", {"instance": {
            "name": "restored", "flavorRef": str(flavor["id"]), "volume": {"size": max(5, int(args.gb * 4) + 2)},
            "restorePoint": {"backupRef": b_zstd["id"]}}})
        assert s == 200, v
        c.wait_instance(v["instance"]["id"])
        t_restore = time.monotonic() - t0

        size = b_zstd["size_bytes"]
        mbps = lambda secs: size / secs / 1e6
        rows_out = [
            ("raw mariabackup | cat", raw, None),
            ("raw mariabackup > file (disk bound)", raw_file, None),
            ("mariabackup | gzip | openssl", operator, operator_size),
            (f"Coffer ({args.codec}, AES-256-GCM)", t_zstd, b_zstd["stored_bytes"]),
            ("Coffer (none, AES-256-GCM)", t_none, b_none["stored_bytes"]),
            (f"Coffer restore ({args.codec})", t_restore, None),
        ]
        print()
        print(f"datastore stream: {size / 1e6:.0f} MB (data dir {du / 1e6:.0f} MB)")
        print(f"{'method':<36} {'seconds':>8} {'MB/s':>8} {'stored MB':>10} {'x operator':>11} {'x raw':>7}")
        for name, secs, stored in rows_out:
            st = f"{stored / 1e6:.0f}" if stored else "-"
            print(f"{name:<36} {secs:>8.2f} {mbps(secs):>8.0f} {st:>10} {operator / secs:>11.2f} {raw / secs:>7.2f}")
        print()
        print(f"Coffer / (gzip+openssl): {operator / t_zstd:.1f}x (goal >= 3x)")
        print(f"Coffer / raw stream:     {raw / t_zstd:.2f} (goal >= 0.85)")
        print(f"Coffer, compression off / raw stream: {raw / t_none:.2f} (goal >= 0.85); "
              f"/ raw stream to a file: {raw_file / t_none:.2f}")
        print(f"restore: {mbps(t_restore):.0f} MB/s of datastore data ({t_restore:.1f} s, includes instance start)")
        print(f"peak RSS: agent {rss_zstd / 1024:.0f} MiB ({args.codec}), {rss_none / 1024:.0f} MiB (none); "
              f"mariabackup {rss_tool / 1024:.0f} MiB")
        results.update({
            "stream_bytes": size, "raw_s": raw, "raw_to_file_s": raw_file, "operator_s": operator, "operator_stored": operator_size,
            "coffer_s": t_zstd, "coffer_stored": b_zstd["stored_bytes"], "coffer_none_s": t_none,
            "coffer_none_stored": b_none["stored_bytes"], "restore_s": t_restore,
            "ratio_vs_operator": operator / t_zstd, "ratio_vs_raw": raw / t_zstd,
            "ratio_none_vs_raw": raw / t_none, "peak_rss_agent_kib": rss_zstd,
            "peak_rss_agent_none_kib": rss_none, "peak_rss_mariabackup_kib": rss_tool,
        })
        os.makedirs("bench/results", exist_ok=True)
        path = f"bench/results/backups-{time.strftime('%Y%m%d-%H%M%S')}.json"
        with open(path, "w") as f:
            json.dump(results, f, indent=2)
        print(f"\nwrote {path}")
    finally:
        c.stop()
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
