#!/usr/bin/env python3
"""Scale benchmark: N Redis instances (default 200) on one machine through
Coffer. Creates them concurrently and waits until all are ACTIVE, reads
the memory of the control plane, every guest agent and every redis-server
from /proc (RSS, and PSS — the fair share of pages shared between the many
processes running one binary), measures `GET /instances?limit=1000` (all N
rows in one page) with wrk at 1 and at 32 clients, then deletes everything
and waits until it is gone. Prints a table and writes the figures as JSON
(bench/results/scale-<time>.json).

Usage: bench/scale.py [COFFER_BINARY] [--instances N] [--workers W] [--duration S]
                      [--retry-conflicts K]   (K > 0 retries a create answered 409;
                                               Coffer itself retries address clashes)
"""
import argparse, json, math, os, re, statistics, sys, time
from concurrent.futures import ThreadPoolExecutor
from common import DEFAULT_BINARY, BenchError, Coffer, exit_on_sigterm, get_bytes, http, run, write_result, wrk

AGENT_GOAL_MIB = 10          # the issue: agent RSS per instance under 10 MB
LIST_GOAL_MS = 5             # the issue: listing every instance under 5 ms
POLL_S = 0.2                 # status poll period (resolution of POST->ACTIVE)


def pct(values, p):
    """p-th percentile (nearest rank) of values; None when empty."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v), max(1, math.ceil(p / 100 * len(v)))) - 1]


def list_all(ep):
    """{id: instance} over every page of GET /instances."""
    out, url = {}, f"{ep}/instances?limit=1000"
    while url:
        code, v = http("GET", url)
        if code != 200:
            raise BenchError(f"GET {url} -> {code}: {v}")
        for i in v["instances"]:
            out[i["id"]] = i
        url = next((l["href"] for l in v.get("links", []) if l.get("rel") == "next"), None)
    return out


def fault(ep, iid):
    code, v = http("GET", f"{ep}/instances/{iid}")
    if code != 200:
        return f"GET -> {code}"
    return (v["instance"].get("fault") or {}).get("message") or "(no fault message)"


def post(ep, i, retry_conflicts=0):
    """POST one instance; a 409 is retried up to retry_conflicts times (a
    client's workaround, off by default so a refusal shows)."""
    body = {"instance": {"name": f"scale{i}", "flavorRef": "1", "volume": {"size": 1},
                         "datastore": {"type": "redis"}}}
    t0 = time.monotonic()
    retries = 0
    while True:
        try:
            code, v = http("POST", f"{ep}/instances", body)
        except Exception as e:  # connection refused/reset, bad body: counted, not fatal
            code, v = None, f"{type(e).__name__}: {e}"
        if code == 409 and retries < retry_conflicts:
            retries += 1
            continue
        break
    return {"sent": t0, "answered": time.monotonic(), "code": code, "retries": retries,
            "id": v["instance"]["id"] if code == 200 else None, "error": None if code == 200 else str(v)[:300]}


def reason_counts(messages):
    """Messages grouped with addresses, ids and numbers masked."""
    out = {}
    for m in messages:
        m = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", m)
        m = re.sub(r"\b\d+(\.\d+){3}\b", "<ip>", m)
        out[m] = out.get(m, 0) + 1
    return out


def delete(ep, iid):
    t0 = time.monotonic()
    try:
        code, v = http("DELETE", f"{ep}/instances/{iid}")
    except Exception as e:
        code, v = None, f"{type(e).__name__}: {e}"
    return {"sent": t0, "answered": time.monotonic(), "code": code, "error": None if code == 202 else str(v)[:300]}


# ---------------------------------------------------------------- memory

def _proc_kb(pid, path, key):
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def processes(state):
    """pid -> argv of every process whose command line names the state dir."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if argv and any(state in a for a in argv):
            out[int(d)] = argv
    return out


def kind_of(pid, argv, up_pid):
    return ("control_plane" if pid == up_pid else "agents" if "guest-agent" in argv else
            "redis" if os.path.basename(argv[0]).startswith("redis-server") else "other")


def memory(state, up_pid):
    """RSS/PSS in kB of the control plane, each agent, each redis-server."""
    groups = {"control_plane": [], "agents": [], "redis": [], "other": []}
    for pid, argv in processes(state).items():
        kind = kind_of(pid, argv, up_pid)
        rss = _proc_kb(pid, "status", "VmRSS")
        if rss is None:
            continue  # exited meanwhile
        groups[kind].append({"pid": pid, "rss_kb": rss, "pss_kb": _proc_kb(pid, "smaps_rollup", "Pss"),
                             "rss_anon_kb": _proc_kb(pid, "status", "RssAnon"),
                             "rss_file_kb": _proc_kb(pid, "status", "RssFile"),
                             "argv": " ".join(argv)[:200] if kind == "other" else None})
    return groups


def cpu_ticks(state, up_pid):
    """Clock ticks (user + system) used so far by each group's processes."""
    out = {"control_plane": 0, "agents": 0, "redis": 0, "other": 0}
    for pid, argv in processes(state).items():
        kind = kind_of(pid, argv, up_pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[kind] += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return out


def summarize(groups):
    def stats(rows, key):
        v = [r[key] for r in rows if r[key] is not None]
        if not v:
            return None
        return {"n": len(v), "median_mib": statistics.median(v) / 1024, "max_mib": max(v) / 1024,
                "min_mib": min(v) / 1024, "sum_mib": sum(v) / 1024}
    out = {k: {"rss": stats(rows, "rss_kb"), "pss": stats(rows, "pss_kb"), "rss_anon": stats(rows, "rss_anon_kb"),
               "rss_file": stats(rows, "rss_file_kb")} for k, rows in groups.items()}
    all_rows = [r for rows in groups.values() for r in rows]
    out["total"] = {"rss_sum_mib": sum(r["rss_kb"] for r in all_rows) / 1024,
                    "pss_sum_mib": sum(r["pss_kb"] or 0 for r in all_rows) / 1024,
                    "processes": len(all_rows)}
    out["other_argv"] = [r["argv"] for r in groups["other"]]
    return out


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("coffer", nargs="?", default=DEFAULT_BINARY)
    ap.add_argument("--instances", type=int, default=200, help="Redis instances (default 200)")
    ap.add_argument("--workers", type=int, default=32, help="threads sending the POSTs/DELETEs (default 32)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds to wait for ACTIVE, and for deletion")
    ap.add_argument("--retry-conflicts", type=int, default=0, metavar="K",
                    help="retry a POST answered 409 up to K times (default 0: a 409 is a failure)")
    ap.add_argument("--settle", type=float, default=3, help="seconds after the last ACTIVE before measuring idle CPU")
    ap.add_argument("--idle-window", type=float, default=5, help="seconds over which idle CPU is measured; memory after it")
    args = ap.parse_args()
    exit_on_sigterm()
    n = args.instances
    if n < 1:
        raise BenchError("--instances must be at least 1")

    t_start = time.monotonic()
    failures, r = [], {}
    with Coffer(args.coffer, "scale") as c:
        # ---- create N concurrently; the main thread polls the list meanwhile
        print(f"creating {n} Redis instances ({args.workers} concurrent POSTs)...", flush=True)
        posts, terminal = [], {}
        polls, last_report = 0, 0.0
        pool = ThreadPoolExecutor(args.workers)
        try:
            futures = [pool.submit(post, c.ep, i, args.retry_conflicts) for i in range(n)]
            deadline = time.monotonic() + args.timeout
            while True:
                c.check_alive()
                done = [f.result() for f in futures if f.done()]
                known = {p["id"] for p in done if p["id"]}
                rows = list_all(c.ep)
                now = time.monotonic()
                polls += 1
                for iid, inst in rows.items():
                    if iid not in terminal and inst["status"] in ("ACTIVE", "ERROR"):
                        terminal[iid] = (inst["status"], now)
                all_posted = len(done) == n
                if all_posted and known <= set(terminal):
                    break
                if now > deadline:
                    break
                if now - last_report > 5:
                    last_report = now
                    print(f"  {now - t_start:6.1f} s: {len(done)}/{n} POSTs answered, "
                          f"{sum(1 for s, _ in terminal.values() if s == 'ACTIVE')} ACTIVE, "
                          f"{sum(1 for s, _ in terminal.values() if s == 'ERROR')} ERROR", flush=True)
                time.sleep(POLL_S)
            posts = [f.result() for f in futures]
        finally:  # on an error or a signal, send no more POSTs
            pool.shutdown(wait=False, cancel_futures=True)
        ok_posts = [p for p in posts if p["id"]]
        ids = [p["id"] for p in ok_posts]
        refused = [p for p in posts if not p["id"]]
        active = [i for i in ids if terminal.get(i, ("",))[0] == "ACTIVE"]
        errored = [i for i in ids if terminal.get(i, ("",))[0] == "ERROR"]
        stuck = [i for i in ids if i not in terminal]
        t_first_post = min(p["sent"] for p in posts)
        t_posts_done = max(p["answered"] for p in posts)
        post_latency = [p["answered"] - p["sent"] for p in posts]
        to_active = [terminal[p["id"]][1] - p["sent"] for p in ok_posts if p["id"] in active]
        r["create"] = {
            "posts_answered_s": t_posts_done - t_first_post,
            "post_latency_median_s": statistics.median(post_latency), "post_latency_p99_s": pct(post_latency, 99),
            "first_post_to_last_active_s": (max(terminal[i][1] for i in active) - t_first_post) if active else None,
            "post_to_active_median_s": statistics.median(to_active) if to_active else None,
            "post_to_active_p99_s": pct(to_active, 99), "post_to_active_max_s": max(to_active) if to_active else None,
            "status_poll_period_s": POLL_S, "status_polls": polls,
            "active": len(active), "error": len(errored), "not_finished": len(stuck), "refused": len(refused),
        }
        r["create"]["post_retries"] = sum(p["retries"] for p in posts)
        r["create"]["posts_retried"] = sum(1 for p in posts if p["retries"])
        if refused:
            reasons = reason_counts(f"{p['code']}: {p['error']}" for p in refused)
            r["create"]["refused_reasons"] = reasons
            failures.append(f"{len(refused)} POSTs refused: {reasons}")
        if errored:
            reasons = reason_counts(fault(c.ep, i) for i in errored)
            r["create"]["error_reasons"] = reasons
            failures.append(f"{len(errored)} instances ended ERROR: {reasons}")
        if stuck:
            now_rows = list_all(c.ep)
            by = {}
            for i in stuck:
                s = now_rows.get(i, {}).get("status", "missing")
                by[s] = by.get(s, 0) + 1
            r["create"]["not_finished_statuses"] = by
            failures.append(f"{len(stuck)} instances neither ACTIVE nor ERROR after {args.timeout} s: {by}")
        cr = r["create"]
        print(f"  {len(active)}/{n} ACTIVE; POSTs answered in {cr['posts_answered_s']:.2f} s; "
              f"first POST -> last ACTIVE {cr['first_post_to_last_active_s'] or float('nan'):.2f} s", flush=True)
        if not active:
            raise BenchError("no instance became ACTIVE; " + "; ".join(failures) + "\nlog tail:\n" + c.log_tail())

        # ---- idle CPU of the fleet, then memory (agents have sent heartbeats by then)
        time.sleep(args.settle)
        c.check_alive()
        t0, ticks0 = time.monotonic(), cpu_ticks(c.state, c.proc.pid)
        time.sleep(args.idle_window)
        t1, ticks1 = time.monotonic(), cpu_ticks(c.state, c.proc.pid)
        hz = os.sysconf("SC_CLK_TCK")
        r["idle_cpu_percent_of_one_core"] = {k: 100 * (ticks1[k] - ticks0[k]) / hz / (t1 - t0) for k in ticks1}
        r["idle_cpu_window_s"] = t1 - t0
        mem = summarize(memory(c.state, c.proc.pid))
        r["memory_after_active"] = mem
        if mem["agents"]["rss"] is None or mem["agents"]["rss"]["n"] != len(active):
            failures.append(f"found {mem['agents']['rss'] and mem['agents']['rss']['n']} guest agents for "
                            f"{len(active)} ACTIVE instances")
        if mem["redis"]["rss"] is None or mem["redis"]["rss"]["n"] != len(active):
            failures.append(f"found {mem['redis']['rss'] and mem['redis']['rss']['n']} redis-servers for "
                            f"{len(active)} ACTIVE instances")
        if mem["agents"]["rss"] is None or mem["redis"]["rss"] is None:
            raise BenchError("no guest agent or redis-server process found; " + "; ".join(failures))
        print(f"  memory: control plane {mem['control_plane']['rss']['max_mib']:.1f} MiB RSS, "
              f"agents {mem['agents']['rss']['median_mib']:.2f} MiB RSS median", flush=True)

        # ---- list latency with every row in one page
        url = f"{c.ep}/instances?limit=1000"
        code, body = get_bytes(url)
        rows_listed = len(json.loads(body)["instances"])
        r["list"] = {"url_path": "/v1.0/bench/instances?limit=1000", "rows": rows_listed,
                     "response_bytes": len(body), "rows_expected": min(len(ids), 1000)}
        if rows_listed != min(len(ids), 1000):
            failures.append(f"list returned {rows_listed} rows, expected {min(len(ids), 1000)}")
        for label, conns in (("c1", 1), ("c32", 32)):
            wrk(url, c.state, conns, 1)  # warm-up, not recorded
            w = wrk(url, c.state, conns, args.duration)
            r["list"][label] = w
            if w["non_2xx"] or w["socket_errors"]:
                failures.append(f"list at {conns} clients: {w['non_2xx']} non-2xx, {w['socket_errors']} socket errors")
            print(f"  list at {conns:>2} clients: {w['requests_per_s']:.0f} req/s, p50 {w['p50_ms']:.2f} ms, "
                  f"p99 {w['p99_ms']:.2f} ms", flush=True)

        # the same list cut to one row: what the rows themselves cost
        one = wrk(f"{c.ep}/instances?limit=1", c.state, 1, args.duration)
        r["list"]["c1_limit1"] = one
        if one["non_2xx"] or one["socket_errors"]:
            failures.append(f"list limit=1: {one['non_2xx']} non-2xx, {one['socket_errors']} socket errors")
        r["list"]["per_row_us"] = (1000 * (r["list"]["c1"]["p50_ms"] - one["p50_ms"]) / (rows_listed - 1)
                                   if rows_listed > 1 else None)

        c.check_alive()
        r["memory_after_list_load"] = summarize(memory(c.state, c.proc.pid))

        # ---- delete everything
        print(f"deleting {len(ids)} instances...", flush=True)
        t_del = time.monotonic()
        with ThreadPoolExecutor(args.workers) as pool:
            dels = list(pool.map(lambda i: delete(c.ep, i), ids))
        t_del_answered = max(d["answered"] for d in dels)
        bad_dels = [d for d in dels if d["code"] != 202]
        if bad_dels:
            failures.append(f"{len(bad_dels)} DELETEs not 202, e.g. {bad_dels[0]['code']}: {bad_dels[0]['error']}")
        remaining, t_api_gone, t_procs_gone = set(ids), None, None
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline and (t_api_gone is None or t_procs_gone is None):
            c.check_alive()
            if t_api_gone is None:
                remaining = set(ids) & set(list_all(c.ep))
                if not remaining:
                    t_api_gone = time.monotonic()
            if t_procs_gone is None:
                if not [p for p in processes(c.state) if p != c.proc.pid]:
                    t_procs_gone = time.monotonic()
            time.sleep(POLL_S)
        left = [p for p in processes(c.state) if p != c.proc.pid]
        r["delete"] = {"deletes_answered_s": t_del_answered - t_del,
                       "all_gone_from_api_s": t_api_gone - t_del if t_api_gone else None,
                       "all_processes_gone_s": t_procs_gone - t_del if t_procs_gone else None,
                       "instances_left": len(remaining), "processes_left": len(left)}
        if t_api_gone is None:
            failures.append(f"{len(remaining)} instances still listed {args.timeout} s after DELETE")
        if t_procs_gone is None:
            failures.append(f"{len(left)} agent/datastore processes still running {args.timeout} s after DELETE")
        c.check_alive()

    # ---------------------------------------------------------------- report
    cr, mem, ls, dl = r["create"], r["memory_after_active"], r["list"], r["delete"]
    mem2 = r["memory_after_list_load"]
    ag, ag_pss, rd, cp = mem["agents"]["rss"], mem["agents"]["pss"], mem["redis"]["rss"], mem["control_plane"]
    ag_anon, ag_file, rd_pss = mem["agents"]["rss_anon"], mem["agents"]["rss_file"], mem["redis"]["pss"]
    per_inst_pss = mem["total"]["pss_sum_mib"] / len(active)
    agent_met = ag["max_mib"] < AGENT_GOAL_MIB
    agent_median_met = ag["median_mib"] < AGENT_GOAL_MIB
    c1, c32 = ls["c1"], ls["c32"]

    def f(x, fmt="{:.2f}"):
        return "-" if x is None else fmt.format(x)
    rows = [
        ("instances ACTIVE / requested", f"{len(active)}/{n}", "all", "yes" if len(active) == n else "NO"),
        ("POSTs refused", f"{cr['refused']}", "0", "yes" if not cr["refused"] else "NO"),
        ("POSTs retried after 409 / retries", f"{cr['posts_retried']} / {cr['post_retries']}", "", ""),
        ("all POSTs answered (s)", f(cr["posts_answered_s"]), "", ""),
        ("POST latency median / p99 (s)", f"{f(cr['post_latency_median_s'], '{:.3f}')} / {f(cr['post_latency_p99_s'], '{:.3f}')}", "", ""),
        ("first POST -> last ACTIVE (s)", f(cr["first_post_to_last_active_s"]), "", ""),
        ("POST->ACTIVE median / p99 (s)", f"{f(cr['post_to_active_median_s'])} / {f(cr['post_to_active_p99_s'])}", f"±{POLL_S} s poll", ""),
        ("control plane RSS / PSS (MiB)", f"{cp['rss']['max_mib']:.1f} / {f(cp['pss'] and cp['pss']['max_mib'], '{:.1f}')}", "", ""),
        ("  after list load RSS (MiB)", f"{mem2['control_plane']['rss']['max_mib']:.1f}", "", ""),
        ("agent RSS median / max (MiB)", f"{ag['median_mib']:.2f} / {ag['max_mib']:.2f}", f"< {AGENT_GOAL_MIB} MiB",
         "yes" if agent_met else ("median only" if agent_median_met else "NO")),
        ("agent PSS median / max (MiB)", f"{f(ag_pss and ag_pss['median_mib'])} / {f(ag_pss and ag_pss['max_mib'])}", "", ""),
        ("  of which anon / file, median (MiB)", f"{f(ag_anon and ag_anon['median_mib'])} / {f(ag_file and ag_file['median_mib'])}", "", ""),
        ("redis-server RSS median / max (MiB)", f"{rd['median_mib']:.2f} / {rd['max_mib']:.2f}", "", ""),
        ("redis-server PSS median / max (MiB)", f"{f(rd_pss and rd_pss['median_mib'])} / {f(rd_pss and rd_pss['max_mib'])}", "", ""),
        ("idle CPU: CP / agents / redis (% core)", "{:.1f} / {:.1f} / {:.1f}".format(
            *(r["idle_cpu_percent_of_one_core"][k] for k in ("control_plane", "agents", "redis"))), "", ""),
        ("total RSS / PSS, all processes (MiB)", f"{mem['total']['rss_sum_mib']:.0f} / {mem['total']['pss_sum_mib']:.0f}", "", ""),
        ("PSS per instance, all incl. CP (MiB)", f"{per_inst_pss:.2f}", "", ""),
        (f"list {ls['rows']} rows: response (KiB)", f"{ls['response_bytes'] / 1024:.0f}", "", ""),
        ("list, 1 client: p50 / p99 (ms)", f"{c1['p50_ms']:.2f} / {c1['p99_ms']:.2f}",
         f"< {LIST_GOAL_MS} ms (Trove ~1 s/100)", "yes" if c1["p50_ms"] < LIST_GOAL_MS else "NO"),
        ("list, 1 client: req/s", f"{c1['requests_per_s']:.0f}", "", ""),
        ("list limit=1, 1 client: p50 (ms)", f"{ls['c1_limit1']['p50_ms']:.2f}", "same store, 1 row", ""),
        ("  => per row, p50 (µs)", f(ls["per_row_us"], "{:.1f}"), "", ""),
        ("list, 32 clients: p50 / p99 (ms)", f"{c32['p50_ms']:.2f} / {c32['p99_ms']:.2f}", f"< {LIST_GOAL_MS} ms (>= 32 / req/s)",
         "yes" if c32["p50_ms"] < LIST_GOAL_MS else "NO"),
        ("list, 32 clients: req/s", f"{c32['requests_per_s']:.0f}", "", ""),
        ("all DELETEs answered (s)", f(dl["deletes_answered_s"]), "", ""),
        ("DELETE -> all gone from API (s)", f(dl["all_gone_from_api_s"]), "", ""),
        ("DELETE -> all processes gone (s)", f(dl["all_processes_gone_s"]), "", ""),
    ]
    print()
    print(f"Scale: {n} Redis instances on {os.cpu_count()} cores (MiB = 1024 KiB; list load by wrk on the same cores)")
    print(f"{'figure':<40}{'value':>17}  {'goal / baseline':<28}{'met?'}")
    for fig, val, goal, met in rows:
        print(f"{fig:<40}{val:>17}  {goal:<28}{met}")
    print(f"goal: agent RSS per instance under {AGENT_GOAL_MIB} MiB -> "
          f"{'met' if agent_met else 'met by the median, not by every agent' if agent_median_met else 'NOT met'}; "
          f"list of {ls['rows']} under {LIST_GOAL_MS} ms (1 client, p50) -> {'met' if c1['p50_ms'] < LIST_GOAL_MS else 'NOT met'}")

    result = {"benchmark": "scale", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cores": os.cpu_count()}, "instances": n, "workers": args.workers,
              "goals": {"agent_rss_mib": AGENT_GOAL_MIB, "list_ms": LIST_GOAL_MS,
                        "agent_rss_met": agent_met, "agent_rss_median_met": agent_median_met,
                        "list_c1_p50_met": c1["p50_ms"] < LIST_GOAL_MS, "list_c32_p50_met": c32["p50_ms"] < LIST_GOAL_MS},
              **r, "wall_s": time.monotonic() - t_start, "failures": failures}
    print(f"results: {write_result(result, 'scale')}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
