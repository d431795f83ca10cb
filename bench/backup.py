#!/usr/bin/env python3
"""Backup benchmark: loads ~1 GB into an instance of each datastore
(MariaDB: sysbench-like rows; PostgreSQL: pgbench -i) and measures, on
that instance in the same run, backup throughput (MB/s of datastore bytes,
the median `size_bytes` of Coffer's backups) to each storage. STREAM is the datastore's
own tool, with Coffer's arguments: `mariabackup --backup --stream=xbstream`
or `pg_basebackup -Ft -X fetch -D -`.

  filesystem storage (the state dir's backups/)
    raw        STREAM | cat > /dev/null
    raw file   STREAM | cat > file   (not a goal: the same write into the
               filesystem that Coffer's fs storage does)
    operator   STREAM | gzip | openssl enc -aes-256-cbc > file
    coffer     POST /backups -> COMPLETED (codec zstd:1, and again with codec none)
    restore    POST /instances with restorePoint -> ACTIVE

  Swift storage (scripts/swift.sh's single node, tempauth test:tester)
    raw        STREAM | cat > /dev/null   (for reference)
    raw swift  STREAM | swift upload CONTAINER - --object-name O
    operator   STREAM | gzip | openssl enc -aes-256-cbc | swift upload CONTAINER - ...
    coffer     POST /backups -> COMPLETED (codec zstd:1), Coffer's storage set to Swift
    restore    POST /instances with restorePoint -> ACTIVE, from Swift

plus compressed sizes and peak RSS of the guest agent and of the backup
tool. Coffer is restarted on the same state dir between storages and
codecs (the instance stays up). Prints a table per datastore and storage
and writes the figures as JSON (bench/results/backup-<time>.json):
datastores -> NAME -> storage -> fs|swift -> size_bytes, ratios, goals,
figures -> METHOD -> seconds, mb_per_s, stored_bytes (medians), runs.

Usage: bench/backup.py COFFER_BINARY [--gb 1.0] [--runs 1]
           [--datastores mariadb,postgresql] [--storage fs,swift]
"""
import argparse, os, re, shutil, signal, statistics, subprocess, sys, tempfile, threading, time, urllib.request
from datetime import datetime
from common import remove_state, PROJECT, free_port, http, http_ok, wait_until, write_result

MB = 1e6

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


# --- the datastores ------------------------------------------------------------

def agent_pid(inst):
    with open(os.path.join(inst.dir, "agent.pid")) as f:
        pid = int(f.read().strip())
    cmdline = _read(f"/proc/{pid}/cmdline") or ""
    assert "guest-agent" in cmdline and inst.dir in cmdline, f"agent pid {pid} is not this instance's"
    return pid


class Instance:
    """A MariaDB instance: its socket, data dir and admin login."""

    def __init__(self, state, iid):
        self.dir = os.path.join(state, "instances", iid)
        run = os.path.join(self.dir, "run")
        socks = [f for f in os.listdir(run) if f.endswith(".sock")]
        assert socks, f"no socket in {run}: {os.listdir(run)}"
        self.socket = os.path.join(run, "mysqld.sock" if "mysqld.sock" in socks else socks[0])
        self.data = os.path.join(self.dir, "data")
        with open(os.path.join(self.dir, "secret", "os_admin.password")) as f:
            self._pw = f.read().strip()

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


class MariaDB:
    name, label, tool, server = "mariadb", "MariaDB", "mariabackup", "mariadbd"
    stream_name = "mariabackup --backup --stream=xbstream"

    def create_extra(self):
        return {"databases": [{"name": "bench"}],
                "users": [{"name": "bench", "password": "Bench-Pw-1", "databases": [{"name": "bench"}]}]}

    def instance(self, state, iid):
        return Instance(state, iid)

    def load(self, inst, gb):
        return load(inst, gb)

    def count_rows(self, inst):
        return int(inst.sql("SELECT COUNT(*) FROM sbtest1"))

    def describe_load(self, data):
        return (f"{data['rows']} rows in {data['load_s']:.1f} s ({data['statements']} statements): "
                f"data_length+index_length {(data['data_length'] + data['index_length']) / MB:.0f} MB, "
                f".ibd {data['ibd_bytes'] / MB:.0f} MB, du datadir {data['datadir_du_bytes'] / MB:.0f} MB")

    def stream_cmd(self, inst, d):
        """The shell command writing the backup stream to stdout, its stderr
        into d/tool.log: the same arguments as Coffer's mariabackup strategy."""
        for sub in ("lsn", "tmp"):
            os.makedirs(os.path.join(d, sub), mode=0o700)
        cnf = inst.mariabackup_cnf(d)
        return (f"mariabackup --defaults-file={cnf} --backup --stream=xbstream --datadir={inst.data}"
                f" --target-dir={d}/target --extra-lsndir={d}/lsn --tmpdir={d}/tmp 2>{d}/tool.log")


