"""Grading results: per case, per group (partial credit), per submission; JSON and text forms."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["CaseResult", "Diagnosis", "GradeResult", "GroupResult"]


@dataclass
class CaseResult:
    """One case: passed or not, and if not why (``message``), with summaries of the call."""

    name: str
    group: str
    passed: bool
    message: str = ""
    inputs: str = ""
    expected: str = ""
    got: str = ""
    note: str = ""


@dataclass
class GroupResult:
    """A case group: ``score = points * passed / total``."""

    name: str
    points: float
    score: float
    passed: int
    total: int
    description: str = ""
    cases: list[CaseResult] = field(default_factory=list)

    def first_failure(self) -> CaseResult | None:
        return next((c for c in self.cases if not c.passed), None)


@dataclass
class Diagnosis:
    """A probable mistake: which known-wrong variant the student's outputs equal, and where.

    ``failed`` counts the failed cases where the function returned a value (the ones a variant
    can explain); ``cases`` names those it explains.
    """

    key: str
    message: str
    cases: list[str]
    failed: int


@dataclass
class GradeResult:
    """The grade of one submission for one assignment."""

    assignment: str
    function: str
    score: float
    max_score: float
    groups: list[GroupResult]
    diagnoses: list[Diagnosis] = field(default_factory=list)
    load_error: str = ""
    output: str = ""
    execution_time: float = 0.0

    @property
    def passed(self) -> bool:
        return self.score == self.max_score

    def first_failure(self) -> CaseResult | None:
        """The first failing case over all groups (in order), or None."""
        return next((f for g in self.groups if (f := g.first_failure()) is not None), None)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (``json.dumps(result.to_dict())``)."""
        d = asdict(self)
        first = self.first_failure()
        d["first_failure"] = None if first is None else asdict(first)
        return d

    def format_text(self, *, verbose: bool = False) -> str:
        """Feedback for the student: the score per group, the first failure, probable mistakes.

        With ``verbose`` every failed case is listed, not only the first.
        """
        lines = [f"Assignment {self.assignment!r} ({self.function}): "
                 f"{self.score:.4g} / {self.max_score:.4g} points"]
        if self.load_error:
            lines += ["", "Your submission could not be loaded:", _indent(self.load_error)]
        for g in self.groups:
            mark = "ok  " if g.passed == g.total else "FAIL"
            lines.append(f"  [{mark}] {g.name}: {g.passed}/{g.total} cases, "
                         f"{g.score:.4g}/{g.points:.4g} points")
        first = self.first_failure()
        if first is not None and not self.load_error:
            lines += ["", "First failing case:", _indent(format_case(first))]
        if verbose:
            for g in self.groups:
                for c in g.cases:
                    if not c.passed and c is not first:
                        lines += ["", _indent(format_case(c))]
        if self.diagnoses:
            lines += ["", "Probable mistake" + ("s:" if len(self.diagnoses) > 1 else ":")]
            for d in self.diagnoses:
                lines.append(f"  - {d.message} ({len(d.cases)} of the {d.failed} failed "
                             f"case{'s' if d.failed != 1 else ''} with a result)")
        if self.output.strip():
            lines += ["", "Your code printed:", _indent(self.output.strip())]
        return "\n".join(lines)


def format_case(c: CaseResult) -> str:
    """A failed case as text: name, what it tests, inputs, expected, got, why it failed."""
    lines = [f"{c.group} / {c.name}" + (f" ({c.note})" if c.note else "")]
    if c.inputs:
        lines.append(f"inputs:   {c.inputs}")
    if c.expected:
        lines.append(f"expected: {c.expected}")
    if c.got:
        lines.append(f"got:      {c.got}")
    lines.append(f"problem:  {c.message}")
    return "\n".join(lines)


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
