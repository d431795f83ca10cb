#!/usr/bin/env python3
"""Backup benchmark: loads ~1 GB of sysbench-like rows into a MariaDB
instance and measures, on that instance in the same run, backup throughput
(MB/s of datastore bytes, the `size_bytes` Coffer reports) of

  raw       mariabackup --backup --stream=xbstream | cat > /dev/null
  raw file  mariabackup --backup --stream=xbstream | cat > file   (not a goal: the
            same write into the filesystem that Coffer's fs storage does)
  operator  mariabackup --backup --stream=xbstream | gzip | openssl enc -aes-256-cbc > file
  coffer    POST /backups -> COMPLETED (codec zstd:1, and again with codec none)

plus restore (POST /instances with restorePoint -> ACTIVE), compressed
sizes and peak RSS of the guest agent and of mariabackup. Prints a table
and writes the figures as JSON (bench/results/backup-<time>.json).

Usage: bench/backup.py COFFER_BINARY [--gb 1.0] [--runs 1]
"""
import argparse, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.request
from datetime import datetime
from common import free_port, http, wait_until

MB = 1e6
PROJECT = "bench"


def _ok(url):
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False


def _instance(ep, iid):
    return http("GET", f"{ep}/instances/{iid}")[1]["instance"]


def _heartbeat(ep, iid):
    hb = _instance(ep, iid).get("service_status_updated")
    if not hb:
        return 0
    return datetime.fromisoformat(hb + "+00:00").timestamp()


# --- processes: RSS and CPU from /proc ---------------------------------------

TICK = os.sysconf("SC_CLK_TCK")
LABELS = {}   # pid -> name shown instead of its command (both coffer processes are "coffer")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _children(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        text = _read(f"/proc/{pid}/task/{task}/children")
        if text:
            out += [int(p) for p in text.split()]
    return out


def _proc(pid):
    """(comm, rss_bytes, cpu_s self, cpu_s reaped children) or None."""
    stat = _read(f"/proc/{pid}/stat")
    status = _read(f"/proc/{pid}/status")
    if not stat or not status:
        return None
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    f = stat[stat.rindex(")") + 2:].split()
    # fields after the comm start at field 3 (state): utime is 14, stime 15, cutime 16, cstime 17
    utime, stime, cutime, cstime = (int(x) for x in f[11:15])
    m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    rss = int(m.group(1)) * 1024 if m else 0
    return comm, rss, (utime + stime) / TICK, (cutime + cstime) / TICK


def _all_cpu():
    """{pid: (comm, cpu seconds)} of every process."""
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            stat = _read(f"/proc/{pid}/stat")
            if stat:
                f = stat[stat.rindex(")") + 2:].split()
                out[int(pid)] = (stat[stat.index("(") + 1:stat.rindex(")")], (int(f[11]) + int(f[12])) / TICK)
    return out


