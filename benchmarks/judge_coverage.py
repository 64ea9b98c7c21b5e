"""Coverage of the judged-verdict correction, measured end to end with a scripted judge.

Question: when an imperfect judge grades the samples, does `corrected_verdict` keep its promise
(the interval for the model's true pass rate p covers it at least 95% of the time; `not_worse`
fails a model with p = pass_rate at most 5% of the time), what does it cost in width and power,
and how wrong is the plain Clopper-Pearson interval on the judged rate?

End to end ("e2e"), one run: a FakeGateway on 127.0.0.1 serves models under test that answer
"GOOD ..." with probability p (drawn per request from a seeded RNG keyed by the prompt) or
"BAD ...", and three ScriptedJudge models with known sensitivity Se and specificity Sp (truth:
the output starts with "GOOD"). Through the real `Judge` (real `LLM`, `ClientPool`, openai
client, HTTP): `calibrate(runs=1)` on a labelled set of M items (M/2 truly pass) gives the
judge's counts, then N samples of the model are graded, and `corrected_verdict(passes, N,
counts, pass_rate, 0.95, mode)` decides. A run uses each judge on each model; the N = 30
verdict uses the first 30 of the N = 100 samples and every (p, N) row shares the run's
calibrations (common random numbers: rows are correlated, each row's estimate is unbiased).
Requests run on 8 threads within a run; 2 processes run runs side by side, each with its own
gateway. Every prompt is unique, so a run's counts depend only on its seed, not on timing.

Exact: the same statistics of the same functions summed over every outcome (k, tp, tn) of
Bin(N, q) x Bin(M/2, Se) x Bin(M/2, Sp), q = p*Se + (1-p)*(1-Sp), terms under 1e-10 of any
one binomial dropped (the lost mass is printed). It is what the e2e rates estimate; "+-" is
the standard error of an e2e rate over R runs, sqrt(P(1-P)/R) with P the exact rate (of a
width: the sample sd / sqrt(R)). Each e2e rate is compared with its exact value by an exact
two-sided binomial test (rare events make z-scores misleading), each width by a z-score.

Statistics (confidence 0.95): two-sided coverage of the `observed` interval (an "error"
verdict's interval is [0, 1] and covers); not_worse false-fail rate at pass_rate = p (the same
event as the one-sided upper bound missing p, so one-sided coverage = 1 - false-fail); power,
not_worse failing at pass_rate = p + 0.2; error rate (judge not informative enough: Se_lo + Sp_lo
<= 1) in observed and not_worse mode; mean width of the observed interval over runs with a
verdict. Uncorrected: the two-sided 95% Clopper-Pearson interval on the judged rate and the
plain not_worse verdict (exact binomial test) on the judged passes, as if the judge were right.
Run: python benchmarks/judge_coverage.py [runs]
"""

from __future__ import annotations

import functools
import math
import random
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import product

from pytest_llmeval.calls.client import LLM, ClientPool
from pytest_llmeval.config import ModelSettings, Settings
from pytest_llmeval.judging.calibration import Labelled, calibrate
from pytest_llmeval.judging.judge import Judge
from pytest_llmeval.judging.prompts import JudgePrompts
from pytest_llmeval.testing import FakeGateway, RecordedRequest, ScriptedJudge
from pytest_llmeval.verdict.judged import Calibration, corrected_verdict
from pytest_llmeval.verdict.stats import (
    binom_cdf,
    binom_sf,
    clopper_pearson,
    final_verdict,
    thresholds,
)

CONFIDENCE = 0.95
JUDGES = ((0.95, 0.95), (0.9, 0.8), (0.8, 0.9))
TRUE_P = (0.5, 0.7, 0.9)
CALIBRATION = (60, 200)
SAMPLES = (30, 100)
DROP = 0.2
RUNS = 100
THREADS = 8
PROCESSES = 2
CHUNK = 4
RUBRIC = "The answer is good."
_TINY = 1e-10
_PROMPT = re.compile(r"run (\d+) item (\d+)")

Stats = Mapping[str, float | None]
CorrectedKey = tuple[float, float, float, int, int]  # Se, Sp, p, M, N
PlainKey = tuple[float, float, float, int]  # Se, Sp, p, N


@dataclass(frozen=True)
class ModelUnderTest:
    """Answers "GOOD ..." with probability p, drawn from an RNG keyed by the prompt."""

    p: float

    def __call__(self, request: RecordedRequest) -> str:
        found = _PROMPT.search(request.prompt)
        assert found is not None, request.prompt
        run, item = found.groups()
        good = random.Random(f"{self.p}:{run}:{item}").random() < self.p
        return f"{'GOOD' if good else 'BAD'} answer {self.p} {run}/{item}"


