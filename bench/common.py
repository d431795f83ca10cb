"""The harness every benchmark script shares: the API over HTTP, a free
port, polling until a condition holds, a Coffer started for a benchmark
(`Coffer`), a wrk run parsed into numbers (`wrk`), instances created and
waited for, and the results file (`write_result`: bench/results/<name>-<time>.json).

A benchmark imports from here, never from another benchmark."""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.error, urllib.request

DEFAULT_BINARY = os.path.join(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/coffer-target"), "release", "coffer")
PROJECT = "bench"
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


class BenchError(Exception):
    """The benchmark could not measure what it set out to (not: a goal missed)."""


def exit_on_sigterm():
    """SIGTERM unwinds like Ctrl-C, so `finally` blocks clean up."""
    def handler(signum, frame):
        raise SystemExit(f"killed by signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def run(main_fn):
    """main_fn()'s exit code; a BenchError, TimeoutError or AssertionError
    is printed as FAILED and gives 1."""
    try:
        return main_fn()
    except (BenchError, TimeoutError, AssertionError) as e:
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def write_result(result, name):
    """result as JSON in bench/results/<name>-<result['time'] without colons>.json; returns the path."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}-{result['time'].replace(':', '')}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    return path


# ---------------------------------------------------------------- HTTP

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


def http_ok(url):
    """GET url answers 200 (False while nothing listens)."""
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False


def get_bytes(url):
    """GET with the bench token; (status, body bytes)."""
    req = urllib.request.Request(url, headers={"X-Auth-Token": "bench"})
    with urllib.request.urlopen(req) as r:
        return r.status, r.read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout=120, every=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise TimeoutError("condition not met")


# ---------------------------------------------------------------- Coffer

class Coffer:
    """`coffer up` in a fresh state dir on a free port, quotas off; on exit
    every process whose command line names the state dir is killed and the
    dir removed, whatever happened."""

    def __init__(self, binary, name, address_range="127.90.0.0/16"):
        self.binary = binary
        self.name = name
        self.address_range = address_range

    def __enter__(self):
        if not os.access(self.binary, os.X_OK):
            raise BenchError(f"no coffer binary at {self.binary}")
        self.state = tempfile.mkdtemp(prefix=f"coffer-{self.name}-bench-")
        try:
            self.port = free_port()
            self.root = f"http://127.0.0.1:{self.port}"
            self.ep = f"{self.root}/v1.0/{PROJECT}"
            env = dict(os.environ, COFFER__API__LISTEN=f"127.0.0.1:{self.port}",
                       COFFER__COMPUTE__ADDRESS_RANGE=self.address_range,
                       COFFER__QUOTAS__INSTANCES="-1", COFFER__QUOTAS__VOLUMES="-1",
                       COFFER__QUOTAS__BACKUPS="-1", RUST_LOG="warn")
            self.log_path = os.path.join(self.state, "coffer.log")
            self._log = open(self.log_path, "w")
            self.proc = subprocess.Popen([self.binary, "up", "--state-dir", self.state], env=env,
                                         stdout=self._log, stderr=self._log)
            wait_until(lambda: self.check_alive() and http_ok(f"{self.root}/"), timeout=30, every=0.05)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def check_alive(self):
        if getattr(self, "proc", None) is not None and self.proc.poll() is not None:
            raise BenchError(f"coffer up exited with {self.proc.returncode}; log tail:\n{self.log_tail()}")
        return True

    def log_tail(self, chars=3000):
        try:
            with open(self.log_path) as f:
                return f.read()[-chars:]
        except OSError:
            return "(no log)"

    def __exit__(self, *exc):
        try:
            if getattr(self, "proc", None) is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            # Agents and datastores outlive `coffer up` by design: kill them too.
            subprocess.run(["pkill", "-9", "-f", self.state])
            if getattr(self, "_log", None):
                self._log.close()
            remove_state(self.state)
        return False


def create_instances(ep, names, datastore="redis"):
    """POST one instance per name; returns their ids (raises on a refusal)."""
    ids = []
    for name in names:
        code, v = http("POST", f"{ep}/instances", {"instance": {
            "name": name, "flavorRef": "1", "volume": {"size": 1}, "datastore": {"type": datastore}}})
        if code != 200:
            raise BenchError(f"POST /instances -> {code}: {v}")
        ids.append(v["instance"]["id"])
    return ids


def wait_active(ep, ids, timeout=120):
    def statuses():
        return {i: http("GET", f"{ep}/instances/{i}")[1]["instance"]["status"] for i in ids}
    try:
        wait_until(lambda: all(s in ("ACTIVE", "ERROR") for s in statuses().values()), timeout=timeout, every=0.1)
    except TimeoutError:
        raise BenchError(f"instances not ACTIVE after {timeout} s: {statuses()}")
    bad = {i: s for i, s in statuses().items() if s != "ACTIVE"}
    if bad:
        faults = {i: (http("GET", f"{ep}/instances/{i}")[1]["instance"].get("fault") or {}).get("message") for i in bad}
        raise BenchError(f"instances ended in ERROR: {faults}")


# ---------------------------------------------------------------- wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url, workdir, connections, duration, threads=None):
    """One wrk run with the X-Auth-Token header; returns requests/s, latency
    percentiles (ms), request and error counts. Errors (non-2xx, socket
    errors) are counted, not raised: the caller decides."""
    lua = os.path.join(workdir, "bench-token.lua")
    if not os.path.exists(lua):
        with open(lua, "w") as f:
            f.write('wrk.headers["X-Auth-Token"] = "bench"\n')
    threads = threads or max(1, min(connections, os.cpu_count() or 1))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
           "--latency", "-s", lua, url]
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = p.stdout
    if p.returncode != 0 or "Requests/sec" not in out:
        raise BenchError(f"wrk failed ({p.returncode}): {' '.join(cmd)}\n{out}{p.stderr}")
    pct = {k: _ms(v) for k, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    done = re.search(r"(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "url": url, "connections": connections, "threads": threads, "duration_s": duration,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": pct["50"], "p75_ms": pct["75"], "p90_ms": pct["90"], "p99_ms": pct["99"],
        "requests": int(done.group(1)) if done else None,
        "read": done.group(3) if done else None,
        "socket_errors": sum(map(int, sock.groups())) if sock else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def remove_state(state):
    """Remove a state dir whose coffer and instances were killed: first
    its mounts (the instances root, a shared bind mount, and any loop
    volume left under it; the killed processes may hold them a moment),
    then the files."""
    root = os.path.join(state, "instances")
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(30):
        if subprocess.run(["mountpoint", "-q", root], **quiet).returncode != 0:
            break
        subprocess.run(["umount", "-R", root], **quiet)
        time.sleep(0.1)
    else:
        subprocess.run(["umount", "-R", "-l", root], **quiet)
    shutil.rmtree(state, ignore_errors=True)
