"""Bottleneck-watch verdicts on recorded runs: false stops vs epochs saved, per detector setting.

No training: the runs are the JSON files of ``watch_runs.py`` (quick preset, 500 epochs, the full
watch history every 5 epochs).  Each detector setting is replayed on every run at the CLI's default
cadence (``--watch-every 10``; ``--every``), exactly as ``train --watch --early-stop`` would have
seen it.  Ground truth is the run's own outcome over the whole schedule: *stuck* when its best PSNR
stays under the 1 dB line, else it *escaped* (crossed the line after epoch 50) or *fitted*.

* false stop: ``--early-stop`` would have stopped a run that escaped or fitted (must be 0);
* stuck stopped early: stuck runs stopped within the first 20 % of their epochs;
* epochs saved: the epochs ``--early-stop`` spares on the stuck runs (sum, and share of theirs);
* uncertain: runs whose verdict changed more than twice.

The settings are compared on the tuning runs (``--tuning``; :func:`choose`: no false stop, every stuck
run stopped within 20 % of its epochs, then the setting deepest inside that region of the grid); the
held-out runs (all the others, recorded after the choice) then check the chosen one::

    python benchmarks/bench_watch_verdicts.py --runs /path/to/runs            # grid, then the chosen setting
    python benchmarks/bench_watch_verdicts.py --runs DIR --setting edge_growth=0.1 gain_growth=inf --per-run
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

from spectral_probe.bottleneck import BOTTLENECK, INDICATORS, BottleneckDetector, Thresholds

#: the runs the setting was chosen on (every other run is held out): the six clips' first and second
#: crops at seed 0 and the first synthetic targets (recorded first: a first choice made on the clips
#: alone stopped syn-broadband-0.08_siren_s0, which escaped at epoch 311, and was revised with them);
#: held out: the third crops, seed 1, the low-pass targets, SIREN^2 on the synthetic targets
TUNING = ["*@0_*_s0", "*@65536_*_s0", "syn-broadband*_siren_s0", "syn-broadband*_finer_s0", "syn-high_siren_s0",
          "syn-high_finer_s0", "syn-S1_*", "syn-S2_siren_s0"]
#: the comparison grid: edge_growth inf is the detector before the widening test
GRID = {"edge_growth": [0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.4, math.inf],
        "gain_growth": [0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, math.inf],
        "trend_window": [20, 40, 60], "patience": [3]}
#: named settings of the trade-off table (all runs): before issue 21, the first choice (made on the
#: clips alone), more aggressive and more conservative neighbours of the chosen one
TRADEOFF = {
    "level cuts only (before issue 21)": dict(edge_growth=math.inf, gain_growth=math.inf, trend_window=0),
    "first choice (edge 7.5 %, gain 0.07 dB)": dict(edge_growth=0.075, gain_growth=0.07),
    "gain 0.003 dB (more aggressive)": dict(gain_growth=0.003),
    "chosen (edge 10 %, gain 0.0003 dB)": dict(edge_growth=0.1, gain_growth=0.0003),
    "gain 0.0001 dB, edge 5 % (more conservative)": dict(edge_growth=0.05, gain_growth=0.0001),
}
EARLY = 0.2          # "early" = within this share of the run's epochs
LATE_ESCAPE = 50     # a run that crosses the line after this epoch escaped (it looked stuck first)


def load_runs(folder: str) -> list[dict]:
    rows = []
    for path in sorted(Path(folder).glob("*.json")):
        row = json.loads(path.read_text())
        row["name"] = path.stem
        rows.append(row)
    if not rows:
        raise SystemExit(f"no run files (*.json) in {folder}; record them with benchmarks/watch_runs.py")
    return rows


def truth(row: dict) -> tuple[str, int | None]:
    """``("stuck" | "escaped" | "fitted", first epoch at or over 1 dB)``."""
    gains = [p - row["zero_psnr"] for p in row["psnr"]]
    first = next((e for e, g in enumerate(gains) if g >= 1.0), None)
    if first is None:
        return "stuck", None
    return ("escaped" if first > LATE_ESCAPE else "fitted"), first


def replay(row: dict, thresholds: Thresholds, every: int = 10) -> dict:
    """The detector over a run's recorded checks at ``every`` epochs: stop epoch, changes, final verdict."""
    h = row["history"]
    if every % row["every"]:
        raise ValueError(f"--every must be a multiple of the recorded cadence {row['every']}")
    det = BottleneckDetector(thresholds, horizon=row["epochs"])
    stop = None
    for i, step in enumerate(h["step"]):
        if step % every:
            continue
        v = det.update(step, {k: h[k][i] for k in INDICATORS})
        if v.state == BOTTLENECK and stop is None:
            stop = step
    v = det.verdict
    return {"stop": stop, "changes": v.changes, "final": v.state, "story": v.story_text(),
            "first_risk": next((e for e, s in v.story if s == "at risk"), None)}


