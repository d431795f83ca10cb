#!/usr/bin/env python3
"""API throughput benchmark: requests/s and p50/p99 latency of instance
show, datastore list and flavor list at 32 concurrent clients (wrk), next
to `GET /` (the versions document: no auth, no store access) on the same
server in the same run as the HTTP floor. Prints a table and writes the
figures as JSON (bench/results/api-<time>.json).

Usage: bench/api.py [COFFER_BINARY] [--duration S] [--connections N] [--instances N]
"""
import argparse, os, sys, time
from common import (DEFAULT_BINARY, BenchError, Coffer, create_instances, exit_on_sigterm, get_bytes, run,
                    wait_active, write_result, wrk)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("coffer", nargs="?", default=DEFAULT_BINARY)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--connections", type=int, default=32, help="concurrent clients (default 32)")
    ap.add_argument("--instances", type=int, default=3, help="Redis instances in the store (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of unrecorded wrk before each run")
    args = ap.parse_args()
    exit_on_sigterm()
    dur = max(1, args.duration)

    started = time.monotonic()
    failures = []
    runs = {}
    with Coffer(args.coffer, "api") as c:
        ids = create_instances(c.ep, [f"api{i}" for i in range(args.instances)])
        wait_active(c.ep, ids)
        targets = [
            ("GET / (versions, floor)", f"{c.root}/"),
            ("GET /instances/{id} (show)", f"{c.ep}/instances/{ids[0]}"),
            ("GET /datastores", f"{c.ep}/datastores"),
            ("GET /flavors", f"{c.ep}/flavors"),
        ]
        for label, url in targets:
            code, body = get_bytes(url)
            if code != 200:
                raise BenchError(f"{label} -> {code}")
            if args.warmup > 0:
                wrk(url, c.state, args.connections, args.warmup)
            r = wrk(url, c.state, args.connections, dur)
            r["response_bytes"] = len(body)
            runs[label] = r
            if r["non_2xx"] or r["socket_errors"]:
                failures.append(f"{label}: {r['non_2xx']} non-2xx, {r['socket_errors']} socket errors")
            print(f"  {label:<30} {r['requests_per_s']:>10.0f} req/s  p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms",
                  flush=True)
        c.check_alive()

    floor = runs[targets[0][0]]
    for r in runs.values():
        r["rps_ratio_to_floor"] = r["requests_per_s"] / floor["requests_per_s"]
        r["p50_ratio_to_floor"] = r["p50_ms"] / floor["p50_ms"]
        r["p99_ratio_to_floor"] = r["p99_ms"] / floor["p99_ms"]

    print()
    print(f"API at {args.connections} concurrent clients, {dur} s per endpoint, {os.cpu_count()} cores "
          f"(wrk shares the cores with coffer)")
    print(f"{'endpoint':<32}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'bytes':>7}"
          f"{'req/s ÷ floor':>15}{'p50 × floor':>13}{'p99 × floor':>13}")
    for label, r in runs.items():
        print(f"{label:<32}{r['requests_per_s']:>10.0f}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['response_bytes']:>7}"
              f"{r['rps_ratio_to_floor']:>15.2f}{r['p50_ratio_to_floor']:>13.2f}{r['p99_ratio_to_floor']:>13.2f}")

    result = {"benchmark": "api", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cores": os.cpu_count()}, "connections": args.connections, "duration_s": dur,
              "instances": args.instances, "floor": targets[0][0], "endpoints": runs,
              "wall_s": time.monotonic() - started, "failures": failures}
    print(f"results: {write_result(result, 'api')}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
