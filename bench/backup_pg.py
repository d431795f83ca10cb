"""PostgreSQL for bench/backup.py: the instance's admin login (its unix
socket and the password the agent keeps in `secret/`), a pgbench load of
about --gb GB, and the `pg_basebackup` stream exactly as Coffer's
pg_basebackup strategy runs it (crates/datastores/src/postgresql/backup.rs:
as root, a client only, logging in as os_admin over the socket with a
0600 password file)."""
import os, subprocess, time

PG_BIN = "/usr/lib/postgresql/15/bin"
ADMIN = "os_admin"
# pg_database_size per pgbench scale unit (100,000 pgbench_accounts rows and
# their primary key), and an empty database's own size; measured on PG 15.
BYTES_PER_SCALE = 15.7e6
EMPTY_DB = 7.5e6
MB = 1e6


def _du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout.split()[0])


class PgInstance:
    def __init__(self, state, iid):
        self.dir = os.path.join(state, "instances", iid)
        self.run = os.path.join(self.dir, "run")
        socks = [f for f in os.listdir(self.run) if f.startswith(".s.PGSQL.") and not f.endswith(".lock")]
        assert socks, f"no socket in {self.run}: {os.listdir(self.run)}"
        self.port = int(socks[0].rsplit(".", 1)[1])
        self.data = os.path.join(self.dir, "data")
        with open(os.path.join(self.dir, "secret", "os_admin.password")) as f:
            self._pw = f.read().strip()
        assert self._pw.isalnum(), "the admin password is not a generated one"

    def passfile(self, work):
        """A libpq password file (0600) for the admin, in `work`."""
        path = os.path.join(work, "pgpass")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"*:*:*:{ADMIN}:{self._pw}\n")
        return path

    def _env(self):
        return {"PATH": "/usr/bin:/bin", "PGPASSWORD": self._pw, "PGCONNECT_TIMEOUT": "30"}

    def _conn(self):
        return ["-h", self.run, "-p", str(self.port), "-U", ADMIN]

    def sql(self, query, db="postgres"):
        r = subprocess.run([f"{PG_BIN}/psql", *self._conn(), "-d", db, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-c", query], env=self._env(), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr.strip()}")
        return r.stdout.strip()

    def pgbench_init(self, scale, db):
        """pgbench's tables at `scale`, generated server-side (drop, create,
        generate, vacuum, primary keys)."""
        r = subprocess.run([f"{PG_BIN}/pgbench", *self._conn(), "-i", "-s", str(scale), "-I", "dtGvp", db],
                           env=self._env(), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"pgbench -i: {r.stderr.strip()[-2000:]}")
        return r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""


class PostgreSQL:
    name, label, tool, server = "postgresql", "PostgreSQL", "pg_basebackup", "postgres"
    stream_name = "pg_basebackup -D - -Ft -X fetch --checkpoint=fast"

    def create_extra(self):
        return {"databases": [{"name": "bench"}]}

    def instance(self, state, iid):
        return PgInstance(state, iid)

    def load(self, inst, gb):
        """pgbench -i at the scale whose database comes to ~gb GB."""
        scale = max(1, round((gb * 1e9 - EMPTY_DB) / BYTES_PER_SCALE))
        print(f"  pgbench -i -s {scale} (server-side generation) ...", flush=True)
        t0 = time.monotonic()
        summary = inst.pgbench_init(scale, "bench")
        load_s = time.monotonic() - t0
        inst.sql("CHECKPOINT")
        db_bytes = int(inst.sql("SELECT pg_database_size('bench')"))
        return {"tool": "pgbench -i -I dtGvp", "scale": scale, "rows": scale * 100_000, "load_s": load_s,
                "pgbench": summary, "database_bytes": db_bytes,
                "accounts_bytes": int(inst.sql("SELECT pg_total_relation_size('pgbench_accounts')", "bench")),
                "datadir_du_bytes": _du(inst.data)}

    def count_rows(self, inst):
        return int(inst.sql("SELECT count(*) FROM pgbench_accounts", "bench"))

    def describe_load(self, data):
        return (f"pgbench scale {data['scale']} ({data['rows']} accounts) in {data['load_s']:.1f} s: "
                f"database {data['database_bytes'] / MB:.0f} MB, du datadir {data['datadir_du_bytes'] / MB:.0f} MB")

    def stream_cmd(self, inst, d):
        """The shell command writing the backup stream to stdout, its stderr
        into d/tool.log: Coffer's own arguments."""
        pgpass = inst.passfile(d)
        return (f"env -i PATH=/usr/bin:/bin PGPASSFILE={pgpass} PGCONNECT_TIMEOUT=30 {PG_BIN}/pg_basebackup"
                f" --host {inst.run} --port {inst.port} --username {ADMIN} --no-password"
                f" --pgdata=- --format=tar --wal-method=fetch --checkpoint=fast --verbose --label=bench"
                f" 2>{d}/tool.log")