def _cpu_total():
    """(busy, total) jiffies of all cores, from /proc/stat."""
    v = [int(x) for x in _read("/proc/stat").split("\n")[0].split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


class Sampler:
    """Every 50 ms: RSS of the process `root` and its descendants (max per
    command name; `skip` names are left out with their subtrees) and the CPU
    each pid has used (its last value seen)."""

    def __init__(self, root, skip=(), every=0.05):
        self.root, self.skip, self.every = root, set(skip), every
        self.peak = {}          # comm -> max RSS bytes
        self.cpu = {}           # pid -> (comm, cpu seconds at first sight, last)
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.sys0 = _cpu_total()
        self.all0 = _all_cpu()
        self.root0 = _proc(self.root)
        self._sample()
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()
        busy1, total1 = _cpu_total()
        all1 = _all_cpu()
        # Long-lived processes anywhere on the machine (mariadbd, coffer up, kworkers).
        delta = {}
        for pid, (comm, cpu) in all1.items():
            if pid in self.all0 and self.all0[pid][0] == comm:
                name = LABELS.get(pid, comm)
                delta[name] = delta.get(name, 0.0) + cpu - self.all0[pid][1]
        self.system_cpu = {k: v for k, v in sorted(delta.items(), key=lambda kv: -kv[1])[:6] if v >= 0.05}
        self.system_busy = (busy1 - self.sys0[0]) / max(1, total1 - self.sys0[1])
        r1 = _proc(self.root)
        if self.root0 and r1:
            # self CPU of the root, and CPU of the children it reaped meanwhile
            self.root_cpu = r1[2] - self.root0[2]
            self.root_reaped_cpu = r1[3] - self.root0[3]
        else:
            self.root_cpu = self.root_reaped_cpu = None

    def _sample(self):
        stack = [self.root]
        while stack:
            pid = stack.pop()
            p = _proc(pid)
            if p is None:
                continue
            comm, rss, cpu, _ = p
            if comm in self.skip:
                continue
            self.peak[comm] = max(self.peak.get(comm, 0), rss)
            first = self.cpu.get(pid, (comm, cpu, cpu))[1]
            self.cpu[pid] = (comm, first, cpu)
            stack += _children(pid)
        self.samples += 1

    def _run(self):
        while not self._stop.wait(self.every):
            self._sample()

    def cpu_by_comm(self):
        out = {}
        for comm, first, last in self.cpu.values():
            out[comm] = out.get(comm, 0.0) + (last - first)
        return out


def top_snapshot():
    """The second frame of `top` (the first one averages since boot)."""
    r = subprocess.run(["top", "-b", "-n", "2", "-d", "0.5", "-w", "160"], capture_output=True, text=True)
    frames = r.stdout.split("\ntop - ")
    lines = frames[-1].splitlines()
    return "\n".join(lines[:18])


# --- the instance ------------------------------------------------------------

class Instance:
    def __init__(self, state, iid):
        self.dir = os.path.join(state, "instances", iid)
        run = os.path.join(self.dir, "run")
        socks = [f for f in os.listdir(run) if f.endswith(".sock")]
        assert socks, f"no socket in {run}: {os.listdir(run)}"
        self.socket = os.path.join(run, "mysqld.sock" if "mysqld.sock" in socks else socks[0])
        self.data = os.path.join(self.dir, "data")
        with open(os.path.join(self.dir, "secret", "os_admin.password")) as f:
            self._pw = f.read().strip()

    def agent_pid(self):
        with open(os.path.join(self.dir, "agent.pid")) as f:
            pid = int(f.read().strip())
        cmdline = _read(f"/proc/{pid}/cmdline") or ""
        assert "guest-agent" in cmdline and self.dir in cmdline, f"agent pid {pid} is not this instance's"
        return pid

    def sql(self, query, db="bench"):
        r = subprocess.run(["mariadb", "--no-defaults", "-S", self.socket, "-u", "os_admin", "-N", "-B", db, "-e", query],
                           env=dict(os.environ, MYSQL_PWD=self._pw), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"mariadb: {r.stderr.strip()}")
        return r.stdout.strip()

    def mariabackup_cnf(self, work):
        """A 0600 defaults file with the admin login; mariabackup's first argument."""
        path = os.path.join(work, "mariabackup.cnf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"[mariabackup]\nuser = os_admin\npassword = {self._pw}\nsocket = {self.socket}\n")
        return path


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout.split()[0])


G11 = "LPAD(FLOOR(RAND() * 99999999999), 11, '0')"
C_EXPR = "CONCAT_WS('-', " + ", ".join([G11] * 10) + ")"    # 119 chars, as sysbench's c
PAD_EXPR = "CONCAT_WS('-', " + ", ".join([G11] * 5) + ")"   # 59 chars, as sysbench's pad


def load(inst, gb):
    """sysbench-like rows until the table's file holds ~gb GB; returns figures."""
    target = gb * 1e9
    inst.sql("CREATE TABLE sbtest1 (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0,"
             " c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) ENGINE=InnoDB")
    ibd = os.path.join(inst.data, "bench", "sbtest1.ibd")
    est_rows = max(1000, int(target / 250))
    t0 = time.monotonic()
    rows = 0
    batch = min(250_000, est_rows)
    statements = 0
    while True:
        inst.sql(f"INSERT INTO sbtest1 (id, k, c, pad) SELECT seq, FLOOR(1 + RAND() * {est_rows}), {C_EXPR}, {PAD_EXPR}"
                 f" FROM seq_{rows + 1}_to_{rows + batch}")
        rows += batch
        statements += 1
        size = os.path.getsize(ibd)
        print(f"  loaded {rows} rows, {size / MB:.0f} MB in {time.monotonic() - t0:.1f} s", flush=True)
        if size >= target * 0.97:
            break
        per_row = size / rows
        remaining = int((target - size) / per_row) + 1
        batch = max(10_000, min(1_000_000, remaining))
    load_s = time.monotonic() - t0
    inst.sql("ANALYZE TABLE sbtest1")
    data_len, index_len = (int(x) for x in inst.sql(
        "SELECT data_length, index_length FROM information_schema.tables"
        " WHERE table_schema = 'bench' AND table_name = 'sbtest1'").split())
    return {"rows": rows, "statements": statements, "load_s": load_s, "ibd_bytes": os.path.getsize(ibd),
            "data_length": data_len, "index_length": index_len, "datadir_du_bytes": du(inst.data)}


# --- the three ways to take a backup -------------------------------------------

def shell_backup(inst, work, tail, label):
    """mariabackup's stream into `tail` (a shell fragment); returns figures."""
    d = tempfile.mkdtemp(prefix=f"{label}-", dir=work)
    for sub in ("lsn", "tmp"):
        os.makedirs(os.path.join(d, sub), mode=0o700)
    cnf = inst.mariabackup_cnf(d)
    # The same arguments as Coffer's mariabackup strategy.
    cmd = (f"mariabackup --defaults-file={cnf} --backup --stream=xbstream --datadir={inst.data}"
           f" --target-dir={d}/target --extra-lsndir={d}/lsn --tmpdir={d}/tmp 2>{d}/mariabackup.log | {tail}")
    t0 = time.monotonic()
    p = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd])
    with Sampler(p.pid) as s:
        rc = p.wait()
    elapsed = time.monotonic() - t0
    if rc != 0:
        raise RuntimeError(f"{label} pipeline failed ({rc}): {_read(d + '/mariabackup.log')[-2000:]}")
    return d, {"seconds": elapsed, "peak_rss": s.peak, "cpu_s": s.cpu_by_comm(), "system_busy": s.system_busy,
               "system_cpu_s": s.system_cpu}