def score(rows: list[dict], thresholds: Thresholds, every: int = 10) -> dict:
    """Totals of one setting over ``rows``."""
    out = {"runs": len(rows), "stuck": 0, "stopped": 0, "stopped_early": 0, "false_stops": 0, "saved": 0,
           "stuck_epochs": 0, "uncertain": 0, "final_wrong": 0, "false": []}
    for row in rows:
        kind, _ = truth(row)
        r = replay(row, thresholds, every)
        out["uncertain"] += r["changes"] > 2
        if kind == "stuck":
            out["stuck"] += 1
            out["stuck_epochs"] += row["epochs"]
            out["final_wrong"] += r["final"] != BOTTLENECK
            if r["stop"] is not None:
                out["stopped"] += 1
                out["stopped_early"] += r["stop"] <= EARLY * row["epochs"]
                out["saved"] += row["epochs"] - (r["stop"] + 1)
        else:
            out["final_wrong"] += r["final"] != "fitting"
            if r["stop"] is not None:
                out["false_stops"] += 1
                out["false"].append(f"{row['name']}@{r['stop']}")
    return out


def _fmt_setting(t: Thresholds) -> str:
    if math.isinf(t.edge_growth) and math.isinf(t.gain_growth):
        return f"no trend tests, patience {t.patience}"
    return f"edge_growth {t.edge_growth:g}, gain_growth {t.gain_growth:g}, window {t.trend_window}, patience {t.patience}"


def _line(name: str, s: dict) -> str:
    share = 100 * s["saved"] / s["stuck_epochs"] if s["stuck_epochs"] else 0.0
    return (f"| {name} | {s['runs']} | {s['stuck']} | {s['false_stops']} | {s['stopped_early']} / {s['stuck']} | "
            f"{s['stopped']} / {s['stuck']} | {s['saved']} ({share:.0f} %) | {s['uncertain']} | {s['final_wrong']} | "
            f"{', '.join(s['false']) or '-'} |")