def truly_good(output: str, rubric: str) -> bool:
    return output.startswith("GOOD")


def judge_name(se: float, sp: float) -> str:
    return f"judge-{se}-{sp}"


def judged_rate(p: float, se: float, sp: float) -> float:
    return p * se + (1 - p) * (1 - sp)


def pass_rate_above(p: float) -> float | None:
    """The pass_rate at which a model of true rate p is DROP worse, None above 1."""
    rate = round(p + DROP, 10)
    return rate if rate <= 1.0 else None


def corrected(k: int, n: int, counts: Calibration, p: float) -> Stats:
    """One run's statistics of the corrected verdicts, for true rate p."""
    two = corrected_verdict(k, n, counts, p, CONFIDENCE, "observed")
    one = corrected_verdict(k, n, counts, p, CONFIDENCE, "not_worse")
    lower, upper = two.interval
    above = pass_rate_above(p)
    worse = (
        None if above is None else corrected_verdict(k, n, counts, above, CONFIDENCE, "not_worse")
    )
    return {
        "error2": two.verdict == "error",
        "error1": one.verdict == "error",
        "cover2": lower <= p <= upper,
        "false_fail": one.verdict == "failed",
        "power": None if worse is None else worse.verdict == "failed",
        "width": None if two.verdict == "error" else upper - lower,
    }


def plain_fails(k: int, n: int, pass_rate: float) -> bool:
    table = thresholds(n, pass_rate, CONFIDENCE, "not_worse")
    return final_verdict(k, n, n, table) == "failed"


def plain(k: int, n: int, p: float) -> Stats:
    """The same, taking the judged passes at face value."""
    lower, upper = clopper_pearson(k, n, CONFIDENCE)
    above = pass_rate_above(p)
    return {
        "cover2": lower <= p <= upper,
        "false_fail": plain_fails(k, n, p),
        "power": None if above is None else plain_fails(k, n, above),
        "width": upper - lower,
    }


@dataclass
class Tally:
    """Weighted sums per statistic (None values are left out of that statistic)."""

    sums: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stats: Stats, weight: float = 1.0) -> None:
        for name, x in stats.items():
            if x is not None:
                s = self.sums.setdefault(name, [0.0, 0.0, 0.0])
                s[0] += weight
                s[1] += weight * float(x)
                s[2] += weight * float(x) ** 2

    def mean(self, name: str) -> float | None:
        s = self.sums.get(name)
        return s[1] / s[0] if s and s[0] else None

    def count(self, name: str) -> float:
        s = self.sums.get(name)
        return s[0] if s else 0.0

    def sd(self, name: str) -> float:
        s = self.sums[name]
        return math.sqrt(max(0.0, s[2] / s[0] - (s[1] / s[0]) ** 2) * s[0] / max(1.0, s[0] - 1))


def support(n: int, x: float) -> list[tuple[int, float]]:
    """Bin(n, x) probabilities of at least _TINY."""
    pmf = ((i, math.comb(n, i) * x**i * (1 - x) ** (n - i)) for i in range(n + 1))
    return [(i, w) for i, w in pmf if w >= _TINY]


def exact_corrected(se: float, sp: float, p: float, m: int, n: int) -> tuple[Tally, float]:
    """Expected statistics over every outcome, and the probability mass left out."""
    half, tally, mass = m // 2, Tally(), 0.0
    samples = support(n, judged_rate(p, se, sp))
    for (tp, w_tp), (tn, w_tn) in product(support(half, se), support(half, sp)):
        counts = Calibration(tp, half - tp, tn, half - tn)
        for k, w_k in samples:
            weight = w_tp * w_tn * w_k
            tally.add(corrected(k, n, counts, p), weight)
            mass += weight
    return tally, 1.0 - mass


def exact_plain(se: float, sp: float, p: float, n: int) -> tuple[Tally, float]:
    tally, mass = Tally(), 0.0
    for k, weight in support(n, judged_rate(p, se, sp)):
        tally.add(plain(k, n, p), weight)
        mass += weight
    return tally, 1.0 - mass


Calibrations = dict[tuple[float, float, int], Calibration]  # by Se, Sp, M
Passes = dict[tuple[float, float, float, int], int]  # judged passes by Se, Sp, p, N


@dataclass(frozen=True)
class RunCounts:
    """What one e2e run measured, and the requests it sent."""

    calibrations: Calibrations
    passes: Passes
    requests: int


