"""Drift across the history: is a test x model's latest run worse (or better) than its earlier
runs? Fisher's exact one-sided test against the pooled earlier runs, Holm across the series;
and the lines `python -m pytest_llmeval history` prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pytest_llmeval.report.history import RunInfo, Track
from pytest_llmeval.report.schema import HistoryPoint
from pytest_llmeval.verdict.stats import drop_p_value, holm

WINDOW = 5
LAST = 10  # runs the history command shows
_TESTED = ("passed", "failed")  # verdicts whose counts are tested


@dataclass(frozen=True)
class Drift:
    """A series' latest run against up to `window` earlier runs pooled; `reason` says why it
    was not tested (then the p-values are 1)."""

    track: Track
    reason: str | None
    before_passed: int = 0
    before_valid: int = 0
    before_runs: int = 0
    prompt_changed: bool = False
    p_worse: float = 1.0
    p_better: float = 1.0
    holm_worse: float = 1.0
    holm_better: float = 1.0
    alpha: float = 0.05

    @property
    def latest(self) -> HistoryPoint:
        return self.track.series["points"][-1]

    @property
    def direction(self) -> str | None:
        """`worse` or `better` when significant after Holm's adjustment, else None."""
        if self.reason is None and self.holm_worse <= self.alpha:
            return "worse"
        if self.reason is None and self.holm_better <= self.alpha:
            return "better"
        return None


def drifts(
    tracks: Sequence[Track],
    run_ids: Sequence[int],
    window: int = WINDOW,
    alpha: float | None = None,
) -> list[Drift]:
    """One Drift per track, in order: the series in the latest of `run_ids` (the history's runs,
    oldest first) against their points in the `window` runs before it. `alpha` is the level of
    each one-sided test (default: 1 - the marker's confidence); each direction's p-values are
    Holm-adjusted across the series tested."""
    latest, before = run_ids[-1], set(run_ids[-1 - window : -1])
    found = [_pooled(track, latest, before, alpha) for track in tracks]
    tested = [i for i, drift in enumerate(found) if drift.reason is None]
    worse = holm([found[i].p_worse for i in tested])
    better = holm([found[i].p_better for i in tested])
    for i, adjusted_worse, adjusted_better in zip(tested, worse, better, strict=True):
        found[i] = replace(found[i], holm_worse=adjusted_worse, holm_better=adjusted_better)
    return found


def _pooled(track: Track, latest_run: int, window: set[int], alpha: float | None) -> Drift:
    points = track.series["points"]
    last = points[-1]
    level = 1.0 - track.confidence if alpha is None else alpha
    if last["run"] != latest_run:
        return Drift(track, "not in the latest run", alpha=level)
    if track.gated:
        return Drift(track, "a gated suite's case (the suite is the unit)", alpha=level)
    if last["verdict"] not in _TESTED:
        return Drift(track, f"latest verdict {last['verdict']}", alpha=level)
    inside = [i for i, p in enumerate(points[:-1]) if p["run"] in window]
    if not inside:
        return Drift(track, "no earlier run in the window", alpha=level)
    before_passed = sum(points[i]["passed"] for i in inside)
    before_valid = sum(points[i]["valid"] for i in inside)
    if before_valid == 0 or last["valid"] == 0:
        return Drift(track, "no valid samples to compare", alpha=level)
    prompt = track.prompts[-1]
    before = [track.prompts[i] for i in inside]
    return Drift(
        track,
        None,
        before_passed=before_passed,
        before_valid=before_valid,
        before_runs=len(inside),
        prompt_changed=prompt is not None and any(p not in (None, prompt) for p in before),
        p_worse=drop_p_value(before_passed, before_valid, last["passed"], last["valid"]),
        p_better=drop_p_value(last["passed"], last["valid"], before_passed, before_valid),
        alpha=level,
    )


def history_lines(runs: Sequence[RunInfo], found: Sequence[Drift], window: int) -> list[str]:
    """The `history` command's text: the runs shown, then per series its rate in each of them
    (`*`: the prompt changed since the series' previous run), its latest interval and drift,
    then a summary line."""
    lines = ["runs, oldest first (+: uncommitted changes):"]
    for run in runs:
        sha = "-" if run.commit is None else run.commit[:8] + ("+" if run.dirty else "")
        where = " ".join(x for x in (run.branch, run.source) if x)
        lines.append(f"  #{run.id:<4} {run.created_at}  {sha:9} {where}")
    width = max((len(_label(d)) for d in found), default=0)
    header = " ".join(f"{'#' + str(run.id):>4} " for run in runs)
    lines.append(f"{'':{width}}  {header}")
    for drift in found:
        lines.append(f"{_label(drift):{width}}  {_cells(drift.track, runs)}  {_verdict(drift)}")
    if any("*" in line for line in lines[len(runs) + 2 :]):
        lines.append("* the prompt changed since the series' previous run")
    lines.append(summary(found, runs[-1].id if runs else None, window))
    return lines


def summary(found: Sequence[Drift], latest_run: int | None, window: int) -> str:
    """`llmeval history: 1 worse, 0 better, 4 without drift, 2 not tested ...`."""
    tested = [d for d in found if d.reason is None]
    worse = sum(d.direction == "worse" for d in tested)
    better = sum(d.direction == "better" for d in tested)
    alphas = sorted({f"{d.alpha:.3g}" for d in tested})
    level = alphas[0] if len(alphas) == 1 else "per marker (1 - confidence)"
    return (
        f"llmeval history: {worse} worse, {better} better, {len(tested) - worse - better} "
        f"without drift, {len(found) - len(tested)} not tested; latest run "
        f"{'-' if latest_run is None else f'#{latest_run}'} against up to {window} earlier runs "
        f"pooled, one-sided Fisher exact tests, Holm across {len(tested)} series, alpha {level}"
    )


def _label(drift: Drift) -> str:
    return f"{drift.track.series['test']} [{drift.track.series['model']}]"


def _cells(track: Track, runs: Sequence[RunInfo]) -> str:
    points = {p["run"]: (i, p) for i, p in enumerate(track.series["points"])}
    cells = []
    for run in runs:
        if run.id not in points:
            cells.append(f"{'-':>4} ")
            continue
        i, point = points[run.id]
        rate = "-" if point["rate"] is None else f"{point['rate']:.0%}"
        before = track.prompts[i - 1] if i else None
        changed = before is not None and track.prompts[i] not in (None, before)
        cells.append(f"{rate:>4}{'*' if changed else ' '}")
    return " ".join(cells)


def _verdict(drift: Drift) -> str:
    last = drift.latest
    lo, hi = last["ci"]
    text = (
        f"latest {last['passed']}/{last['valid']}, {drift.track.confidence:.0%} CI "
        f"{lo:.0%}-{hi:.0%}: "
    )
    if drift.reason is not None:
        return text + f"not tested ({drift.reason})"
    worse = drift.p_worse <= drift.p_better
    p, adjusted = (
        (drift.p_worse, drift.holm_worse) if worse else (drift.p_better, drift.holm_better)
    )
    flag = {"worse": "WORSE than", "better": "BETTER than", None: "no drift from"}
    text += (
        f"{flag[drift.direction]} {drift.before_passed}/{drift.before_valid} in "
        f"{drift.before_runs} earlier runs, p={p:.3g} (Holm {adjusted:.3g})"
    )
    return text + (", prompt changed" if drift.prompt_changed else "")
