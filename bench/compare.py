#!/usr/bin/env python3
"""Compare two benchmark runs: the figures of two results files
(bench/results/<kind>-<time>.json) side by side, with new/old.

  bench/compare.py OLD.json NEW.json   those two files
  bench/compare.py                     for each kind (provision, backup,
                                       scale, api): its newest file against
                                       the one before it

Both documents are flattened to dotted key paths (`list.c1.p50_ms`,
`endpoints.GET /flavors.requests_per_s`); a row is a number present in
both. Left out:
  - booleans and strings;
  - lists (per-run samples, e.g. backup's `runs` and provision's
    `coffer_post_to_active_s`: their medians are compared instead);
  - the `machine`, `flavor` and `goals` subtrees (the setup and fixed goals);
  - settings, identities and counts that follow from the settings, not
    figures: connections, threads, duration_s, workers, instances, runs,
    gb, volume_gb, cores, status_poll_period_s, idle_cpu_window_s; pid,
    port, id; n, processes, rows, rows_expected, rows_checked, scale,
    statements, status_polls, requests (wrk's total: req/s x duration).
Rows are sorted by key; by default only those that changed by more than
2% (|new - old| / |old|) are shown, with --all every one. A change beyond
±10% is marked "better" or "worse" where the key's last name tells which
way is better, else "changed":
  higher is better: *per_s, *mb_s (throughput), *throughput*, x_*, *_vs_*
                    (backup's speed-ups: baseline time / Coffer's time);
  lower is better:  *_s, *_ms, *_us, *_mib, *_kb, *latency*, *seconds*,
                    *rss*, *pss*, and figures under an rss, pss or cpu key
                    (`memory_after_active.agents.rss.median_mib`, idle CPU).
Timings of one run on a shared machine are noisy: a mark is a prompt to
look, not a verdict.

Exit status 0, also when there is nothing to compare; 2 when a file cannot
be read or is not a JSON object.
"""
import argparse, glob, json, math, os, sys

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
KINDS = ("provision", "backup", "scale", "api")
SHOWN = 0.02        # without --all, rows that changed by SHOWN or less (|new - old| / |old|) are hidden
MARKED = 0.10       # a change beyond MARKED is marked

SKIP_SUBTREES = {"machine", "flavor", "goals"}
# Leaf names that are not figures (see the module doc).
NOT_FIGURES = {
    "connections", "threads", "duration_s", "workers", "instances", "runs", "gb", "volume_gb",
    "status_poll_period_s", "idle_cpu_window_s", "cores",
    "pid", "port", "id",
    "n", "processes", "rows", "rows_expected", "rows_checked", "scale", "statements", "status_polls", "requests",
}

HIGHER_SUFFIXES = ("per_s", "mb_s")           # requests_per_s, mb_per_s, page_cache_write_mb_s
LOWER_SUFFIXES = ("_s", "_ms", "_us", "_mib", "_kb")
LOWER_WORDS = ("latency", "seconds", "rss", "pss")


class Unreadable(Exception):
    pass


def direction(key):
    """+1 when a higher value is better, -1 when lower is, 0 when the name
    does not say. The last path component decides: higher for *per_s,
    *mb_s, *throughput*, x_* and *_vs_* (backup's speed-ups: baseline time
    / Coffer's time); lower for *_s, *_ms, *_us, *_mib, *_kb and names
    holding latency, seconds, rss or pss; failing that, a parent component
    holding rss or pss (memory summaries: `agents.rss.median_mib`) or cpu
    (idle CPU) means lower."""
    parts = key.split(".")
    leaf = parts[-1].lower()
    if leaf.endswith(HIGHER_SUFFIXES) or "throughput" in leaf or leaf.startswith("x_") or "_vs_" in leaf:
        return 1
    if leaf.endswith(LOWER_SUFFIXES) or any(w in leaf for w in LOWER_WORDS):
        return -1
    if any(w in p.lower() for p in parts[:-1] for w in ("rss", "pss", "cpu")):
        return -1
    return 0