def calibration_set(seed: int, m: int) -> list[Labelled]:
    """M labelled outputs of their own, the first half truly good."""
    items = []
    for i in range(m):
        good = i < m // 2
        output = f"{'GOOD' if good else 'BAD'} labelled {seed}/{m}/{i}"
        items.append(Labelled(f"{seed}/{m}/{i}", RUBRIC, output, good))
    return items


def run_chunk(seeds: list[int]) -> list[RunCounts]:
    """E2E runs, one per seed, against a gateway of this process."""
    with FakeGateway() as gateway, ThreadPoolExecutor(THREADS) as threads:
        pool = ClientPool(Settings(retries=0, timeout=30.0, concurrency=THREADS), {})
        models = {}
        for p in TRUE_P:
            gateway.add_model(f"model-{p}", ModelUnderTest(p))
            models[p] = LLM(
                ModelSettings(name=f"model-{p}", model_id=f"model-{p}"), pool, gateway.base_url
            )
        judges = {}
        for index, (se, sp) in enumerate(JUDGES):
            name = judge_name(se, sp)
            gateway.add_model(
                name, ScriptedJudge(truly_good, sensitivity=se, specificity=sp, seed=index)
            )
            llm = LLM(ModelSettings(name=name, model_id=name), pool, gateway.base_url, role="judge")
            judges[(se, sp)] = Judge(llm, JudgePrompts())
        results = []
        for seed in seeds:
            before = gateway.request_count()
            calibrations, passes = one_run(seed, models, judges, threads)
            results.append(RunCounts(calibrations, passes, gateway.request_count() - before))
        return results


def one_run(
    seed: int,
    models: Mapping[float, LLM],
    judges: Mapping[tuple[float, float], Judge],
    threads: ThreadPoolExecutor,
) -> tuple[Calibrations, Passes]:
    """Calibrate each judge on fresh labelled sets, then grade fresh samples of each model."""
    calibrations: Calibrations = {}
    for (se, sp), judge in judges.items():
        for m in CALIBRATION:
            [figures] = calibrate(
                functools.partial(grade_labelled, judge),
                calibration_set(seed, m),
                judge=judge.name,
                judge_model_id=judge.llm.model.model_id,
                fingerprint=judge.fingerprint,
                set_name=f"labelled-{seed}-{m}",
                runs=1,
                workers=THREADS,
            )
            assert figures.errors == 0
            calibrations[(se, sp, m)] = figures.counts
    passes: Passes = {}
    for p, model in models.items():
        prompts = [f"run {seed} item {i}" for i in range(max(SAMPLES))]
        outputs = list(threads.map(functools.partial(answer, model), prompts))
        for (se, sp), judge in judges.items():
            graded = list(threads.map(functools.partial(grade, judge), outputs))
            for n in SAMPLES:
                passes[(se, sp, p, n)] = sum(graded[:n])
    return calibrations, passes


def answer(model: LLM, prompt: str) -> str:
    return model.chat(prompt).text


def grade(judge: Judge, output: str) -> bool:
    return judge(output, RUBRIC).passed


def grade_labelled(judge: Judge, item: Labelled) -> bool:
    return judge(item.output, item.rubric).passed


def run_e2e(runs: int) -> tuple[list[RunCounts], float]:
    chunks = [list(range(start, min(start + CHUNK, runs))) for start in range(0, runs, CHUNK)]
    started, done = time.perf_counter(), []
    with ProcessPoolExecutor(PROCESSES) as processes:
        for counts in processes.map(run_chunk, chunks):
            done.extend(counts)
            elapsed = time.perf_counter() - started
            print(f"  e2e {len(done)}/{runs} runs, {elapsed:.0f} s", file=sys.stderr, flush=True)
    return done, time.perf_counter() - started


def corrected_keys() -> Iterator[CorrectedKey]:
    for (se, sp), p, m, n in product(JUDGES, TRUE_P, CALIBRATION, SAMPLES):
        yield se, sp, p, m, n


def plain_keys() -> Iterator[PlainKey]:
    for (se, sp), p, n in product(JUDGES, TRUE_P, SAMPLES):
        yield se, sp, p, n


