"""The main job's time budget: one clock, and the plan of which kinds to fit and for how long.

A pure module (no torch, no Optuna, nothing fitted), testable with fake kinds and a fake clock.

* :class:`BudgetSettings`: ``--time-budget MINUTES`` (None: no budget, every kind runs in full).
* :class:`Deadline`: the one clock (``left()`` seconds; the budget counts from the job's start).
* :func:`make_plan`: from the kinds still to fit (their declared cost, their prior estimate of the
  fitting time scaled by what the job measured so far, whether they honour a time limit) and the
  seconds left once the final steps' reserve is set aside, the next :class:`Step` or the reason to
  skip each kind. Cheap kinds first; a kind runs in full when its estimate fits; a kind that
  honours a time limit is given what it can have (at most :data:`MAX_SHARE` of what is left when a
  costlier time-limited kind follows, all of it when it is the last); a kind that cannot get
  :data:`MIN_SECONDS` (or :data:`MIN_FRACTION` of its estimate) is skipped with the reason. Under a budget a
  time-limited kind always gets a limit, even when its estimate fits (:data:`OVERRUN`), so that an estimate
  made short by a busy machine never takes the job past its budget.
* :func:`speed_scale`: how much slower (or faster) this machine and these data are than the priors,
  from the steps done so far.

The job re-plans after every step (``make_plan`` on what is left), so a kind that ran faster than
its estimate leaves more time to the ones after it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import UserError
from ..settings import setting

MAX_SHARE = 0.5
"""A time-limited kind followed by a costlier time-limited one gets at most this share of what is left."""
MIN_SECONDS = 15.0
"""A time-limited kind given less than this (and less than its estimate) is skipped."""
MIN_FRACTION = 0.1
"""... or less than this fraction of its estimate."""
OVERRUN = 2.0
"""A time-limited kind whose estimate fits is still stopped at this many times its estimate (or at its share of
what is left, when that is more; never past the budget): an estimate timed on a busy machine can be 4x short."""
RESERVE_SECONDS = 2.0
"""The final steps' fixed part: the ensemble, the recommendation, the comparison and its report."""
RESERVE_PER_MODEL = 0.3
"""... per model compared ..."""
RESERVE_PER_SCORE = 2e-5
"""... and per row and model scored in the comparison (its bootstrap and McNemar tests)."""
STUDENT_SHARE = 0.2
"""The share of a budget at most kept for the fast student (distilled when the recommended model is slow)."""
STUDENT_MIN_SECONDS = 10.0
"""A student that cannot have this (or its estimate) is skipped."""


AUTO = "auto"


@dataclass(frozen=True)
class BudgetSettings:
    """The main job's time budget (``train --with-baselines``)."""

    time_budget: str | None = setting(
        None, "time for the whole job: MINUTES, or a share of the full job's estimate like 50%% (the kinds measure "
        "or estimate their fitting time first); cheap kinds are fitted first, each costlier kind gets what its "
        "estimate needs, BERT and textcnn what is left (stopping early there, best state kept), a kind that "
        "cannot fit is skipped with the reason; best.json, job.json, metrics.json and the summary record the plan "
        "(default: none, every kind runs in full)", metavar="MINUTES|N%")

    def parsed(self) -> tuple[float | None, float | None]:
        """(minutes, share of the full job's estimate): at most one of them; (None, None) for no budget."""
        value = None if self.time_budget is None else str(self.time_budget).strip().lower()
        if value in (None, "", "none", "off"):
            return None, None
        try:
            if value.endswith("%"):
                share = float(value[:-1]) / 100.0
                if not 0 < share <= 1:
                    raise ValueError
                return None, share
            minutes = float(value)
            if not (minutes > 0 and math.isfinite(minutes)):
                raise ValueError
            return minutes, None
        except ValueError:
            raise UserError(f"--time-budget must be a positive number of minutes or a share such as 50%, got "
                            f"{self.time_budget!r}") from None

    def check(self) -> BudgetSettings:
        self.parsed()
        return self

    @property
    def given(self) -> bool:
        return self.parsed() != (None, None)


