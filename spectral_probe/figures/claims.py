"""Claims as code: what each figure of the paper is there to show, checked on the figure's own data.

Every recipe declares its claims (:class:`Claim`: the paper's words with their section,
caption or equation, the data they need, and a function of the figure's Dataset that
returns a number and a verdict).  :func:`run_checks` evaluates them; a claim whose data is
not in the file (an older layout) is reported as ``missing`` -- never as a pass.  The
results are stored in the figure's ``.h5`` (attribute ``checks``, JSON), printed by
``spectral-probe figure N`` and re-run by ``spectral-probe figure check FILE.h5``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = ["Claim", "CheckResult", "Verdict", "MissingData", "run_checks", "checks_attr", "read_checks", "format_check",
           "cumulative_share_below", "STATUSES"]

#: outcomes of a check
STATUSES = ("pass", "fail", "missing", "error")


class MissingData(KeyError):
    """Raised by a claim's check when the file lacks what it needs (reported as ``missing``)."""


@dataclass(frozen=True)
class Verdict:
    """What a claim's check found: ``passed``, the headline ``value`` and a one-line ``text`` with the numbers."""

    passed: bool
    value: float
    text: str


@dataclass(frozen=True)
class Claim:
    """One claim of the paper about a figure, and how its data shows it (or not).

    Attributes
    ----------
    id
        Short, stable name (``"siren-falls-s1-s4"``).
    source
        The paper's words, quoted in one line with where they are (``Fig 1 caption: "..."``).
    test
        What is checked, in one line (the threshold included).
    needs
        Variables or attributes of the Dataset the check reads; absent ones make it ``missing``.
    evaluate
        ``Dataset -> Verdict``.
    """

    id: str
    source: str
    test: str
    needs: tuple[str, ...]
    evaluate: Callable

    def missing(self, ds) -> list[str]:
        """The needed names that ``ds`` has neither as a variable, a coordinate nor an attribute."""
        return [n for n in self.needs if n not in ds.variables and n not in ds.attrs]


@dataclass(frozen=True)
class CheckResult:
    """A claim evaluated on one file."""

    figure: str
    id: str
    status: str
    value: float | None
    text: str
    source: str
    test: str

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def run_checks(number: str, claims: Sequence[Claim], ds) -> list[CheckResult]:
    """Evaluate ``claims`` on ``ds``; missing data and failing evaluations are reported, never passed."""
    out = []
    for claim in claims:
        absent = claim.missing(ds)
        if absent:
            out.append(CheckResult(number, claim.id, "missing", None,
                                   f"needs {', '.join(absent)}, not in this file (older layout?)",
                                   claim.source, claim.test))
            continue
        try:
            verdict = claim.evaluate(ds)
        except MissingData as exc:
            out.append(CheckResult(number, claim.id, "missing", None, str(exc.args[0]), claim.source, claim.test))
            continue
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            out.append(CheckResult(number, claim.id, "error", None, f"could not evaluate: {type(exc).__name__}: "
                                   f"{exc}", claim.source, claim.test))
            continue
        value = float(verdict.value) if verdict.value is not None and np.isfinite(verdict.value) else None
        out.append(CheckResult(number, claim.id, "pass" if verdict.passed else "fail", value, verdict.text,
                               claim.source, claim.test))
    return out


def checks_attr(results: Sequence[CheckResult]) -> str:
    """The results as the JSON stored in a figure file's ``checks`` attribute."""
    return json.dumps([asdict(r) for r in results])


def read_checks(ds) -> list[CheckResult]:
    """The results stored in ``ds.attrs["checks"]`` (empty when absent)."""
    text = ds.attrs.get("checks")
    if not text:
        return []
    return [CheckResult(**row) for row in json.loads(text)]


def format_check(result: CheckResult, source: bool = True) -> str:
    """``PASS fig1/siren-falls-s1-s4: <numbers>  [<source>]`` in one line."""
    line = f"{result.status.upper():7s} fig{result.figure}/{result.id}: {result.text}"
    return f"{line}  [{result.source}]" if source else line


def cumulative_share_below(freq: np.ndarray, cumulative: np.ndarray, fraction: float) -> np.ndarray:
    """Share of power below ``fraction`` x Nyquist from a normalised cumulative PSD (last axis = ``freq``).

    ``freq`` is in fractions of Nyquist (the ``fk`` axis of the figures' summaries); linear
    interpolation between the stored frequencies.
    """
    f = np.asarray(freq, dtype=np.float64)
    c = np.asarray(cumulative, dtype=np.float64)
    return np.apply_along_axis(lambda row: np.interp(fraction, f, row), -1, c)
