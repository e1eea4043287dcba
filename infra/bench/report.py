#!/usr/bin/env python3
"""Turns the text files of infra/bench/run into table.md, results.csv and plot.png.

Usage: report.py RESULTS_DIR
"""
import csv
import re
import sys
from pathlib import Path

SYSTEMS = [("floor", "Floor (raw UDP relay)"), ("accordo", "Accordo"), ("janus", "Janus 1.1.2")]
FIELDS = {
    "forwarded packets/s": "pps",
    "loss": "loss",
    "latency p50": "p50",
    "latency p99": "p99",
    "server CPU/packet": "us_per_packet",
    "server CPU": "cpu",
    "server peak RSS": "rss",
    "participants": "participants",
}
LOSS_BOUND = 0.5
P99_BOUND = 50.0
# Packets each room asks to be forwarded per second: 5 members × 4 receivers × 150 packets.
NOMINAL_PER_ROOM = 3000
# A run counts as "held" only if the whole load was offered: on a small machine the load
# generator, sharing the cores, may fail to send it all, and low loss would then mean nothing.
OFFERED_BOUND = 0.95


def parse(path):
    text = path.read_text()
    if "run failed" in text:
        # The driver gave up (media never settled): the worst possible run.
        return {"pps": 0.0, "loss": 100.0, "p99": float("inf"), "failed": True}
    row = {}
    for line in text.splitlines():
        for label, key in FIELDS.items():
            if line.startswith(label + " ") and key not in row:
                number = re.search(r"[-+]?\d[\d,]*\.?\d*", line[len(label):])
                if number:
                    row[key] = float(number.group(0).replace(",", ""))
    return row


def main():
    out = Path(sys.argv[1])
    rows = []
    all_runs = []
    for system, _ in SYSTEMS:
        # SYSTEM-N.txt, or SYSTEM-N.rI.txt for repetition I: the run with the median p99
        # (of an even number, the worse of the two middle ones) stands for N (all runs are in
        # runs.csv).
        runs = {}
        for path in out.glob(f"{system}-*.txt"):
            row = parse(path)
            if "pps" not in row:
                continue
            row["system"] = system
            row["rooms"] = int(path.stem.split("-")[1].split(".")[0])
            row["run"] = path.name
            runs.setdefault(row["rooms"], []).append(row)
        for rooms in sorted(runs):
            ranked = sorted(runs[rooms], key=lambda r: r.get("p99", 1e9))
            rows.append(ranked[len(ranked) // 2])
            all_runs.extend(ranked)
    columns = ["system", "rooms", "participants", "pps", "loss", "p50", "p99", "cpu",
               "us_per_packet", "rss", "run"]
    for name, table in [("results.csv", rows), ("runs.csv", all_runs)]:
        with open(out / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(table)

    lines = ["| system | rooms | forwarded packets/s | loss | latency p50 | latency p99 | "
             "server CPU (one core) | CPU µs / forwarded packet | peak RSS |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if row.get("failed"):
            lines.append(f"| {dict(SYSTEMS)[row['system']]} | {row['rooms']} | run failed "
                         "(media did not settle) | | | | | | |")
            continue
        lines.append(
            f"| {dict(SYSTEMS)[row['system']]} | {row['rooms']} | {row['pps']:,.0f} | "
            f"{row.get('loss', float('nan')):.3f} % | {row.get('p50', float('nan')):.2f} ms | "
            f"{row.get('p99', float('nan')):.2f} ms | {row.get('cpu', float('nan')):.1f} % | "
            f"{row.get('us_per_packet', float('nan')):.2f} | {row.get('rss', float('nan')):.1f} MiB |")
    lines.append("")
    held = {}
    for system, name in SYSTEMS:
        # Held up to N: every N of the sweep up to it held (a lucky run beyond a failed one
        # does not count).
        held[system] = 0
        missed = ""
        for r in sorted((r for r in rows if r["system"] == system), key=lambda r: r["rooms"]):
            why = [reason for reason, failed in [
                (f"loss {r.get('loss', 100):.3f} %", r.get("loss", 100) >= LOSS_BOUND),
                (f"p99 {r.get('p99', 1e9):.1f} ms", r.get("p99", 1e9) >= P99_BOUND),
                (f"{r['pps']:,.0f} packets/s offered",
                 r["pps"] < OFFERED_BOUND * NOMINAL_PER_ROOM * r["rooms"]),
            ] if failed]
            if why:
                missed = f" (at {r['rooms']}: " + ", ".join(why) + ")"
                break
            held[system] = r["rooms"]
        lines.append(f"- {name}: largest N held with loss < {LOSS_BOUND} %, p99 < "
                     f"{P99_BOUND:.0f} ms and at least {OFFERED_BOUND:.0%} of the nominal "
                     f"{NOMINAL_PER_ROOM:,} packets/s per room forwarded, at every N up to it: "
                     f"**{held[system]} rooms**{missed}")
    by = {(r["system"], r["rooms"]): r for r in rows}

    def ratio_line(label, over, under):
        """CPU per forwarded packet of system `over` divided by that of `under`, per N."""
        ratios = [f"{rooms}: {by[(over, rooms)]['us_per_packet'] / row['us_per_packet']:.2f}×"
                  for (system, rooms), row in sorted(by.items())
                  if system == under and row.get("us_per_packet")
                  and by.get((over, rooms), {}).get("us_per_packet")]
        if ratios:
            lines.append(f"- {label}, per N: " + ", ".join(ratios))

    ratio_line("Accordo's CPU per forwarded packet over the floor's", "accordo", "floor")
    ratio_line("Janus's CPU per forwarded packet over Accordo's", "janus", "accordo")
    if held.get("janus"):
        lines.append(f"- Rooms held, Accordo over Janus: {held['accordo'] / held['janus']:.2f}×")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: no plot (python3 -m pip install matplotlib)", file=sys.stderr)
        return
    figure, (cpu_axis, loss_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for system, name in SYSTEMS:
        points = sorted((r["rooms"], r) for r in rows if r["system"] == system)
        if not points:
            continue
        xs = [rooms for rooms, _ in points]
        cpu_axis.plot(xs, [r.get("us_per_packet", float("nan")) for _, r in points], marker="o", label=name)
        loss_axis.plot(xs, [float("nan") if r.get("failed") else r.get("loss", float("nan"))
                                for _, r in points], marker="o", label=name)
    cpu_axis.set_xlabel("rooms of 5 (N)")
    cpu_axis.set_ylabel("server CPU µs per forwarded packet")
    cpu_axis.set_ylim(bottom=0)
    cpu_axis.grid(alpha=0.3)
    cpu_axis.legend()
    loss_axis.set_xlabel("rooms of 5 (N)")
    loss_axis.set_ylabel("loss (%)")
    loss_axis.axhline(LOSS_BOUND, color="grey", linestyle="--", linewidth=1)
    loss_axis.set_ylim(bottom=0)
    loss_axis.grid(alpha=0.3)
    machine = (out / "machine.txt").read_text().splitlines() if (out / "machine.txt").exists() else []
    figure.suptitle("Accordo, Janus and the raw-UDP floor — " + "; ".join(machine[:3]), fontsize=9)
    figure.tight_layout()
    figure.savefig(out / "plot.png", dpi=110)


if __name__ == "__main__":
    main()
