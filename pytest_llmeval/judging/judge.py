"""The judge: a second model that grades outputs against a rubric, or prefers one of two.

Its answer must fit a JSON schema; anything else is a JudgeError (an error sample, never a pass
or a fail of the model under test). Every judgement is recorded on the running sample, so the
verdict can be corrected with the judge's calibration.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_llmeval.errors import JudgeError, LLMUsageError
from pytest_llmeval.judging.prompts import (
    COMPARE_SCHEMA,
    JudgePrompts,
    compare_messages,
    grade_messages,
    grade_schema,
    response_format,
    rubric_fingerprint,
)
from pytest_llmeval.verdict.records import current_trace

if TYPE_CHECKING:
    from pytest_llmeval.calls.client import LLM
    from pytest_llmeval.calls.completion import Completion

_FENCE = re.compile(r"\A```(?:json)?\s*\n(.*)\n```\Z", re.DOTALL)
_QUOTED = 300
MAX_ANSWER_TOKENS = 400  # a reason of two sentences and a verdict fit many times over


@dataclass(frozen=True)
class Judgement:
    """The judge's grade of one output: true when it passed; `reason` says why."""

    passed: bool
    reason: str
    score: int | None
    judge: str
    rubric: str  # fingerprint of the instructions and rubric (the calibration's key)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        score = "" if self.score is None else f", score={self.score}"
        verdict = "pass" if self.passed else "fail"
        return f"Judgement({verdict}{score}, judge={self.judge!r}, reason={self.reason!r})"


@dataclass(frozen=True)
class Preference:
    """Which of two outputs the judge prefers, asked in both orders: a flip is a tie."""

    winner: str  # the first output's label, the second's, or "tie"
    consistent: bool  # the same answer in both orders
    labels: tuple[str, str]
    reasons: tuple[str, str]


