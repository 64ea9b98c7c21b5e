"""The JSON report's shape as TypedDicts, so that mypy checks every key that is written or read.

Each type has one constructor, in the module that owns what it describes:

| type | built by |
| --- | --- |
| `Report` | `report.build.build_report` |
| `Result` | `report.build.result_row` (through `sampled_result` / `broken_result`) |
| `Row` | `report.build.with_metrics` (a `Result` plus `Derived`) |
| `Metrics`, `ModelTotals` | `report.build.sample_metrics`, `report.build.model_totals` |
| `CodeMetrics`, `SandboxSummary` | `report.build.code_metrics`, `sandbox.code.sandbox_summary` |
| `Sample`, `Call`, `Turn` | `verdict.records` (`SampleRecord`, `CallRecord`, `TurnCheck`) |
| `SandboxRun` | `sandbox.host.run_record` |
| `Dialogue` | `conversation.dialogue_summary` |
| `ModelInfo`, `PlanInfo` | `config.ModelSettings.to_dict`, `verdict.marker.Plan.to_dict` |
| `SuiteRow`, `PairedComparison`, `Route` | `report.suites` |
| `RowComparison`, `BaselineComparison` | `report.baseline.compare_row`, `report.baseline.compare` |
| `Transcript`, `Exchange`, `Message` | `verdict.transcript` |
| `TranscriptDiff`, `ExampleAnswer` | `report.diff` |
| `HistoryPoint`, `HistorySeries` | `report.history` |

Reports read from disk are checked and then typed as `Report` in one place,
`report.baseline.load_report`. `NotRequired` keys are the ones the plugin writes only sometimes;
a key that is always written but may be null is `X | None`. tests/test_schema.py checks these
types against a real report. (No `from __future__ import annotations` here: on Python 3.11 it
would hide `NotRequired` from `__required_keys__`, which that test reads.)
"""

from typing import Final, NotRequired, TypedDict

SCHEMA: Final = "pytest-llmeval/report"
VERSION: Final = 1


class ModelInfo(TypedDict):
    """A model as reports show it (`ModelSettings.to_dict`): no URL, no key."""

    name: str
    model_id: str
    api: str
    input_cost_per_mtok: float | None
    output_cost_per_mtok: float | None
    cached_input_cost_per_mtok: float | None
    price_source: str | None


class CaseOrderInfo(TypedDict):
    """A case of a sequential suite (`verdict.marker.CaseOrder`)."""

    position: int  # in the canonical order of the collected cases
    cases: int  # the suite's collected cases (N)
    collection: str  # a key of the collected case list: shards collect different ones


class PlanInfo(TypedDict):
    """The marker resolved for one model (`Plan.to_dict`)."""

    pass_rate: float
    samples: int
    confidence: float
    mode: str
    marked: bool
    suite: NotRequired[bool]  # the threshold is the suite's (`SuiteGate`), not the case's
    population: NotRequired[str]  # fixed | sampled
    judged: NotRequired[bool]  # the judge graded its samples: all ran, the verdict may be corrected
    paired: NotRequired[bool]  # runs on a pair of models (`llm_rival`): a row per pair, no suite
    design: NotRequired[str]  # not_worse and proven: sequential | fixed (with curtailment)
    expected_samples: NotRequired[float]  # what the design spends on average at p = pass_rate
    order: NotRequired[CaseOrderInfo]  # a case of a suite that stops over cases (sequential)


class Call(TypedDict):
    """One request to a model within a sample (`CallRecord.to_dict`)."""

    endpoint: str
    fingerprint: str
    latency_s: float
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    error_type: str | None
    cause: str | None
    ttft_s: float | None
    attempts: int
    retry_causes: list[str]
    cached: bool
    saved_usd: float | None
    role: NotRequired[str]  # judge | embedding; absent for the model under test