def flatten(doc, prefix=""):
    """{dotted key: number} of the figures in doc (see the module doc)."""
    out = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            if k not in SKIP_SUBTREES:
                out.update(flatten(v, key + "."))
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        elif k not in NOT_FIGURES and math.isfinite(v):
            out[key] = v
    return out


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise Unreadable(f"cannot read {path}: {e}")
    if not isinstance(doc, dict):
        raise Unreadable(f"{path} is not a results file (a JSON object)")
    return doc


def change(old, new):
    """(new - old) / |old|: 0.1 is 10% up (also for a negative old, such as
    provision's overhead_s); inf when old is 0 and new is not."""
    if old == new:
        return 0.0
    if old == 0:
        return math.inf
    return (new - old) / abs(old)


def fmt(v):
    if isinstance(v, int):
        return str(v)
    return f"{v:.6g}"


def compare(old_path, new_path, show_all):
    old_doc, new_doc = load(old_path), load(new_path)
    old, new = flatten(old_doc), flatten(new_doc)
    common = sorted(old.keys() & new.keys())
    kinds = old_doc.get("benchmark"), new_doc.get("benchmark")
    print(f"old: {old_path} ({old_doc.get('time', '?')})")
    print(f"new: {new_path} ({new_doc.get('time', '?')})")
    if kinds[0] != kinds[1]:
        print(f"note: different benchmarks ({kinds[0]} / {kinds[1]})")
    rows = []
    for key in common:
        o, n = old[key], new[key]
        c = change(o, n)
        if not show_all and abs(c) <= SHOWN:
            continue
        mark = ""
        if abs(c) > MARKED:
            d = direction(key)
            mark = "changed" if d == 0 else "better" if (n > o) == (d > 0) else "worse"
        rows.append((key, fmt(o), fmt(n), "-" if o == 0 else f"{n / o:.3f}", mark))
    only = len(old.keys() - new.keys()), len(new.keys() - old.keys())
    shown = "all" if show_all else f"changed by more than {SHOWN:.0%}"
    print(f"{len(common)} figures in both ({shown}: {len(rows)}); only in old: {only[0]}, only in new: {only[1]}")
    print(f"marked beyond ±{MARKED:.0%}: 'better'/'worse' where the key's name tells which way is better, else 'changed'")
    print("  (not known in general; lower is better for *_s, *_ms, *_us, *_mib, *_kb, latency, seconds, rss, pss,")
    print("   higher for *per_s, *mb_s, throughput, x_*, *_vs_*)")
    if rows:
        w = max(len("key"), *(len(r[0]) for r in rows))
        print(f"{'key':<{w}}  {'old':>12}  {'new':>12}  {'new/old':>8}  mark")
        for key, o, n, r, mark in rows:
            print(f"{key:<{w}}  {o:>12}  {n:>12}  {r:>8}  {mark}".rstrip())


def latest_pair(results_dir, kind):
    """(older, newer): the kind's two newest results files, or None when it has fewer."""
    # <kind>-<YYYY-MM-DDTHHMMSSZ>.json: the name sorts by time.
    files = sorted(glob.glob(os.path.join(results_dir, f"{kind}-*.json")))
    if len(files) < 2:
        print(f"{kind}: {len(files)} result file(s) in {results_dir}, nothing to compare")
        return None
    return files[-2], files[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("files", nargs="*", metavar="FILE", help="OLD.json NEW.json (none: each kind's two newest)")
    ap.add_argument("--all", action="store_true", help="show unchanged rows too")
    ap.add_argument("--results", default=RESULTS_DIR, metavar="DIR",
                    help="where to look without files (default: bench/results)")
    args = ap.parse_args()
    if len(args.files) not in (0, 2):
        ap.error("give two files (OLD.json NEW.json) or none")
    if args.files:
        try:
            compare(args.files[0], args.files[1], args.all)
        except Unreadable as e:
            print(f"compare: {e}", file=sys.stderr)
            return 2
        return 0
    status = 0
    for kind in KINDS:
        pair = latest_pair(args.results, kind)
        if pair is None:
            continue
        print(f"\n== {kind}")
        try:
            compare(*pair, args.all)
        except Unreadable as e:   # the other kinds are still compared
            print(f"compare: {e}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