class Deadline:
    """The job's one clock: seconds since the start and seconds left of the budget (infinite without one)."""

    def __init__(self, minutes: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.start = clock()
        self.total = math.inf if minutes is None else float(minutes) * 60.0

    def set_total(self, seconds: float) -> None:
        """The budget, now known (a share of an estimate made after the start): ``seconds`` from the start."""
        self.total = float(seconds)

    @property
    def limited(self) -> bool:
        return math.isfinite(self.total)

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        return self.total - self.elapsed()


@dataclass(frozen=True)
class KindCost:
    """What the planner knows about a kind still to fit."""

    name: str
    cost: float  # the kind's declared relative cost (the order)
    prior_seconds: float  # its own estimate of the fitting time on these data
    time_limited: bool  # it honours a time limit
    measured: bool = False  # the estimate was measured on this machine (not scaled by the other steps' speed)
    fixed_seconds: float = 0.0  # the part of the estimate a time limit does not shorten (what follows training)


@dataclass(frozen=True)
class Step:
    """Fit ``kind``; ``time_limit`` seconds when it must stop early (None: in full)."""

    kind: str
    estimate: float
    time_limit: float | None = None


@dataclass(frozen=True)
class Skip:
    """A kind the budget leaves out, and why."""

    kind: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """The next step (None: nothing left to fit) and the kinds skipped before it."""

    step: Step | None
    skipped: tuple[Skip, ...] = ()
    left: float = math.inf


def reserve_seconds(models: int, rows: int = 0) -> float:
    """Seconds to keep for the steps after fitting (ensemble, recommendation, comparison) of ``models`` on
    ``rows`` compared rows (about a second on a few hundred rows, ten on 10,000 rows and ten models)."""
    return RESERVE_SECONDS + models * (RESERVE_PER_MODEL + RESERVE_PER_SCORE * rows)


def student_reserve(estimate: float, total: float) -> float:
    """Seconds kept for the fast student under a budget of ``total`` seconds: its ``estimate``, at most
    :data:`STUDENT_SHARE` of the budget (it honours a time limit); kept whether or not one is needed (the job
    then ends that much earlier)."""
    return min(estimate, STUDENT_SHARE * total) if math.isfinite(total) else 0.0


def speed_scale(done: Sequence[tuple[float, float]]) -> float:
    """Median of measured / prior seconds of the steps done (``(prior, measured)`` pairs), within [0.2, 5]."""
    ratios = [m / p for p, m in done if p > 0 and m >= 0]
    return min(5.0, max(0.2, statistics.median(ratios))) if ratios else 1.0


def make_plan(kinds: Sequence[KindCost], left: float, reserve: float = 0.0, scale: float = 1.0) -> Plan:
    """The next kind to fit among ``kinds`` (cheapest first) with ``left`` seconds of budget and ``reserve``
    kept for the final steps; the kinds before it that cannot fit are skipped (see the module docstring)."""
    order = sorted(kinds, key=lambda k: (k.cost, k.name))
    available = left - reserve
    skipped: list[Skip] = []
    for i, kind in enumerate(order):
        estimate = kind.prior_seconds * (1.0 if kind.measured else scale)
        later = any(k.time_limited and k.cost > kind.cost for k in order[i + 1:])
        give = available * MAX_SHARE if later else available
        if not math.isfinite(available) or estimate <= available:
            limit = min(available, max(OVERRUN * estimate, give)) if kind.time_limited and math.isfinite(
                available) else None
            return Plan(Step(kind.name, estimate, limit), tuple(skipped), available)
        if kind.time_limited:
            if give >= min(MIN_SECONDS, estimate) and give >= MIN_FRACTION * estimate:
                return Plan(Step(kind.name, estimate, give), tuple(skipped), available)
        skipped.append(Skip(kind.name, f"needs about {estimate:.0f} s, {max(available, 0.0):.0f} s of the budget "
                                       "left"))
    return Plan(None, tuple(skipped), available)


@dataclass
class PlanRecord:
    """What the job did under its budget, for ``best.json``, ``metrics.json`` and the summary."""

    budget_minutes: float | None
    steps: list[dict] = field(default_factory=list)  # kind, estimate, time limit, seconds, stopped early
    skipped: list[dict] = field(default_factory=list)  # kind, reason

    def ran(self, step: Step, seconds: float, stopped: str | None = None) -> None:
        self.steps.append({"kind": step.kind, "estimate_s": round(step.estimate, 1),
                           "time_limit_s": None if step.time_limit is None else round(step.time_limit, 1),
                           "seconds": round(seconds, 1), **({"stopped": stopped} if stopped else {})})

    def skip(self, kind: str, reason: str) -> None:
        self.skipped.append({"kind": kind, "reason": reason})

    def to_json(self, elapsed: float) -> dict:
        return {"budget_minutes": self.budget_minutes, "elapsed_s": round(elapsed, 1), "ran": self.steps,
                "skipped": self.skipped}