class Judge:
    """Grades outputs with the judge model through the run's client (limits, cache, budget)."""

    def __init__(self, llm: LLM, prompts: JudgePrompts, fmt: str = "json_schema") -> None:
        self.llm = llm
        self.prompts = prompts
        self.format = fmt

    def __repr__(self) -> str:
        return f"Judge({self.llm.model.name!r})"

    @property
    def name(self) -> str:
        return self.llm.model.name

    def __call__(
        self,
        output: str,
        rubric: str,
        *,
        question: str | None = None,
        reference: str | None = None,
        scale: tuple[int, int] | None = None,
        pass_score: int | None = None,
    ) -> Judgement:
        """Does `output` meet `rubric`? With `scale=(1, 5)` the judge also scores it, and with
        `pass_score` the pass is `score >= pass_score` instead of the judge's verdict."""
        messages, params = self._grade_request(
            output, rubric, question, reference, scale, pass_score
        )
        completion = self.llm.chat(messages, **params)
        return self._graded(completion, rubric, scale, pass_score)

    async def agrade(
        self,
        output: str,
        rubric: str,
        *,
        question: str | None = None,
        reference: str | None = None,
        scale: tuple[int, int] | None = None,
        pass_score: int | None = None,
    ) -> Judgement:
        """Async twin of calling the judge."""
        messages, params = self._grade_request(
            output, rubric, question, reference, scale, pass_score
        )
        completion = await self.llm.achat(messages, **params)
        return self._graded(completion, rubric, scale, pass_score)

    def compare(
        self,
        first: str,
        second: str,
        criterion: str,
        *,
        question: str | None = None,
        labels: tuple[str, str] = ("a", "b"),
    ) -> Preference:
        """Which output meets `criterion` better, asked in both orders (a flip is a tie)."""
        params = self._params("preference", COMPARE_SCHEMA)
        forward = self.llm.chat(
            compare_messages(self.prompts, criterion, first, second, question), **params
        )
        backward = self.llm.chat(
            compare_messages(self.prompts, criterion, second, first, question), **params
        )
        return self._preferred(forward, backward, criterion, labels)

    async def acompare(
        self,
        first: str,
        second: str,
        criterion: str,
        *,
        question: str | None = None,
        labels: tuple[str, str] = ("a", "b"),
    ) -> Preference:
        """Async twin of `compare`."""
        params = self._params("preference", COMPARE_SCHEMA)
        forward = await self.llm.achat(
            compare_messages(self.prompts, criterion, first, second, question), **params
        )
        backward = await self.llm.achat(
            compare_messages(self.prompts, criterion, second, first, question), **params
        )
        return self._preferred(forward, backward, criterion, labels)

    def fingerprint(
        self, rubric: str, scale: tuple[int, int] | None = None, pass_score: int | None = None
    ) -> str:
        return rubric_fingerprint(self.prompts, rubric, scale, pass_score)

    def _params(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        """The answer's format and, unless the config sets one, a cap on its length: an answer
        that runs past it is cut, and a cut answer is a judge error."""
        params: dict[str, Any] = {}
        fmt = response_format(self.format, name, schema)
        if fmt is not None:
            params["response_format"] = fmt
        if not {"max_tokens", "max_completion_tokens"} & set(self.llm.defaults):
            longest = self.llm.model.max_output_tokens or MAX_ANSWER_TOKENS
            params["max_tokens"] = min(MAX_ANSWER_TOKENS, longest)
        return params

    def _grade_request(
        self,
        output: str,
        rubric: str,
        question: str | None,
        reference: str | None,
        scale: tuple[int, int] | None,
        pass_score: int | None,
    ) -> tuple[list[dict[str, str]], dict[str, Any]]:
        if not isinstance(output, str) or not isinstance(rubric, str) or not rubric.strip():
            raise LLMUsageError("judge(output, rubric): both must be strings, the rubric not empty")
        if scale is not None and not (
            len(scale) == 2 and all(isinstance(x, int) for x in scale) and scale[0] < scale[1]
        ):
            raise LLMUsageError(f"scale={scale!r} must be two integers (low, high), low < high")
        if pass_score is not None and scale is None:
            raise LLMUsageError("pass_score needs scale=(low, high): the score it compares with")
        messages = grade_messages(
            self.prompts, rubric, output, question=question, reference=reference, scale=scale
        )
        return messages, self._params("judgement", grade_schema(scale))

    def _graded(
        self,
        completion: Completion,
        rubric: str,
        scale: tuple[int, int] | None,
        pass_score: int | None,
    ) -> Judgement:
        answer = self._answer(completion, grade_schema(scale))
        score = answer.get("score")
        if pass_score is None or score is None:
            passed = answer["verdict"] == "pass"
        else:
            passed = score >= pass_score
        judgement = Judgement(
            passed, answer["reason"], score, self.name, self.fingerprint(rubric, scale, pass_score)
        )
        trace = current_trace()
        if trace is not None:
            trace.add_judgement(
                {
                    "kind": "grade",
                    "judge": self.name,
                    "judge_model_id": self.llm.model.model_id,
                    "rubric": judgement.rubric,
                    "passed": passed,
                    "score": score,
                    "reason": self.llm.redact(judgement.reason[:_QUOTED]),
                }
            )
        return judgement

    def _preferred(
        self,
        forward: Completion,
        backward: Completion,
        criterion: str,
        labels: tuple[str, str],
    ) -> Preference:
        first = self._answer(forward, COMPARE_SCHEMA)
        second = self._answer(backward, COMPARE_SCHEMA)
        # In the second order A is the second output: map both answers to the outputs' labels.
        said = (
            {"A": labels[0], "B": labels[1], "tie": "tie"}[first["better"]],
            {"A": labels[1], "B": labels[0], "tie": "tie"}[second["better"]],
        )
        consistent = said[0] == said[1]
        preference = Preference(
            said[0] if consistent else "tie",
            consistent,
            labels,
            (first["reason"], second["reason"]),
        )
        trace = current_trace()
        if trace is not None:
            trace.add_judgement(
                {
                    "kind": "compare",
                    "judge": self.name,
                    "judge_model_id": self.llm.model.model_id,
                    "rubric": rubric_fingerprint(self.prompts, criterion),
                    "labels": list(labels),
                    "winner": preference.winner,
                    "consistent": consistent,
                    "reason": self.llm.redact(preference.reasons[0][:_QUOTED]),
                }
            )
        return preference

    def _answer(self, completion: Completion, schema: dict[str, Any]) -> dict[str, Any]:
        """The judge's JSON object, checked against `schema`; anything else is a JudgeError."""
        if completion.finish_reason == "length":
            raise self._error("the answer was cut at the token limit", completion.text)
        text = completion.text.strip()
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1).strip()
        try:
            answer = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._error(f"not JSON ({exc.msg})", completion.text) from None
        import jsonschema

        problem = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(schema).iter_errors(answer)
        )
        if problem is not None:
            where = "/".join(map(str, problem.absolute_path)) or "the answer"
            raise self._error(f"{where}: {problem.message}", completion.text)
        return dict(answer)

    def _error(self, problem: str, text: str) -> JudgeError:
        quoted = text if len(text) <= _QUOTED else text[:_QUOTED] + "..."
        return JudgeError(
            f"judge {self.name!r} answered outside its schema: {problem}; it said {quoted!r}"
        )