def _datastores():
    from backup_pg import PostgreSQL
    return {"mariadb": MariaDB(), "postgresql": PostgreSQL()}


# --- Swift -------------------------------------------------------------------

SWIFT_AUTH = "http://127.0.0.1:8080/auth/v1.0"
SWIFT_USER, SWIFT_KEY = "test:tester", "testing"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Swift:
    """scripts/swift.sh's single-node Swift: started here unless it already
    answers (and then stopped here again), the containers this run made
    deleted at the end."""

    def __init__(self):
        self.started = False
        self.containers = []
        self.cli = [shutil.which("swift") or "/usr/bin/swift", "-A", SWIFT_AUTH, "-U", SWIFT_USER, "-K", SWIFT_KEY]

    def up(self):
        script = os.path.join(REPO, "scripts", "swift.sh")
        if subprocess.run(["bash", script, "status"], capture_output=True).returncode == 0:
            return
        r = subprocess.run(["bash", script, "start"], capture_output=True, text=True)
        self.started = True
        if r.returncode != 0:
            raise RuntimeError(f"scripts/swift.sh start failed:\n{r.stdout}\n{r.stderr}")

    def down(self):
        for c in self.containers:
            for name in (c, f"{c}_segments"):
                subprocess.run(self.cli + ["delete", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.started:
            subprocess.run(["bash", os.path.join(REPO, "scripts", "swift.sh"), "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def container(self, what):
        name = f"coffer-bench-{what}-{os.getpid()}-{int(time.time())}"
        self.containers.append(name)
        return name

    def storage_toml(self, container):
        """Coffer's [backup] storage for this container (COFFER__BACKUP__STORAGE)."""
        return (f'{{ kind = "swift", auth_url = "{SWIFT_AUTH}", user = "{SWIFT_USER}", key = "{SWIFT_KEY}",'
                f' container = "{container}" }}')

    def upload_tail(self, container, obj):
        """The shell fragment an operator pipes a stream into: `swift upload
        C - --object-name O` (the CLI cuts stdin into 10 MiB segments of a
        static large object, their container being C_segments)."""
        return " ".join(self.cli) + f" upload {container} - --object-name {obj} > /dev/null"

    def object_bytes(self, container, obj):
        req = urllib.request.Request(SWIFT_AUTH, headers={"X-Storage-User": SWIFT_USER, "X-Storage-Pass": SWIFT_KEY})
        with urllib.request.urlopen(req) as r:
            token, url = r.headers["X-Auth-Token"], r.headers["X-Storage-Url"]
        req = urllib.request.Request(f"{url}/{container}/{obj}", method="HEAD", headers={"X-Auth-Token": token})
        with urllib.request.urlopen(req) as r:
            return int(r.headers["Content-Length"])

    def delete(self, container, obj):
        """An object and its segments (outside the timings)."""
        subprocess.run(self.cli + ["delete", container, obj], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --- the ways to take a backup ---------------------------------------------------

def shell_backup(ds, inst, work, tail, label):
    """The datastore's backup stream into `tail` (a shell fragment); returns figures."""
    d = tempfile.mkdtemp(prefix=f"{label}-", dir=work)
    cmd = f"{ds.stream_cmd(inst, d)} | {tail}"
    t0 = time.monotonic()
    p = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], start_new_session=True)
    try:
        with Sampler(p.pid) as s:
            rc = p.wait()
    except BaseException:
        # Interrupted: the whole pipeline goes, not just its shell.
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    elapsed = time.monotonic() - t0
    if rc != 0:
        raise RuntimeError(f"{label} pipeline failed ({rc}): {(_read(d + '/tool.log') or '')[-2000:]}")
    shutil.rmtree(d, ignore_errors=True)
    return {"seconds": elapsed, "peak_rss": s.peak, "cpu_s": s.cpu_by_comm(), "system_busy": s.system_busy,
            "system_cpu_s": s.system_cpu}


def raw_backup(ds, inst, work):
    return shell_backup(ds, inst, work, "cat > /dev/null", "raw")


def raw_file_backup(ds, inst, work):
    """The raw stream written to a file, as Coffer's filesystem storage does."""
    d = tempfile.mkdtemp(prefix="rawfile-out-", dir=work)
    try:
        out = os.path.join(d, "backup.stream")
        r = shell_backup(ds, inst, work, f"cat > {out}", "rawfile")
        r["stored_bytes"] = os.path.getsize(out)
        return r
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _key_file(d):
    key = os.path.join(d, "key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(32).hex().encode())
    os.close(fd)
    return key


def operator_backup(ds, inst, work):
    d = tempfile.mkdtemp(prefix="operator-out-", dir=work)
    try:
        key = _key_file(d)
        out = os.path.join(d, "backup.gz.enc")
        r = shell_backup(ds, inst, work, f"gzip | openssl enc -aes-256-cbc -pbkdf2 -pass file:{key} > {out}", "operator")
        r["stored_bytes"] = os.path.getsize(out)
        return r
    finally:
        shutil.rmtree(d, ignore_errors=True)


def swift_raw_backup(ds, inst, work, swift, container, obj):
    """The raw stream uploaded with the swift CLI from stdin."""
    try:
        r = shell_backup(ds, inst, work, swift.upload_tail(container, obj), "swiftraw")
        r["stored_bytes"] = swift.object_bytes(container, obj)
        return r
    finally:
        swift.delete(container, obj)


def swift_operator_backup(ds, inst, work, swift, container, obj):
    """The operator's gzip + openssl pipeline, uploaded with the swift CLI."""
    d = tempfile.mkdtemp(prefix="swiftop-key-", dir=work)
    try:
        key = _key_file(d)
        r = shell_backup(ds, inst, work, f"gzip | openssl enc -aes-256-cbc -pbkdf2 -pass file:{key} | "
                         + swift.upload_tail(container, obj), "swiftop")
        r["stored_bytes"] = swift.object_bytes(container, obj)
        return r
    finally:
        shutil.rmtree(d, ignore_errors=True)
        swift.delete(container, obj)


def page_cache_write_mb_s(work, mb=512):
    """How fast this machine takes new data into the page cache, as the shell
    pipelines write their files (no fsync): a VM whose free memory goes back
    to the host pays for every fresh page. Coffer's filesystem storage writes
    with direct I/O and syncs before it commits, so it does not pay this."""
    path = os.path.join(work, "dd-test")
    t0 = time.monotonic()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mb}"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    os.remove(path)
    return mb * 1048576 / MB / elapsed


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


def coffer_backup(ep, ds, inst, iid, name, top=False):
    agent = agent_pid(inst)
    LABELS[agent] = "coffer guest-agent"
    snapshot = None
    with Sampler(agent, skip=(ds.server,)) as s:
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
            "location": b.get("locationRef"), "first_progress_s": first_progress, "timeline": timeline,
            "peak_rss_agent": s.peak.get(agent_comm, 0),
            "peak_rss_tool": s.peak.get(ds.tool, 0), "peak_rss": s.peak,
            "cpu_agent_s": s.root_cpu, "cpu_reaped_children_s": s.root_reaped_cpu,
            "cpu_s": s.cpu_by_comm(), "system_busy": s.system_busy, "system_cpu_s": s.system_cpu, "top": snapshot}


def wait_instance(ep, iid, timeout):
    status = wait_until(lambda: (s := _instance(ep, iid)["status"]) in ("ACTIVE", "ERROR") and s,
                        timeout=timeout, every=0.05)
    assert status == "ACTIVE", f"instance {iid} ended {status}: {_instance(ep, iid)}"


def delete_instance(ep, iid):
    http("DELETE", f"{ep}/instances/{iid}")
    wait_until(lambda: http("GET", f"{ep}/instances/{iid}")[0] == 404, timeout=120, every=0.1)


def restore(ep, ds, backup_id, flavor, volume_gb, state, rows):
    """POST /instances with restorePoint -> ACTIVE (timed), then checks the
    restored instance holds the loaded rows (not timed) and deletes it."""
    body = {"instance": {"name": f"restored-{backup_id[:8]}", "flavorRef": str(flavor), "volume": {"size": volume_gb},
                         "datastore": {"type": ds.name}, "restorePoint": {"backupRef": backup_id}}}
    t0 = time.monotonic()
    code, v = http("POST", f"{ep}/instances", body)
    assert code == 200, v
    rid = v["instance"]["id"]
    try:
        wait_instance(ep, rid, timeout=3600)
        elapsed = time.monotonic() - t0
        got = ds.count_rows(ds.instance(state, rid))
        assert got == rows, f"the instance restored from {backup_id} holds {got} rows, not {rows}"
        return {"seconds": elapsed, "backup": backup_id, "rows_checked": got}
    finally:
        delete_instance(ep, rid)


# --- coffer itself -----------------------------------------------------------

class Coffer:
    """`coffer up` on one state dir, restarted when the backup storage or
    codec changes (the instances' agents stay up and reconnect)."""

    def __init__(self, binary, state, port):
        self.binary, self.state, self.port = binary, state, port
        self.up = None
        self.config = None
        self.ep = f"http://127.0.0.1:{port}/v1.0/{PROJECT}"

    def ensure(self, codec, storage=None, instances=()):
        """Run with this codec and storage (a TOML inline table, None: the
        state dir's filesystem); after a restart, wait until the agents of
        `instances` have reported again."""
        if self.up is not None and self.config == (codec, storage):
            return
        self.stop()
        restarted = time.time()
        env = dict(os.environ, COFFER__API__LISTEN=f"127.0.0.1:{self.port}",
                   COFFER__COMPUTE__ADDRESS_RANGE="127.77.0.0/16", COFFER__QUOTAS__INSTANCES="-1",
                   COFFER__QUOTAS__VOLUMES="-1", COFFER__QUOTAS__BACKUPS="-1",
                   COFFER__BACKUP__CODEC=codec, RUST_LOG="warn,coffer_agent=info", NO_COLOR="1")
        if storage:
            env["COFFER__BACKUP__STORAGE"] = storage
        else:
            env.pop("COFFER__BACKUP__STORAGE", None)
        log = open(os.path.join(self.state, "coffer.log"), "a")
        self.up = subprocess.Popen([self.binary, "up", "--state-dir", self.state], env=env, stdout=log, stderr=log)
        log.close()
        self.config = (codec, storage)
        LABELS[self.up.pid] = "coffer up"
        wait_until(lambda: self.up.poll() is not None or http_ok(f"http://127.0.0.1:{self.port}/"), timeout=60, every=0.05)
        assert self.up.poll() is None, f"coffer exited: {(_read(os.path.join(self.state, 'coffer.log')) or '')[-3000:]}"
        # Until each agent has reconnected (a heartbeat newer than the restart),
        # so its reconnection is not counted in the first backup.
        for iid in instances:
            wait_until(lambda: _instance(self.ep, iid)["status"] == "ACTIVE" and _heartbeat(self.ep, iid) > restarted + 1,
                       timeout=60, every=0.1)

    def stop(self):
        if self.up is None:
            return
        self.up.send_signal(signal.SIGTERM)
        try:
            self.up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.up.kill()
            self.up.wait()
        self.up = None


# --- one datastore -----------------------------------------------------------

def bench_datastore(args, ds, coffer, swift, work, flavor, volume_gb):
    """Load one instance, then every method on each storage asked for.
    Returns {"load", "size_bytes", "warmup_s", "storage": {"fs": {method: [runs]}, "swift": ...}}."""
    first = "fs" if "fs" in args.storage else "swift"
    swift_store = None
    if "swift" in args.storage:
        container = swift.container(f"{ds.name}-coffer")
        shell_container = swift.container(f"{ds.name}-shell")
        swift_store = swift.storage_toml(container)
    coffer.ensure("zstd:1", swift_store if first == "swift" else None)
    ep = coffer.ep
    body = {"instance": {"name": f"bench-{ds.name}", "flavorRef": str(flavor["id"]), "volume": {"size": volume_gb},
                         "datastore": {"type": ds.name}, **ds.create_extra()}}
    code, v = http("POST", f"{ep}/instances", body)
    assert code == 200, v
    iid = v["instance"]["id"]
    out = {"instance": iid, "storage": {}}
    try:
        wait_instance(ep, iid, timeout=300)
        inst = ds.instance(coffer.state, iid)
        print(f"[{ds.name}] loading ~{args.gb} GB ...", flush=True)
        out["load"] = ds.load(inst, args.gb)
        rows = out["load"]["rows"]
        print(f"[{ds.name}] loaded {ds.describe_load(out['load'])}", flush=True)
        # Warm-up, not counted: every method then starts alike (mariabackup reads InnoDB
        # files around the page cache, so each run reads them from the disk anyway).
        warm = raw_backup(ds, inst, work)
        out["warmup_s"] = warm["seconds"]
        print(f"[{ds.name}] warm-up raw stream: {warm['seconds']:.2f} s", flush=True)

        def step(storage, name, i, fn):
            r = fn()
            out["storage"][storage].setdefault(name, []).append(r)
            print(f"[{ds.name}] {storage} run {i + 1}: {name} {r['seconds']:.2f} s", flush=True)
            return r

        if "fs" in args.storage:
            out["storage"]["fs"] = {}
            coffer.ensure("zstd:1", None, [iid])
            for i in range(args.runs):
                step("fs", "raw", i, lambda: raw_backup(ds, inst, work))
                step("fs", "raw_file", i, lambda: raw_file_backup(ds, inst, work))
                step("fs", "operator", i, lambda: operator_backup(ds, inst, work))
                c = step("fs", "coffer_zstd1", i, lambda: coffer_backup(ep, ds, inst, iid, f"zstd1-{i}", top=(i == 0)))
                step("fs", "restore", i, lambda: restore(ep, ds, c["id"], flavor["id"], volume_gb, coffer.state, rows))
            # Compression off: the same instance under a coffer started with codec none.
            coffer.ensure("none", None, [iid])
            for i in range(args.runs):
                step("fs", "coffer_none", i, lambda: coffer_backup(ep, ds, inst, iid, f"none-{i}"))

        if "swift" in args.storage:
            out["storage"]["swift"] = {}
            coffer.ensure("zstd:1", swift_store, [iid])
            for i in range(args.runs):
                step("swift", "raw", i, lambda: raw_backup(ds, inst, work))
                step("swift", "raw_swift", i, lambda: swift_raw_backup(ds, inst, work, swift, shell_container, f"raw-{i}"))
                step("swift", "operator", i,
                     lambda: swift_operator_backup(ds, inst, work, swift, shell_container, f"operator-{i}"))
                c = step("swift", "coffer_zstd1", i, lambda: coffer_backup(ep, ds, inst, iid, f"swift-zstd1-{i}"))
                assert (c.get("location") or "").startswith("swift://"), c.get("location")
                step("swift", "restore", i, lambda: restore(ep, ds, c["id"], flavor["id"], volume_gb, coffer.state, rows))
    finally:
        if coffer.up is not None:
            try:
                delete_instance(ep, iid)
            except Exception as e:   # the state dir goes anyway
                print(f"[{ds.name}] deleting instance {iid}: {e}", flush=True)
    coffer_runs = [r for s in out["storage"].values() for k, rs in s.items() if k.startswith("coffer") for r in rs]
    out["size_bytes"] = coffer_runs[0]["size_bytes"]     # the first backup's datastore bytes
    return out


# --- the report --------------------------------------------------------------

METHODS = {
    "fs": [("raw", "raw: {s} | cat > /dev/null"),
           ("raw_file", "raw to a file: {s} | cat > file"),
           ("operator", "operator: {s} | gzip | openssl enc > file"),
           ("coffer_zstd1", "coffer zstd:1, fs storage"),
           ("coffer_none", "coffer none, fs storage"),
           ("restore", "coffer restore (POST -> ACTIVE)")],
    "swift": [("raw", "raw: {s} | cat > /dev/null"),
              ("raw_swift", "raw to Swift: {s} | swift upload -"),
              ("operator", "operator: {s} | gzip | openssl enc | swift upload -"),
              ("coffer_zstd1", "coffer zstd:1, Swift storage"),
              ("restore", "coffer restore from Swift (POST -> ACTIVE)")],
}
# What "x raw" compares with, per storage.
RAW = {"fs": "raw", "swift": "raw_swift"}


def summarise(ds, storage, runs_by_method):
    """Medians per method. MB/s are of the datastore bytes Coffer's backups
    in this storage reported (the median of their size_bytes): MariaDB's
    stream shrinks a little from run to run after the load, as InnoDB's
    checkpoint catches up and less redo log is copied."""
    med = lambda rs, k="seconds": statistics.median(r[k] for r in rs)
    size = statistics.median(r["size_bytes"] for k in ("coffer_zstd1", "coffer_none") for r in runs_by_method.get(k, []))
    figures = {}
    for key, method in METHODS[storage]:
        rs = runs_by_method.get(key)
        if not rs:
            continue
        t = med(rs)
        stored = med(rs, "stored_bytes") if all(r.get("stored_bytes") is not None for r in rs) else None
        figures[key] = {"method": method.format(s=ds.tool), "seconds": t, "mb_per_s": size / MB / t,
                        "stored_bytes": stored, "runs": rs}
    t_op, t_raw = figures["operator"]["seconds"], figures[RAW[storage]]["seconds"]
    ratios = {}
    for key in ("coffer_zstd1", "coffer_none"):
        if key in figures:
            t = figures[key]["seconds"]
            ratios[f"{key}_vs_operator"] = t_op / t
            ratios[f"{key}_vs_{RAW[storage]}"] = t_raw / t
            if storage == "fs":
                ratios[f"{key}_vs_raw_file"] = figures["raw_file"]["seconds"] / t
    c = ratios["coffer_zstd1_vs_operator"], ratios[f"coffer_zstd1_vs_{RAW[storage]}"]
    coffer_runs = [r for k in ("coffer_zstd1", "coffer_none") for r in runs_by_method.get(k, [])]
    return {"size_bytes": size, "figures": figures, "ratios": ratios,
            "goals": {"coffer_vs_operator>=3": c[0] >= 3, f"coffer_vs_{RAW[storage]}>=0.85": c[1] >= 0.85},
            "peak_rss_agent_bytes": max(r["peak_rss_agent"] for r in coffer_runs),
            "peak_rss_tool_under_agent_bytes": max(r["peak_rss_tool"] for r in coffer_runs),
            "peak_rss_tool_in_shell_bytes": max(r["peak_rss"].get(ds.tool, 0)
                                                for k in ("raw", "operator") for r in runs_by_method.get(k, []))}


def print_table(ds, storage, s, runs):
    f, size = s["figures"], s["size_bytes"]
    t_op, t_raw = f["operator"]["seconds"], f[RAW[storage]]["seconds"]
    print()
    print(f"== {ds.label}, {'filesystem' if storage == 'fs' else 'Swift'} storage: datastore bytes (size_bytes)"
          f" {size / MB:.0f} MB; runs: {runs} (median)")
    raw_col = "x raw" if storage == "fs" else "x raw->swift"
    print(f"stream: {ds.stream_name}")
    print(f"{'method':<60}{'seconds':>9}{'MB/s':>9}{'stored MB':>11}{'x operator':>12}{raw_col:>13}")
    for key, fig in f.items():
        st = f"{fig['stored_bytes'] / MB:.0f}" if fig["stored_bytes"] else "-"
        t = fig["seconds"]
        print(f"{fig['method']:<60}{t:>9.2f}{fig['mb_per_s']:>9.1f}{st:>11}{t_op / t:>12.2f}{t_raw / t:>13.2f}")
    r = s["ratios"]
    raw_name = "raw" if storage == "fs" else "raw to Swift"
    print(f"Coffer / operator: {r['coffer_zstd1_vs_operator']:.1f}x (goal >= 3x) -> "
          f"{'met' if r['coffer_zstd1_vs_operator'] >= 3 else 'NOT met'}")
    rr = r[f"coffer_zstd1_vs_{RAW[storage]}"]
    print(f"Coffer / {raw_name}: {rr:.2f} (goal >= 0.85) -> {'met' if rr >= 0.85 else 'NOT met'}")
    if "coffer_none_vs_raw" in r:
        print(f"Coffer (no compression) / raw: {r['coffer_none_vs_raw']:.2f};"
              f" Coffer / raw to a file: {r['coffer_zstd1_vs_raw_file']:.2f};"
              f" Coffer (no compression) / raw to a file: {r['coffer_none_vs_raw_file']:.2f}")
    print(f"peak RSS agent MB: {s['peak_rss_agent_bytes'] / MB:.1f} ({ds.tool} under the agent:"
          f" {s['peak_rss_tool_under_agent_bytes'] / MB:.1f} MB; in the shell pipelines:"
          f" {s['peak_rss_tool_in_shell_bytes'] / MB:.1f} MB)")
    print("where the time goes (first run; CPU seconds by process, share of all cores busy):")
    for key, fig in f.items():
        if key == "restore":
            continue
        r0 = fig["runs"][0]
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r0["cpu_s"].items(), key=lambda kv: -kv[1]) if v >= 0.05)
        extra = ""
        if r0.get("cpu_agent_s") is not None:
            extra = f"; agent total {r0['cpu_agent_s']:.1f} s, reaped children {r0['cpu_reaped_children_s']:.1f} s"
        print(f"  {key:<14}{r0['seconds']:>7.2f} s  busy {r0['system_busy'] * 100:4.0f}%  {cpu}{extra}")
        other = ", ".join(f"{k} {v:.1f}" for k, v in r0["system_cpu_s"].items())
        print(f"  {'':<14}{'':>9}  long-lived processes: {other}")
    for key in ("coffer_zstd1", "coffer_none"):
        if key in f:
            r0 = f[key]["runs"][0]
            parts = [f"first progress {r0['first_progress_s']:.2f} s" if r0["first_progress_s"] else None]
            parts += [f"{k} {v:.2f} s" for k, v in r0["timeline"].items()]
            print(f"  {key} timeline: " + ", ".join(p for p in parts if p))
    top = f["coffer_zstd1"]["runs"][0].get("top")
    if top:
        print("\ntop during the first coffer backup:")
        print(top)