class RoleTotals(TypedDict):
    """Calls, tokens and cost of the judge's or the embedding model's calls (`role_totals`)."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    latency_s: float


class Judged(TypedDict):
    """One judgement recorded by the judge (`judging.judge`): a grade or a preference."""

    kind: str  # grade | compare
    judge: str
    judge_model_id: str
    rubric: str  # fingerprint of the instructions and rubric or criterion
    reason: str
    passed: NotRequired[bool]  # grade
    score: NotRequired[int | None]  # grade
    labels: NotRequired[list[str]]  # compare: the two outputs' labels, in the first order
    winner: NotRequired[str]  # compare: a label or "tie"
    consistent: NotRequired[bool]  # compare: the same answer in both orders


class CalibrationInfo(TypedDict):
    """The judge's measured error on a labelled set (`judging.calibration`)."""

    set: str
    items: int
    true_pos: int
    false_neg: int
    true_neg: int
    false_pos: int
    sensitivity: float | None
    specificity: float | None


class JudgedVerdict(TypedDict):
    """How a judged test's verdict relates to the model's true rate (`judging.correction`)."""

    judge: str
    rubric: str
    judged_rate: float | None
    corrected_rate: float | None  # None: no calibration, or the judge cannot be corrected
    ci: list[float] | None  # for the true rate, calibration uncertainty included
    calibration: CalibrationInfo | None
    about: str  # true_rate | judged_rate
    note: str


class SandboxRun(TypedDict):
    """One run of generated code in the sandbox within a sample (`sandbox.host.run_record`)."""

    status: str
    lines: int
    duration_s: float
    isolation: str
    cases_passed: NotRequired[int]  # these two only when the tests were a list of cases
    cases: NotRequired[int]
    detail: NotRequired[str]  # why the hidden tests failed (capped), when they did


class Turn(TypedDict):
    """One dialogue check after a user turn (`TurnCheck.to_dict`)."""

    turn: int
    name: str
    passed: bool
    required: bool
    message: str | None


class Message(TypedDict):
    """One message sent to a model, redacted and capped (`verdict.transcript`)."""

    role: str
    content: str


class ToolCallText(TypedDict):
    name: str
    arguments: str


class Exchange(TypedDict):
    """One call of a sample as its transcript keeps it (`verdict.transcript.exchange`): the
    messages sent (a completion's prompt or an embedding's inputs as user messages) and the
    answer, redacted, then each text capped."""

    role: str  # model | judge | embedding | rival
    endpoint: str
    messages: list[Message]
    answer: str
    finish_reason: str | None
    tool_calls: list[ToolCallText]
    error: str | None  # the call's error type and message, when it failed


class Transcript(TypedDict):
    """What a sample sent and received, kept under `--llm-record` (`verdict.transcript`)."""

    calls: list[Exchange]
    truncated: bool  # some text was cut at the cap; each cut text says how much


class Sample(TypedDict):
    """One run of the test body (`SampleRecord.to_dict`)."""

    index: int
    outcome: str
    error_type: str | None
    cause: str | None
    message: str | None
    ttft_s: float | None
    retries: int
    duration_s: float
    latency_s: float
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    cached: bool
    saved_usd: float | None
    fingerprints: list[str]
    calls: list[Call]
    sandbox: list[SandboxRun]
    turns: NotRequired[list[Turn]]  # only for tests that score dialogue turns
    roles: NotRequired[dict[str, RoleTotals]]  # judge / embedding calls, apart from the model's
    judgements: NotRequired[list[Judged]]
    transcript: NotRequired[Transcript]  # kept for the samples `--llm-record` chooses


class Decision(TypedDict):
    """How a sequential verdict stopped (`verdict.sampling`): the samples judged, in launch
    order, when the design decided, the bound it crossed, and the samples run past the stop."""

    at: int
    overshoot: int  # launched before the stop was known (concurrency), not counted in the verdict
    why: str


class GateStop(TypedDict):
    """How the baseline gate stopped a test for futility (`verdict.futility`): the samples
    judged then and their counts, on which the regression verdict is "not regressed"."""

    at: int
    passed: int
    valid: int
    baseline: list[int]  # [passes, valid] of the baseline row the gate ran against
    why: str


