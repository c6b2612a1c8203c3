#!/usr/bin/env python3
"""bench/labs.sh's arithmetic. `pair GROUP I LAB.json C.txt` prints one line per
operation: name, pair, lab figure, C figure. `cal LAB.json` prints the lab's
calibration (other programs' CPU share, steal, iowait over its one second) and `host
CAL` their medians over the run. `table PAIRS` prints per operation the
medians of both sides, the median of the per-pair ratios and its 95% confidence
interval: the order statistics x(k), x(n+1-k) with k the largest rank such that
P(B < k) <= 2.5% for B ~ Binomial(n, 1/2) (distribution-free; as src/lab/stats.rs)."""
import json
import math
import sys

TARGET = (0.85, 1.15)


def metric(report, prefix, field="median"):
    m = next(m for m in report["metrics"] if m["name"].startswith(prefix))
    return m[field]


def pair(group, i, lab_path, c_path):
    r = json.load(open(lab_path))
    c = [float(x) for x in open(c_path).read().split()]
    rows = []
    if group == "lazy":
        rows.append(("first touch, ns per page", metric(r, "first touch"), c[0]))
    elif group == "cow":
        rows.append(("CoW write after fork, ns per page (64 MiB)", metric(r, "copy-on-write fault"), c[0]))
        fork = [metric(r, f"fork + exit + wait, parent {s} MiB") for s in (0, 16, 64)]
        rows.append(("fork+exit+wait, parent 0 MiB, us (base, not judged)", fork[0], c[1]))
        rows.append(("fork+exit+wait, parent 16 MiB net of 0 MiB, us", fork[1] - fork[0], c[2] - c[1]))
        rows.append(("fork+exit+wait, parent 64 MiB net of 0 MiB, us", fork[2] - fork[0], c[3] - c[1]))
    elif group == "ku":
        rows.append(("getppid, ns (perf bench syscall basic)", metric(r, "syscall(SYS_getppid)"), c[0]))
    elif group == "sched":
        rows.append(("pipe round trip, one CPU, us (perf bench sched pipe)", metric(r, "pipe round trip, same CPU"), c[0]))
    elif group == "sig":
        m = next(m for m in r["metrics"] if m["name"].startswith("kill(self) with a handler"))
        rows.append(("signal catch net of the send, ns", m["median"] - (m["baseline"] or 0), c[0]))
    for name, lab, cv in rows:
        print(f"{name}\t{i}\t{lab}\t{cv}")


def cal(lab_path):
    c = json.load(open(lab_path)).get("calibration") or {}
    print("\t".join(str(c.get(k)) for k in ("busy", "steal", "iowait")))


def host(path):
    cols = list(zip(*(line.split("\t") for line in open(path).read().splitlines())))
    def share(i):
        v = [float(x) for x in cols[i] if x != "None"] if cols else []
        return f"{median(v) * 100:.1f}%" if v else "?"
    print(f"calibrations of the run's {len(cols[0]) if cols else 0} labs, medians: other programs' "
          f"CPU {share(0)}, steal {share(1)}, iowait {share(2)}")


def median(xs):
    s = sorted(xs)
    n = len(s)
    return (s[(n - 1) // 2] + s[n // 2]) / 2


def median_ci(xs):
    s = sorted(xs)
    n = len(s)
    k = None
    for kk in range(1, n // 2 + 1):
        if sum(math.comb(n, j) for j in range(kk)) / 2**n <= 0.025:
            k = kk
        else:
            break
    return None if k is None else (s[k - 1], s[n - k])


def table(path):
    ops = {}
    for line in open(path):
        name, _, lab, c = line.rstrip("\n").split("\t")
        ops.setdefault(name, []).append((float(lab), float(c)))
    print(f"| operation | syslens | C | ratio (median of pairs) | 95% CI | in [{TARGET[0]}, {TARGET[1]}] |")
    print("|---|---|---|---|---|---|")
    for name, v in ops.items():
        ratios = [a / b for a, b in v if b > 0]
        ci = median_ci(ratios)
        judged = "not judged" if "not judged" in name else (
            "yes" if ci and TARGET[0] <= ci[0] and ci[1] <= TARGET[1] else "no")
        ci_text = f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "n/a (< 6 pairs)"
        print(f"| {name} | {median([a for a, _ in v]):.1f} | {median([b for _, b in v]):.1f} "
              f"| {median(ratios):.2f}x | {ci_text} | {judged} |")


if __name__ == "__main__":
    if sys.argv[1] == "pair":
        pair(*sys.argv[2:6])
    elif sys.argv[1] == "cal":
        cal(sys.argv[2])
    elif sys.argv[1] == "host":
        host(sys.argv[2])
    else:
        table(sys.argv[2])