@dataclass
class Comparison:
    """Per-cell e2e value with its standard error next to the exact value. Collects, per rate,
    the exact two-sided binomial p-value of the e2e count (rare events make z misleading) and,
    per width, z."""

    tails: list[tuple[float, str]] = field(default_factory=list)
    z: list[tuple[float, str]] = field(default_factory=list)

    def rate(self, e2e: Tally, exact: Tally, name: str, where: str) -> str:
        value, truth = e2e.mean(name), exact.mean(name)
        if value is None or truth is None:
            return f"{'-':>17}"
        runs = round(e2e.count(name))
        hits = round(value * runs)
        tail = min(1.0, 2 * binom_cdf(hits, runs, truth), 2 * binom_sf(hits, runs, truth))
        self.tails.append((tail, f"{name} {where}: {hits}/{runs}, exact {truth:.4f}"))
        se = math.sqrt(truth * (1 - truth) / runs)
        return f"{100 * value:5.1f}+-{100 * se:3.1f} {100 * truth:6.2f}"

    def width(self, e2e: Tally, exact: Tally, where: str) -> str:
        value, truth = e2e.mean("width"), exact.mean("width")
        if value is None or truth is None:
            return f"{'-':>17}"
        se = e2e.sd("width") / math.sqrt(e2e.count("width"))
        if se > 0:
            self.z.append(((value - truth) / se, f"width {where}"))
        return f"{value:.3f}+-{se:.3f} {truth:.3f}"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else RUNS
    started = time.perf_counter()
    exact_c: dict[CorrectedKey, Tally] = {}
    exact_p: dict[PlainKey, Tally] = {}
    lost = 0.0
    for key in corrected_keys():
        exact_c[key], left = exact_corrected(*key)
        lost = max(lost, left)
    for pkey in plain_keys():
        exact_p[pkey], left = exact_plain(*pkey)
        lost = max(lost, left)
    exact_s = time.perf_counter() - started

    counts, e2e_s = run_e2e(runs)
    e2e_c = {key: Tally() for key in corrected_keys()}
    e2e_p = {key: Tally() for key in plain_keys()}
    for run in counts:
        for (se, sp, p, m, n), tally in e2e_c.items():
            tally.add(corrected(run.passes[(se, sp, p, n)], n, run.calibrations[(se, sp, m)], p))
        for (se, sp, p, n), tally in e2e_p.items():
            tally.add(plain(run.passes[(se, sp, p, n)], n, p))
    requests = sum(run.requests for run in counts)

    print(f"Judged verdicts at confidence {CONFIDENCE}: corrected (Rogan-Gladen, union-bound")
    print("Clopper-Pearson box) against the plain Clopper-Pearson interval on the judged rate.")
    print(
        f"e2e: {runs} runs per row through the fake gateway ({requests} requests, "
        f"{requests / e2e_s:.0f}/s, {e2e_s:.0f} s);"
    )
    print(f"exact: outcome sums, no sampling error ({exact_s:.0f} s, mass left out <= {lost:.1e}).")
    print("Each cell: e2e +- its standard error, then exact. Rates in %. q = judged rate.")
    print("false-fail: not_worse fails at pass_rate = p (= 1 - one-sided coverage);")
    print(f"power: not_worse fails at pass_rate = p + {DROP};")
    print("err: 'error' verdicts in observed (2s) and not_worse (1s) mode;")
    print("width: the observed-mode interval (plain: the 95% one), mean over runs with a verdict.")
    compare = Comparison()
    print("\nCorrected verdicts")
    print(
        f"{'Se':>4} {'Sp':>4} {'p':>4} {'q':>5} {'M':>4} {'N':>4} | {'err 2s':>17} | "
        f"{'err 1s':>17} | {'2-sided coverage':>17} | {'false-fail':>17} | {'power':>17} | "
        f"{'width':>17}"
    )
    for key in corrected_keys():
        se, sp, p, m, n = key
        where = f"Se={se} Sp={sp} p={p} M={m} N={n}"
        e2e, exact = e2e_c[key], exact_c[key]
        cells = [
            compare.rate(e2e, exact, name, where)
            for name in ("error2", "error1", "cover2", "false_fail", "power")
        ]
        print(
            f"{se:4.2f} {sp:4.2f} {p:4.2f} {judged_rate(p, se, sp):5.3f} {m:4d} {n:4d} | "
            + " | ".join(cells)
            + f" | {compare.width(e2e, exact, where)}"
        )
    print("\nUncorrected: Clopper-Pearson on the judged rate, plain not_worse on judged passes")
    print(
        f"{'Se':>4} {'Sp':>4} {'p':>4} {'q':>5} {'N':>4} | {'2-sided coverage':>17} | "
        f"{'false-fail':>17} | {'power':>17} | {'width':>17}"
    )
    for pkey in plain_keys():
        se, sp, p, n = pkey
        where = f"uncorrected Se={se} Sp={sp} p={p} N={n}"
        e2e, exact = e2e_p[pkey], exact_p[pkey]
        cells = [
            compare.rate(e2e, exact, name, where) for name in ("cover2", "false_fail", "power")
        ]
        print(
            f"{se:4.2f} {sp:4.2f} {p:4.2f} {judged_rate(p, se, sp):5.3f} {n:4d} | "
            + " | ".join(cells)
            + f" | {compare.width(e2e, exact, where)}"
        )

    summarize(exact_c, exact_p, e2e_c, compare)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


