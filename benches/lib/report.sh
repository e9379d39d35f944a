# shellcheck shell=bash
# Reporting for the load comparison: the markdown table (median per cell over the rounds), the
# hydrant-to-others ratios, and the targets checked where the cells exist. Sourced by
# lib/common.sh.
#
# The targets are hydrant's own performance goals at 50 connections: redirect hits at
# >= 0.90 x the bare-hyper ceiling's req/s, <= 1.15 x its CPU per request and p99 <= 1 ms;
# hydrate hits at >= 0.85 x bare's req/s, >= 1.5 x nginx proxy_cache's req/s and <= 0.7 x
# nginx's CPU per request.

# print_table KEY=VALUE...: the table of $RESULTS_TSV; keys date, threads, duration, rounds, ws.
print_table() {
    python3 - "$RESULTS_TSV" "$@" <<'PY'
import statistics, sys
from collections import defaultdict

path = sys.argv[1]
meta = dict(a.split("=", 1) for a in sys.argv[2:])
rows = defaultdict(list)
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if len(f) < 10:
        continue
    label, conns = f[0], int(f[1])
    workload, server = label.split("/", 1)
    vals = [float(x) for x in f[2:10]]
    rows[(workload, conns, server)].append(vals)

def med(xs):
    return statistics.median(xs) if xs else float("nan")

agg = {}
for k, runs in rows.items():
    cols = list(zip(*runs))
    # rps p50 p99 reqs cpu rss errors upstream: medians over rounds (errors, upstream: sums)
    agg[k] = dict(rps=med(cols[0]), p50=med(cols[1]), p99=med(cols[2]), cpu=med(cols[4]),
                  rss=max(cols[5]), err=sum(cols[6]), up=sum(cols[7]), reqs=sum(cols[3]),
                  n=len(runs))

names = {"redirect": "(a) GET /files/{id}/redirect, hits",
         "hydrate": "(b) POST /v1/files/{id}/hydrate, hits",
         "miss": "(c) hydrate, 1 % misses, 50 ms upstream latency"}
order = ["hydrant", "bare", "nginx", "varnish"]
print()
print(f"Load comparison — {meta.get('date','')}; wrk -t{meta.get('threads','2')}, "
      f"{meta.get('duration','')} per run, {meta.get('rounds','')} rounds, median per cell; "
      f"working set {meta.get('ws','')} files")
print()
print("| workload | conns | server | req/s | p50 µs | p99 µs | CPU µs/req | RSS MB | errors | upstream calls |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
workloads = [w for w in ["redirect", "hydrate", "miss"] if any(k[0] == w for k in agg)]
conns_all = sorted({k[1] for k in agg})
for w in workloads:
    for c in conns_all:
        for s in order:
            a = agg.get((w, c, s))
            if not a:
                continue
            print(f"| {names[w]} | {c} | {s} | {a['rps']:,.0f} | {a['p50']:,.0f} | {a['p99']:,.0f} | "
                  f"{a['cpu']:.1f} | {a['rss']:.1f} | {a['err']:.0f} | {a['up']:.0f} |")
print()
print("| workload | conns | hydrant/bare req/s | hydrant/bare CPU/req | hydrant/nginx req/s | hydrant/nginx CPU/req | hydrant/varnish req/s | hydrant/varnish CPU/req |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
def ratio(w, c, other, key):
    h, o = agg.get((w, c, "hydrant")), agg.get((w, c, other))
    if not h or not o or not o[key]:
        return "n/a"
    return f"{h[key] / o[key]:.2f}"
for w in workloads:
    for c in conns_all:
        if (w, c, "hydrant") not in agg:
            continue
        print(f"| {w} | {c} | " + " | ".join(ratio(w, c, o, k) for o in ["bare", "nginx", "varnish"] for k in ["rps", "cpu"]) + " |")

# The targets (see the header of this file), checked where the cells exist.
print()
checks = []
def chk(name, w, c, other, key, op, bound):
    r = ratio(w, c, other, key)
    if r == "n/a":
        checks.append(f"- {name}: n/a")
        return
    ok = float(r) >= bound if op == ">=" else float(r) <= bound
    checks.append(f"- {name}: {r} (target {op} {bound}) {'met' if ok else 'MISSED'}")
chk("redirect hits, req/s vs bare @50", "redirect", 50, "bare", "rps", ">=", 0.90)
chk("redirect hits, CPU/req vs bare @50", "redirect", 50, "bare", "cpu", "<=", 1.15)
h = agg.get(("redirect", 50, "hydrant"))
if h:
    checks.append(f"- redirect hits, p99 @50: {h['p99']:.0f} µs (target <= 1000 µs) {'met' if h['p99'] <= 1000 else 'MISSED'}")
chk("hydrate hits, req/s vs bare @50", "hydrate", 50, "bare", "rps", ">=", 0.85)
chk("hydrate hits, req/s vs nginx @50", "hydrate", 50, "nginx", "rps", ">=", 1.5)
chk("hydrate hits, CPU/req vs nginx @50", "hydrate", 50, "nginx", "cpu", "<=", 0.7)
print("Targets:")
print("\n".join(checks))
PY
}