HEADER = ("| setting | runs | stuck | false stops | stuck stopped in 20 % | stuck stopped | epochs saved | "
          "uncertain | final verdict wrong | false stops at |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def grid_settings() -> list[tuple[tuple[int, ...], Thresholds]]:
    """Every grid point as ``(index per axis, Thresholds)``."""
    axes = [range(len(v)) for v in GRID.values()]
    return [(idx, Thresholds(**{k: GRID[k][i] for k, i in zip(GRID, idx)})) for idx in itertools.product(*axes)]


def choose(tuning: list[dict], every: int) -> Thresholds:
    """The setting deepest inside the best region of the grid, at the middle window.

    Best: no false stop (a hard rule), and among those the most stuck runs stopped within the first
    20 % of their epochs.  At the middle ``trend_window`` of the grid, each best ``(edge_growth,
    gain_growth)`` point's margin is its Chebyshev distance (grid steps) to the nearest point that is not
    best; the largest margin wins, then the most epochs saved, then the smaller thresholds (more runs
    left ``at risk``: a false stop costs more than a late one).
    """
    window = GRID["trend_window"][len(GRID["trend_window"]) // 2]
    plane = {idx[:2]: (t, score(tuning, t, every)) for idx, t in grid_settings() if t.trend_window == window}
    safe = [s["stopped_early"] for _, s in plane.values() if s["false_stops"] == 0]
    if not safe:
        raise SystemExit(f"every setting at window {window} stops a run that escaped")
    ok = {ij for ij, (_, s) in plane.items() if s["false_stops"] == 0 and s["stopped_early"] == max(safe)}
    bad = set(plane) - ok

    def margin(ij):
        return min((max(abs(ij[0] - b[0]), abs(ij[1] - b[1])) for b in bad), default=len(GRID["edge_growth"]))

    best = max(ok, key=lambda ij: (margin(ij), plane[ij][1]["saved"], -ij[0], -ij[1]))
    return plane[best][0]


def admissible_map(tuning: list[dict], every: int) -> None:
    """One table per window: FS (a false stop) or the stuck runs stopped within 20 % of their epochs."""
    cols = GRID["gain_growth"]
    for window in GRID["trend_window"]:
        print(f"\nwindow {window}: rows edge_growth, columns gain_growth")
        print("| edge \\ gain | " + " | ".join(f"{g:g}" for g in cols) + " |\n|" + " --- |" * (len(cols) + 1))
        for e in GRID["edge_growth"]:
            cells = []
            for g in cols:
                s = score(tuning, Thresholds(edge_growth=e, gain_growth=g, trend_window=window), every)
                cells.append(f"FS {s['false_stops']}" if s["false_stops"] else f"{s['stopped_early']}/{s['stuck']}")
            print(f"| {e:g} | " + " | ".join(cells) + " |")


def per_run(rows: list[dict], t: Thresholds, every: int) -> None:
    print("\n| run | best gain dB | outcome (1 dB at) | stop at | at risk from | changes | final | story |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        kind, first = truth(row)
        r = replay(row, t, every)
        print(f"| {row['name']} | {row['best_gain']:.2f} | {kind}{f' ({first})' if first is not None else ''} | "
              f"{r['stop'] if r['stop'] is not None else '-'} | "
              f"{r['first_risk'] if r['first_risk'] is not None else '-'} | {r['changes']} | {r['final']} | "
              f"{r['story'] or '-'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="Folder of watch_runs.py JSON files.")
    parser.add_argument("--tuning", nargs="*", default=TUNING,
                        help="fnmatch patterns of the run names the setting is chosen on; the rest is held out.")
    parser.add_argument("--every", type=int, default=10, help="Watch cadence replayed (multiple of the record's).")
    parser.add_argument("--setting", nargs="*", default=None, metavar="KEY=VALUE",
                        help="Report this Thresholds setting instead of choosing one on the grid.")
    parser.add_argument("--per-run", action="store_true", help="One row per run for the chosen setting.")
    args = parser.parse_args()
    rows = load_runs(args.runs)
    tuning = [r for r in rows if any(fnmatch.fnmatch(r["name"], p) for p in args.tuning)]
    held = [r for r in rows if r not in tuning]
    kinds = {k: sum(truth(r)[0] == k for r in rows) for k in ("stuck", "escaped", "fitted")}
    print(f"{len(rows)} runs ({kinds['stuck']} stuck, {kinds['escaped']} escaped after epoch {LATE_ESCAPE}, "
          f"{kinds['fitted']} fitted); tuning {len(tuning)} ({', '.join(args.tuning)}), held out {len(held)}; "
          f"watch every {args.every} epochs")
    if args.setting is not None:
        kw = {k: (float(v) if "." in v or v == "inf" else int(v)) for k, v in (a.split("=", 1) for a in args.setting)}
        chosen = replace(Thresholds(), **kw)
    else:
        print("\ntuning runs, the grid (FS n: n false stops; else stuck runs stopped within 20 % of their "
              "epochs / stuck runs):")
        admissible_map(tuning, args.every)
        chosen = choose(tuning, args.every)
    print(f"\nchosen: {_fmt_setting(chosen)} (default Thresholds(): {_fmt_setting(Thresholds())})\n" + HEADER)
    for name, subset in (("tuning", tuning), ("held out", held), ("all", rows)):
        if subset:
            print(_line(f"{name}: {_fmt_setting(chosen)}", score(subset, chosen, args.every)))
    print("\ntrade-off on all runs:\n" + HEADER)
    for name, kw in TRADEOFF.items():
        print(_line(name, score(rows, replace(Thresholds(), **kw), args.every)))
    if args.per_run:
        per_run(rows, chosen, args.every)


if __name__ == "__main__":
    main()