def summarize(
    exact_c: Mapping[CorrectedKey, Tally],
    exact_p: Mapping[PlainKey, Tally],
    e2e_c: Mapping[CorrectedKey, Tally],
    compare: Comparison,
) -> None:
    print("\nSummary")
    cover = {key: t.mean("cover2") or 0.0 for key, t in exact_c.items()}
    fails = {key: t.mean("false_fail") or 0.0 for key, t in exact_c.items()}
    worst_cover, worst_fail = min(cover, key=cover.__getitem__), max(fails, key=fails.__getitem__)
    print(
        f"  corrected 2-sided coverage, exact: min {cover[worst_cover]:.2%} at "
        f"(Se, Sp, p, M, N) = {worst_cover}; e2e pooled over rows "
        f"{mean(t.mean('cover2') for t in e2e_c.values()):.2%} "
        f"(exact {mean(cover.values()):.2%})"
    )
    print(
        f"  corrected not_worse false-fail, exact: max {fails[worst_fail]:.2%} at "
        f"{worst_fail}; e2e pooled {mean(t.mean('false_fail') for t in e2e_c.values()):.2%} "
        f"(exact {mean(fails.values()):.2%})"
    )
    broken = [key for key in exact_c if cover[key] < CONFIDENCE or fails[key] > 1 - CONFIDENCE]
    print(f"  rows where the exact guarantee fails: {len(broken)}", *broken)
    lowest = min(t.mean("cover2") or 0.0 for t in e2e_c.values())
    highest = max(t.mean("false_fail") or 0.0 for t in e2e_c.values())
    print(f"  e2e per row: coverage >= {lowest:.1%}, false-fail <= {highest:.1%}")
    power = [t.mean("power") for t in exact_c.values()]
    plain_power = [t.mean("power") for t in exact_p.values()]
    print(
        f"  power at p = pass_rate - {DROP}, exact: corrected {span(power)}, "
        f"uncorrected {span(plain_power)}"
    )
    plain_fail = [t.mean("false_fail") for t in exact_p.values()]
    print(f"  uncorrected not_worse false-fail, exact: {span(plain_fail)}")
    plain_cover = {key: t.mean("cover2") or 0.0 for key, t in exact_p.items()}
    under = sorted((v, key) for key, v in plain_cover.items() if v < CONFIDENCE)
    print(
        f"  uncorrected 2-sided coverage < 95% in {len(under)} of {len(plain_cover)} rows, "
        f"lowest {under[0][0]:.2%} at (Se, Sp, p, N) = {under[0][1]}"
        if under
        else ""
    )
    widths = [
        (exact_c[(se, sp, p, m, n)].mean("width"), exact_p[(se, sp, p, n)].mean("width"))
        for se, sp, p, m, n in corrected_keys()
    ]
    ratios = [c / u for c, u in widths if c is not None and u]
    print(
        f"  mean width, exact: corrected {span([c for c, _ in widths], '.3f')}, uncorrected "
        f"{span([u for _, u in widths], '.3f')}; ratio {min(ratios):.2f} - {max(ratios):.2f}"
    )
    tails = sorted(compare.tails)
    low = sum(tail < 0.01 for tail, _ in tails)
    print(
        f"  e2e against exact, rates: {len(tails)} cells, binomial p < 0.01 in {low}; "
        f"smallest p {tails[0][0]:.2g} ({tails[0][1]})"
    )
    zs = sorted(compare.z, key=lambda z: -abs(z[0]))
    over3 = sum(abs(z) > 3 for z, _ in zs)
    print(
        f"  e2e against exact, widths: {len(zs)} cells, |z| > 3 in {over3}; "
        f"largest z {zs[0][0]:+.2f} ({zs[0][1]})"
    )


def span(values: Iterable[float | None], fmt: str = ".1%") -> str:
    xs = [x for x in values if x is not None]
    return f"{min(xs):{fmt}} - {max(xs):{fmt}}"


def mean(values: Iterable[float | None]) -> float:
    xs = [x for x in values if x is not None]
    return sum(xs) / len(xs)


if __name__ == "__main__":
    main()