class Result(TypedDict):
    """One test x model as a worker records it (`report.build.result_row`); the controller turns
    it into a report `Row`. Also the shape of an interrupted test's `interrupted-*.json`."""

    nodeid: str
    test: str
    model: str
    model_id: str
    plan: PlanInfo
    verdict: str  # passed | failed | error | interrupted
    stop_reason: str
    passed: int
    failed: int
    errors: int
    ci: list[float]  # [low, high]
    wall_s: float
    message: str | None
    samples: list[Sample]
    subject: NotRequired[str]  # a benchmark case's `llmeval_subject`
    in_order: NotRequired[str]  # why the case did not run ahead of its turn
    judged: NotRequired[JudgedVerdict]  # a test whose samples the judge graded
    decision: NotRequired[Decision]  # a test stopped by a sequential design
    gate_stop: NotRequired[GateStop]  # a test the baseline gate stopped for futility


class Metrics(TypedDict):
    """Latency, tokens, cost and error causes over samples (`report.build.sample_metrics`)."""

    latency_p50_s: float | None
    latency_p95_s: float | None
    ttft_p50_s: float | None
    tokens_per_s: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    saved_usd: float | None
    cached_samples: int
    calls: int
    retries: int
    errors_by_cause: dict[str, int]
    roles: NotRequired[dict[str, RoleTotals]]  # the judge's and embedding model's spend


class SandboxSummary(TypedDict):
    """What samples' generated code came to, by each one's last sandbox run."""

    runs: int
    syntax_error_rate: float
    mean_lines: float | None
    statuses: dict[str, int]
    unsafe_runs: int
    hidden_cases: float | None


class CodeMetrics(SandboxSummary):
    """A row's `code` block: unbiased pass@k by k (as a string) and the sandbox summary."""

    pass_at: dict[str, float]


class Rate(TypedDict):
    passed: int
    total: int
    rate: float


class DialogueCheck(Rate):
    name: str


class DialogueTurn(Rate):
    turn: int
    checks: list[DialogueCheck]


class Dialogue(TypedDict):
    """Per-turn pass rates of a test that scores dialogue turns (`dialogue_summary`)."""

    turns_scored: int
    mean_turns_passed: float
    turns: list[DialogueTurn]


class Derived(TypedDict):
    """What the controller adds to a `Result` from its samples (`report.build.with_metrics`)."""

    run: int
    rate: float | None
    fingerprints: list[str]
    metrics: Metrics
    code: CodeMetrics | None
    dialogue: NotRequired[Dialogue]  # only for tests that score dialogue turns


class Row(Result, Derived):
    """One test x model in the report's `tests` list."""


class ModelTotals(Metrics):
    """One model over every test (`report.build.model_totals`): verdicts, samples, metrics."""

    tests: int
    passed: int
    failed: int
    error: int
    samples: int
    sample_passes: int
    sample_errors: int


class BudgetInfo(TypedDict):
    limit_usd: float
    spent_usd: float


class SuiteRate(TypedDict):
    passed: int
    total: int
    rate: float | None
    ci: list[float]


class CodeColumns(TypedDict):
    """Sandbox columns of a suite row: all three or none."""

    sandbox_runs: NotRequired[int]
    syntax_error_rate: NotRequired[float]
    mean_solution_lines: NotRequired[float | None]


class SuiteStopping(TypedDict):
    """How a sequential suite stopped (`report.suites.suite_gate`)."""

    cases: int  # collected (N)
    ran: int  # cases with a row
    judged: (
        int  # counted in the verdict: the canonical prefix it needed (fixed: every one that ran)
    )
    skipped: int  # collected, never ran (skipped once settled)
    overshoot: int  # ran past the earliest canonical prefix that settled the verdict
    why: str


class SuiteGate(TypedDict):
    """A suite's own threshold over its cases (`suite=True`; `report.suites.suite_gate`)."""

    pass_rate: float
    confidence: float
    mode: str
    population: str  # fixed | sampled
    verdict: str  # passed | failed | error
    rate: float | None  # pass@1 over the valid cases
    ci: list[float]
    cases: int
    error_cases: int
    samples: int
    method: str
    worst: list[str]  # the lowest cases, `case passes/valid`
    stopping: NotRequired[SuiteStopping]  # a suite that stops over its cases


class Gated(TypedDict):
    """The gate of a suite row, when its marker set `suite=True`."""

    gate: NotRequired[SuiteGate]