def raw_backup(inst, work):
    d, r = shell_backup(inst, work, "cat > /dev/null", "raw")
    shutil.rmtree(d, ignore_errors=True)
    return r


def raw_file_backup(inst, work):
    """The raw stream written to a file, as Coffer's filesystem storage does."""
    d = tempfile.mkdtemp(prefix="rawfile-", dir=work)
    out = os.path.join(d, "backup.xbstream")
    bd, r = shell_backup(inst, work, f"cat > {out}", "rawfile")
    r["stored_bytes"] = os.path.getsize(out)
    shutil.rmtree(bd, ignore_errors=True)
    shutil.rmtree(d, ignore_errors=True)
    return r


def page_cache_write_mb_s(work, mb=512):
    """How fast this machine takes new data into the page cache (no fsync, as
    neither Coffer's storage nor the shell pipelines sync): a VM whose free
    memory goes back to the host pays for every fresh page."""
    path = os.path.join(work, "dd-test")
    t0 = time.monotonic()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mb}"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    os.remove(path)
    return mb * 1048576 / MB / elapsed


def operator_backup(inst, work):
    d = tempfile.mkdtemp(prefix="key-", dir=work)
    key = os.path.join(d, "key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(32).hex().encode())
    os.close(fd)
    out = os.path.join(d, "backup.xbstream.gz.enc")
    bd, r = shell_backup(inst, work, f"gzip | openssl enc -aes-256-cbc -pbkdf2 -pass file:{key} > {out}", "operator")
    r["stored_bytes"] = os.path.getsize(out)
    shutil.rmtree(bd, ignore_errors=True)
    shutil.rmtree(d, ignore_errors=True)
    return r


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def agent_log_times(inst, backup_id):
    """Wall-clock times the agent logged the backup's start and its end."""
    out = {}
    text = _read(os.path.join(inst.dir, "agent.log")) or ""
    for line in text.splitlines():
        line = ANSI.sub("", line)
        if backup_id not in line:
            continue
        for key, marker in (("agent_start", "backup starting"), ("agent_stored", "backup stored")):
            if marker in line:
                ts = line.split()[0]
                try:
                    out[key] = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
                except ValueError:
                    pass
    return out


def coffer_backup(ep, inst, iid, name, top=False):
    agent = inst.agent_pid()
    LABELS[agent] = "coffer guest-agent"
    snapshot = None
    with Sampler(agent, skip=("mariadbd",)) as s:
        wall0 = time.time()
        t0 = time.monotonic()
        code, v = http("POST", f"{ep}/backups", {"backup": {"name": name, "instance": iid}})
        assert code == 202, v
        bid = v["backup"]["id"]
        first_progress = None
        while True:
            b = http("GET", f"{ep}/backups/{bid}")[1]["backup"]
            if b["status"] in ("COMPLETED", "FAILED"):
                break
            if first_progress is None and (b.get("progress") or {}).get("bytes"):
                first_progress = time.monotonic() - t0
            if top and snapshot is None and time.monotonic() - t0 > 1.5:
                snapshot = top_snapshot()
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        wall1 = time.time()
    assert b["status"] == "COMPLETED", b
    wait_until(lambda: _instance(ep, iid)["status"] == "ACTIVE", timeout=60, every=0.05)
    times = agent_log_times(inst, bid)
    timeline = {}
    if "agent_start" in times:
        timeline["post_to_agent_start_s"] = times["agent_start"] - wall0
    if "agent_start" in times and "agent_stored" in times:
        timeline["agent_stream_s"] = times["agent_stored"] - times["agent_start"]
    if "agent_stored" in times:
        timeline["agent_stored_to_completed_seen_s"] = wall1 - times["agent_stored"]
    agent_comm = s.root0[0] if s.root0 else "coffer"
    return {"id": bid, "seconds": elapsed, "size_bytes": b["size_bytes"], "stored_bytes": b["stored_bytes"],
            "first_progress_s": first_progress, "timeline": timeline,
            "peak_rss_agent": s.peak.get(agent_comm, 0),
            "peak_rss_mariabackup": s.peak.get("mariabackup", 0), "peak_rss": s.peak,
            "cpu_agent_s": s.root_cpu, "cpu_reaped_children_s": s.root_reaped_cpu,
            "cpu_s": s.cpu_by_comm(), "system_busy": s.system_busy, "system_cpu_s": s.system_cpu, "top": snapshot}


def restore(ep, backup_id, flavor, volume_gb):
    body = {"instance": {"name": f"restored-{backup_id[:8]}", "flavorRef": str(flavor), "volume": {"size": volume_gb},
                         "datastore": {"type": "mariadb"}, "restorePoint": {"backupRef": backup_id}}}
    t0 = time.monotonic()
    code, v = http("POST", f"{ep}/instances", body)
    assert code == 200, v
    rid = v["instance"]["id"]
    status = wait_until(lambda: (s := _instance(ep, rid)["status"]) in ("ACTIVE", "ERROR") and s,
                        timeout=3600, every=0.05)
    elapsed = time.monotonic() - t0
    assert status == "ACTIVE", f"restored instance ended {status}: {_instance(ep, rid)}"
    return rid, elapsed


# --- coffer itself -----------------------------------------------------------

def start_coffer(binary, state, port, codec):
    env = dict(os.environ, COFFER__API__LISTEN=f"127.0.0.1:{port}", COFFER__COMPUTE__ADDRESS_RANGE="127.77.0.0/16",
               COFFER__BACKUP__CODEC=codec, RUST_LOG="warn,coffer_agent=info", NO_COLOR="1")
    log = open(os.path.join(state, "coffer.log"), "a")
    up = subprocess.Popen([binary, "up", "--state-dir", state], env=env, stdout=log, stderr=log)
    LABELS[up.pid] = "coffer up"
    wait_until(lambda: up.poll() is not None or _ok(f"http://127.0.0.1:{port}/"), timeout=60, every=0.05)
    assert up.poll() is None, f"coffer exited: {_read(os.path.join(state, 'coffer.log'))[-3000:]}"
    return up


def stop_coffer(up):
    up.send_signal(signal.SIGTERM)
    try:
        up.wait(timeout=30)
    except subprocess.TimeoutExpired:
        up.kill()
        up.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("coffer")
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--volume", type=int, default=0, help="volume GB (default: enough for --gb)")
    args = ap.parse_args()
    volume_gb = args.volume or max(5, int(args.gb * 3) + 2)

    state = tempfile.mkdtemp(prefix="coffer-bench-")
    work = tempfile.mkdtemp(prefix="backup-bench-", dir="/var/tmp")
    port = free_port()
    ep = f"http://127.0.0.1:{port}/v1.0/{PROJECT}"
    up = None
    raw, raw_file, operator, coffer, coffer_none, restores = [], [], [], [], [], []
    try:
        up = start_coffer(args.coffer, state, port, "zstd:1")
        flavors = http("GET", f"{ep}/flavors")[1]["flavors"]
        flavor = max(flavors, key=lambda f: f["ram"])
        print(f"flavor {flavor['name']} ({flavor['ram']} MB RAM), volume {volume_gb} GB", flush=True)
        body = {"instance": {"name": "bench", "flavorRef": str(flavor["id"]), "volume": {"size": volume_gb},
                             "datastore": {"type": "mariadb"}, "databases": [{"name": "bench"}],
                             "users": [{"name": "bench", "password": "Bench-Pw-1", "databases": [{"name": "bench"}]}]}}
        code, v = http("POST", f"{ep}/instances", body)
        assert code == 200, v
        iid = v["instance"]["id"]
        status = wait_until(lambda: (s := _instance(ep, iid)["status"]) in ("ACTIVE", "ERROR") and s, timeout=300)
        assert status == "ACTIVE", f"instance ended {status}"
        inst = Instance(state, iid)

        print(f"loading ~{args.gb} GB ...", flush=True)
        data = load(inst, args.gb)
        print(f"loaded {data['rows']} rows in {data['load_s']:.1f} s ({data['statements']} statements): "
              f"data_length+index_length {(data['data_length'] + data['index_length']) / MB:.0f} MB, "
              f".ibd {data['ibd_bytes'] / MB:.0f} MB, du datadir {data['datadir_du_bytes'] / MB:.0f} MB", flush=True)

        page_cache = page_cache_write_mb_s(work)
        print(f"page-cache write of new data (dd 512 MiB, no sync): {page_cache:.0f} MB/s", flush=True)
        # Warm-up, not counted: every method then reads the data files from the page cache alike.
        warm = raw_backup(inst, work)
        print(f"warm-up raw stream: {warm['seconds']:.2f} s", flush=True)

        for i in range(args.runs):
            raw.append(raw_backup(inst, work))
            print(f"run {i + 1}: raw {raw[-1]['seconds']:.2f} s", flush=True)
            raw_file.append(raw_file_backup(inst, work))
            print(f"run {i + 1}: raw to a file {raw_file[-1]['seconds']:.2f} s", flush=True)
            operator.append(operator_backup(inst, work))
            print(f"run {i + 1}: gzip+openssl {operator[-1]['seconds']:.2f} s", flush=True)
            coffer.append(coffer_backup(ep, inst, iid, f"zstd1-{i}", top=(i == 0)))
            print(f"run {i + 1}: coffer zstd:1 {coffer[-1]['seconds']:.2f} s", flush=True)
            rid, secs = restore(ep, coffer[-1]["id"], flavor["id"], volume_gb)
            restores.append({"seconds": secs, "backup": coffer[-1]["id"]})
            print(f"run {i + 1}: restore {secs:.2f} s", flush=True)
            http("DELETE", f"{ep}/instances/{rid}")
            wait_until(lambda: http("GET", f"{ep}/instances/{rid}")[0] == 404, timeout=120, every=0.1)

        # Compression off: the same instance under a coffer started with codec none.
        stop_coffer(up)
        up = None
        assert inst.agent_pid()
        restarted = time.time()
        up = start_coffer(args.coffer, state, port, "none")
        # Until the agent has reconnected (a heartbeat newer than the restart), so
        # its reconnection is not counted in the first backup.
        wait_until(lambda: _instance(ep, iid)["status"] == "ACTIVE" and _heartbeat(ep, iid) > restarted + 1,
                   timeout=60, every=0.1)
        for i in range(args.runs):
            coffer_none.append(coffer_backup(ep, inst, iid, f"none-{i}"))
            print(f"run {i + 1}: coffer none {coffer_none[-1]['seconds']:.2f} s", flush=True)
    finally:
        if up is not None:
            stop_coffer(up)
        subprocess.run(["pkill", "-9", "-f", state])
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    med = lambda rs, k="seconds": statistics.median(r[k] for r in rs)
    size = coffer[0]["size_bytes"]                     # datastore bytes: the same figure for every row
    t_raw, t_op, t_c, t_n, t_r = med(raw), med(operator), med(coffer), med(coffer_none), med(restores)
    t_rf = med(raw_file)
    rows = [("raw: mariabackup | cat > /dev/null", t_raw, None),
            ("raw to a file: mariabackup | cat > file", t_rf, med(raw_file, "stored_bytes")),
            ("operator: mariabackup | gzip | openssl", t_op, med(operator, "stored_bytes")),
            ("coffer zstd:1", t_c, med(coffer, "stored_bytes")),
            ("coffer none", t_n, med(coffer_none, "stored_bytes")),
            ("coffer restore (POST -> ACTIVE)", t_r, None)]
    print()
    print(f"datastore bytes (size_bytes): {size / MB:.0f} MB; runs: {args.runs} (median)")
    print(f"{'method':<44}{'seconds':>9}{'MB/s':>9}{'stored MB':>11}{'x operator':>12}{'x raw':>8}")
    for name, t, stored in rows:
        st = f"{stored / MB:.0f}" if stored else "-"
        print(f"{name:<44}{t:>9.2f}{size / MB / t:>9.1f}{st:>11}{t_op / t:>12.2f}{t_raw / t:>8.2f}")
    c = coffer[0]
    rss_agent = max(r["peak_rss_agent"] for r in coffer + coffer_none)
    rss_mb = max(r["peak_rss_mariabackup"] for r in coffer + coffer_none)
    print()
    print(f"Coffer / (gzip+openssl): {t_op / t_c:.1f}x (goal >= 3x) -> {'met' if t_op / t_c >= 3 else 'NOT met'}")
    print(f"Coffer / raw: {t_raw / t_c:.2f} (goal >= 0.85) -> {'met' if t_raw / t_c >= 0.85 else 'NOT met'}")
    print(f"Coffer (no compression) / raw: {t_raw / t_n:.2f} (goal >= 0.85) -> {'met' if t_raw / t_n >= 0.85 else 'NOT met'}")
    print(f"Coffer / raw to a file: {t_rf / t_c:.2f}; Coffer (no compression) / raw to a file: {t_rf / t_n:.2f}"
          " (not goals: the same storage write as Coffer's)")
    print(f"restore MB/s: {size / MB / t_r:.1f}")
    print(f"page-cache write of new data on this machine: {page_cache:.0f} MB/s")
    print(f"peak RSS agent MB: {rss_agent / MB:.1f} (mariabackup under the agent: {rss_mb / MB:.1f} MB;"
          f" in the shell pipelines: {max(r['peak_rss'].get('mariabackup', 0) for r in raw + operator) / MB:.1f} MB)")
    print()
    print("where the time goes (first run; CPU seconds by process, share of both cores busy):")
    for name, r in (("raw", raw[0]), ("raw to a file", raw_file[0]), ("operator", operator[0]), ("coffer zstd:1", coffer[0]), ("coffer none", coffer_none[0])):
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["cpu_s"].items(), key=lambda kv: -kv[1]) if v >= 0.05)
        extra = ""
        if "cpu_agent_s" in r:
            extra = f"; agent total {r['cpu_agent_s']:.1f} s, reaped children {r['cpu_reaped_children_s']:.1f} s"
        print(f"  {name:<14}{r['seconds']:>7.2f} s  busy {r['system_busy'] * 100:4.0f}%  {cpu}{extra}")
        other = ", ".join(f"{k} {v:.1f}" for k, v in r["system_cpu_s"].items())
        print(f"  {'':<14}{'':>9}  long-lived processes: {other}")
    for name, r in (("coffer zstd:1", coffer[0]), ("coffer none", coffer_none[0])):
        tl = r["timeline"]
        parts = [f"first progress {r['first_progress_s']:.2f} s" if r["first_progress_s"] else None]
        parts += [f"{k} {v:.2f} s" for k, v in tl.items()]
        print(f"  {name} timeline: " + ", ".join(p for p in parts if p))
    if c.get("top"):
        print("\ntop during the first coffer backup:")
        print(c["top"])

    result = {"benchmark": "backup-mariadb", "runs": args.runs, "gb": args.gb,
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "flavor": flavor, "volume_gb": volume_gb, "load": data, "size_bytes": size,
              "page_cache_write_mb_s": page_cache,
              "raw": raw, "raw_file": raw_file, "operator": operator, "coffer_zstd1": coffer, "coffer_none": coffer_none,
              "restore": restores,
              "median_s": {"raw": t_raw, "raw_file": t_rf, "operator": t_op, "coffer_zstd1": t_c, "coffer_none": t_n, "restore": t_r},
              "mb_per_s": {"raw": size / MB / t_raw, "raw_file": size / MB / t_rf, "operator": size / MB / t_op, "coffer_zstd1": size / MB / t_c,
                           "coffer_none": size / MB / t_n, "restore": size / MB / t_r},
              "coffer_vs_operator": t_op / t_c, "coffer_vs_raw": t_raw / t_c, "coffer_none_vs_raw": t_raw / t_n,
              "coffer_vs_raw_file": t_rf / t_c, "coffer_none_vs_raw_file": t_rf / t_n,
              "peak_rss_agent_bytes": rss_agent, "peak_rss_mariabackup_bytes": rss_mb,
              "goals": {"coffer_vs_operator>=3": t_op / t_c >= 3, "coffer_vs_raw>=0.85": t_raw / t_c >= 0.85}}
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"backup-{result['time'].replace(':', '')}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
