"""A scripted LLM judge for the fake gateway: answers the plugin's grade and compare prompts
from a known truth, with known error rates, so judge-based checks can be tested against it.

Grade prompt (last user message): ``<rubric>``, optional ``<input>`` and ``<reference>``,
``<output>`` sections, each tag alone on its line, and optionally a ``<scale>LO-HI</scale>``
line; reply ``{"reason", "verdict": "pass"|"fail"}`` plus ``"score"`` with a scale. Compare
prompt: ``<criterion>``, optional ``<input>``, ``<output_a>``, ``<output_b>``; reply
``{"reason", "better": "A"|"B"|"tie"}``.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable

from pytest_llmeval.testing.gateway import BadRequest, RecordedRequest

__all__ = ["ScriptedJudge"]

_SECTIONS = frozenset(
    {"rubric", "input", "reference", "output", "criterion", "output_a", "output_b"}
)
_OPEN = re.compile(r"<([a-z_]+)>")
_SCALE = re.compile(r"<scale>\s*(\d+)\s*-\s*(\d+)\s*</scale>")
_MALFORMED_KINDS = ("prose", "bad_value", "missing_key")


class ScriptedJudge:
    """Responder that grades by ``truth`` and compares by ``prefer``, wrong at set rates.

    A truly passing output is judged "pass" with probability ``sensitivity``, a truly failing
    one "fail" with probability ``specificity``. In a comparison the judge answers "A" with
    probability ``position_bias`` whatever the truth. With probability ``malformed`` the reply
    breaks the schema, in turn: prose, a JSON value outside the enum, a JSON object missing its
    key. The n-th ask of a prompt always gets the same luck, ``Random(f"{seed}:{prompt}:{n}")``,
    so results do not depend on the order or concurrency of requests. A request that is not a
    judge prompt raises :class:`BadRequest` (the client gets a 400).

    ``asked`` counts the judge prompts answered, ``answers`` the replies by kind: "pass",
    "fail", "A", "B", "tie" or "malformed".
    """

    def __init__(
        self,
        truth: Callable[[str, str], bool],
        *,
        sensitivity: float = 1.0,
        specificity: float = 1.0,
        prefer: Callable[[str, str, str], str] | None = None,
        position_bias: float = 0.0,
        malformed: float = 0.0,
        seed: int = 0,
    ) -> None:
        rates = {
            "sensitivity": sensitivity,
            "specificity": specificity,
            "position_bias": position_bias,
            "malformed": malformed,
        }
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate!r}")
        self.truth = truth
        self.sensitivity = sensitivity
        self.specificity = specificity
        self.prefer = prefer
        self.position_bias = position_bias
        self.malformed = malformed
        self.seed = seed
        self.asked = 0
        self.answers: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()
        self._malformed_count = 0
        self._lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> str:
        prompt = request.prompt
        sections, scale = _parse(prompt)
        if "output" in sections:
            kind = "grade"
            _require(sections, "rubric")
        elif "output_a" in sections or "output_b" in sections:
            kind = "compare"
            _require(sections, "criterion", "output_a", "output_b")
            if self.prefer is None:
                raise BadRequest("ScriptedJudge got a compare prompt but was given no `prefer`.")
        else:
            raise BadRequest(
                "ScriptedJudge answers judge prompts only: the last user message needs an "
                "<output> section (grade) or <output_a> and <output_b> sections (compare), "
                "each tag alone on its line."
            )
        with self._lock:
            self._seen[prompt] += 1
            nth = self._seen[prompt]
        luck = random.Random(f"{self.seed}:{prompt}:{nth}")
        # Always two draws, in this order, so the malformed rate never shifts the verdicts.
        broken, draw = luck.random() < self.malformed, luck.random()
        if kind == "grade":
            answer = self._grade(sections, scale, draw)
            label = str(answer["verdict"])
        else:
            answer = self._compare(sections, draw)
            label = str(answer["better"])
        with self._lock:
            self.asked += 1
            if not broken:
                self.answers[label] += 1
                return json.dumps(answer)
            self.answers["malformed"] += 1
            how = _MALFORMED_KINDS[self._malformed_count % len(_MALFORMED_KINDS)]
            self._malformed_count += 1
        return _malformed(answer, how)

    def _grade(
        self, sections: dict[str, str], scale: tuple[int, int] | None, draw: float
    ) -> dict[str, object]:
        meets = bool(self.truth(sections["output"], sections["rubric"]))
        chance = self.sensitivity if meets else 1.0 - self.specificity
        verdict = "pass" if draw < chance else "fail"
        reason = (
            "The output meets the rubric."
            if verdict == "pass"
            else "The output does not meet the rubric."
        )
        answer: dict[str, object] = {"reason": reason, "verdict": verdict}
        if scale is not None:
            answer["score"] = scale[1] if verdict == "pass" else scale[0]
        return answer

    def _compare(self, sections: dict[str, str], draw: float) -> dict[str, object]:
        assert self.prefer is not None
        better = self.prefer(sections["output_a"], sections["output_b"], sections["criterion"])
        if better not in ("A", "B", "tie"):
            raise ValueError(f"prefer must return 'A', 'B' or 'tie', got {better!r}")
        if draw < self.position_bias:
            better = "A"
        reason = (
            "Both outputs meet the criterion equally well."
            if better == "tie"
            else f"Output {better} meets the criterion better."
        )
        return {"reason": reason, "better": better}


def _parse(prompt: str) -> tuple[dict[str, str], tuple[int, int] | None]:
    """The text between ``<tag>`` and ``</tag>`` lines for the judge's tags (the first section
    of a tag wins), and the ``<scale>`` line outside them if any."""
    found: dict[str, str] = {}
    scale: tuple[int, int] | None = None
    open_tag: str | None = None
    body: list[str] = []
    for line in prompt.splitlines():
        stripped = line.strip()
        if open_tag is not None:
            if stripped == f"</{open_tag}>":
                found.setdefault(open_tag, "\n".join(body))
                open_tag = None
            else:
                body.append(line)
        elif (tag := _OPEN.fullmatch(stripped)) and tag.group(1) in _SECTIONS:
            open_tag, body = tag.group(1), []
        elif (bounds := _SCALE.fullmatch(stripped)) and scale is None:
            low, high = int(bounds.group(1)), int(bounds.group(2))
            if low >= high:
                raise BadRequest(f"ScriptedJudge: <scale>{low}-{high}</scale> needs LO < HI.")
            scale = low, high
    return found, scale


def _require(sections: dict[str, str], *names: str) -> None:
    missing = [f"<{name}>" for name in names if name not in sections]
    if missing:
        raise BadRequest(f"ScriptedJudge: the judge prompt has no {', '.join(missing)} section.")


def _malformed(answer: dict[str, object], kind: str) -> str:
    key = "verdict" if "verdict" in answer else "better"
    if kind == "prose":
        return f"{answer['reason']} So my answer is {answer[key]}."
    if kind == "bad_value":
        return json.dumps({**answer, key: "maybe"})
    return json.dumps({k: v for k, v in answer.items() if k != key})