class SuiteRow(SuiteRate, CodeColumns, Gated):
    """One model over a suite's cases (`report.suites.suite_row`)."""

    suite: str
    model: str
    cases: int
    errors: int
    pass_at_1: float | None
    cost_usd: float | None
    cost_per_case: float | None
    subjects: dict[str, SuiteRate]


class PairedComparison(TypedDict):
    """Exact paired (McNemar) test of two models on a suite's common cases."""

    suite: str
    a: str
    b: str
    cases: int
    a_rate: float | None
    b_rate: float | None
    a_only: int
    b_only: int
    p_value: float
    significant: bool


class Route(TypedDict):
    """The routing table's entry for a suite: the cheapest model not significantly worse."""

    suite: str
    best: str
    best_rate: float | None
    recommended: str
    rate: float | None
    cost_per_case: float | None
    equivalent: list[str]
    note: str


class Preference(PairedComparison):
    """Pairwise judgements of two models' answers to the same inputs (`report.suites`):
    `a_only`/`b_only` count the comparisons each won in both orders; the rest are ties."""

    ties: int
    flips: int  # ties because the judge changed its answer with the order


class SuiteSections(TypedDict):
    """The report's suite sections (`report.suites.compare`), empty lists without suites."""

    suites: list[SuiteRow]
    comparisons: list[PairedComparison]
    routing: list[Route]
    preferences: NotRequired[list[Preference]]  # only when a test asked the judge to compare


class ExampleAnswer(TypedDict):
    """One sample's answer shown beside the other run's (`report.diff`)."""

    index: int
    outcome: str
    answer: str
    message: str | None  # the assertion message of a failed sample


class TranscriptDiff(TypedDict):
    """Baseline and current side by side for a regressed or changed row (`report.diff`)."""

    prompt_diff: list[str]  # unified diff lines of the messages sent; [] when they are the same
    baseline: ExampleAnswer | None
    current: ExampleAnswer | None


class RowComparison(TypedDict):
    """One test x model against its baseline row (`report.baseline.compare_row`)."""

    test: str
    model: str
    baseline_passed: int
    baseline_valid: int
    passed: int
    valid: int
    p_value: float
    alpha: float
    regressed: bool
    prompt_changed: bool
    diff: NotRequired[TranscriptDiff]  # when regressed or changed and both runs have transcripts


class SuiteComparison(TypedDict):
    """A gated suite x model against the baseline, case paired with case (sign test)."""

    suite: str
    model: str
    cases: int
    worse: int
    better: int
    ties: int
    p_value: float
    alpha: float
    regressed: bool
    baseline_rate: float | None
    rate: float | None
    added: list[str]
    removed: list[str]
    prompt_changed: int  # cases whose prompts changed since the baseline


class BaselineComparison(TypedDict):
    """A report against a baseline report (`report.baseline.compare`); a gated suite's cases
    are compared in `suites`, not one by one in `rows`."""

    source: str
    created_at: str | None
    rows: list[RowComparison]
    suites: list[SuiteComparison]
    regressions: int
    changed_prompts: int
    new: list[str]
    gone: list[str]


class Report(SuiteSections):
    """The JSON document of `--llm-report` (and of `merge` and `compare`)."""

    schema: str
    version: int
    created_at: str
    models: dict[str, ModelInfo]
    budget: BudgetInfo | None
    totals: dict[str, ModelTotals]
    tests: list[Row]
    record: NotRequired[str]  # --llm-record: which samples keep transcripts
    baseline: NotRequired[BaselineComparison]  # with --llm-baseline, or `compare --baseline`


class HistoryPoint(TypedDict):
    """One run of a test x model in the `--llm-history` database (`report.history`)."""

    run: int  # the run's id, increasing
    created_at: str
    commit: str | None
    passed: int
    valid: int
    rate: float | None
    ci: list[float]  # [low, high]
    cost_usd: float | None
    verdict: str


class HistorySeries(TypedDict):
    """A test x model over the runs kept in the history, oldest first (`report.history`)."""

    test: str
    model: str
    points: list[HistoryPoint]


class Started(TypedDict):
    """Not in the report: what a worker sends the controller at a test x model's setup, so that
    a test that never produces a `Result` still gets a row (`report.build.broken_result`)."""

    test: str
    model: ModelInfo
    plan: PlanInfo