# --- main --------------------------------------------------------------------

def _list(arg, known, ap, what):
    items = [x.strip() for x in arg.split(",") if x.strip()]
    bad = [x for x in items if x not in known]
    if bad or not items:
        ap.error(f"unknown {what} {bad}; known: {', '.join(known)}")
    return items


def _cleanup_on_signals():
    """SIGTERM and SIGINT (even when started in the background, where SIGINT
    is ignored) end the run through the `finally` blocks that clean up."""
    def stop(signum, frame):
        print(f"signal {signum}: cleaning up", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("coffer")
    ap.add_argument("--gb", type=float, default=1.0, help="data to load per datastore, GB")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--datastores", default="mariadb,postgresql", help="comma-separated: mariadb, postgresql")
    ap.add_argument("--storage", default="fs,swift", help="comma-separated: fs, swift")
    ap.add_argument("--volume", type=int, default=0, help="volume GB (default: enough for --gb)")
    args = ap.parse_args()
    _cleanup_on_signals()
    known = _datastores()
    datastores = [known[d] for d in _list(args.datastores, known, ap, "datastore(s)")]
    args.storage = _list(args.storage, ("fs", "swift"), ap, "storage")
    volume_gb = args.volume or max(5, int(args.gb * 3) + 2)

    state = tempfile.mkdtemp(prefix="coffer-bench-")
    work = tempfile.mkdtemp(prefix="backup-bench-", dir="/var/tmp")
    coffer = Coffer(args.coffer, state, free_port())
    swift = Swift()
    results = {}
    try:
        if "swift" in args.storage:
            swift.up()
        coffer.ensure("zstd:1")
        flavors = http("GET", f"{coffer.ep}/flavors")[1]["flavors"]
        flavor = max(flavors, key=lambda f: f["ram"])
        print(f"flavor {flavor['name']} ({flavor['ram']} MB RAM), volume {volume_gb} GB", flush=True)
        page_cache = page_cache_write_mb_s(work)
        print(f"page-cache write of new data (dd 512 MiB, no sync): {page_cache:.0f} MB/s", flush=True)
        for ds in datastores:
            results[ds.name] = bench_datastore(args, ds, coffer, swift, work, flavor, volume_gb)
    finally:
        coffer.stop()
        subprocess.run(["pkill", "-9", "-f", state])
        remove_state(state)
        shutil.rmtree(work, ignore_errors=True)
        swift.down()

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = {"benchmark": "backup", "time": now, "machine": {"cores": os.cpu_count()}, "gb": args.gb,
              "runs": args.runs, "flavor": flavor, "volume_gb": volume_gb, "page_cache_write_mb_s": page_cache,
              "datastores": {}}
    for ds in datastores:
        r = results[ds.name]
        entry = result["datastores"][ds.name] = {"load": r["load"], "first_backup_size_bytes": r["size_bytes"],
                                                 "warmup_s": r["warmup_s"], "storage": {}}
        for storage in args.storage:
            s = entry["storage"][storage] = summarise(ds, storage, r["storage"][storage])
            print_table(ds, storage, s, args.runs)
    print()
    print(f"page-cache write of new data on this machine: {page_cache:.0f} MB/s")
    print(f"results: {write_result(result, 'backup')}")


if __name__ == "__main__":
    sys.exit(main())
