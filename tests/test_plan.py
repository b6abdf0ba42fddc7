"""The time-budget planner, with fake kinds and a fake clock (nothing is fitted), and the budget through the job."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cls_app.workflow.plan import (
    MAX_SHARE,
    MIN_SECONDS,
    OVERRUN,
    BudgetSettings,
    Deadline,
    KindCost,
    make_plan,
    speed_scale,
    student_reserve,
)

from .conftest import TINY_MODEL_ARGS, noisy_files, run_main

CHEAP = KindCost("char_svm", 1.2, 5.0, False)
FAST = KindCost("fasttext", 4.0, 30.0, False)
CNN = KindCost("textcnn", 20.0, 60.0, True)
BERT = KindCost("bert", 100.0, 600.0, True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_deadline_keeps_one_clock() -> None:
    clock = Clock()
    d = Deadline(2.0, clock)
    clock.now += 30
    assert d.limited and d.elapsed() == 30 and d.left() == 90
    assert not Deadline(None, clock).limited and Deadline(None, clock).left() == math.inf


def test_without_a_budget_every_kind_runs_in_full_cheapest_first() -> None:
    plan = make_plan([BERT, CNN, CHEAP, FAST], math.inf)
    assert plan.step is not None and plan.step.kind == "char_svm" and plan.step.time_limit is None
    assert not plan.skipped


def test_a_kind_that_fits_runs_in_full_and_the_last_time_limited_one_gets_what_is_left() -> None:
    assert make_plan([BERT, CHEAP], 700.0).step == make_plan([CHEAP], 700.0).step  # char_svm first, in full
    assert make_plan([CHEAP], 700.0).step.time_limit is None  # it does not take a limit: its estimate is all
    alone = make_plan([BERT], 10_000.0)  # it fits; the last of the time-limited kinds may still use what is left
    assert alone.step is not None and alone.step.time_limit == pytest.approx(10_000.0)
    last = make_plan([BERT], 200.0, reserve=20.0)
    assert last.step is not None and last.step.kind == "bert" and last.step.time_limit == pytest.approx(180.0)


def test_a_time_limited_kind_before_a_costlier_one_gets_at_most_its_share() -> None:
    fits = make_plan([CNN, BERT], 1000.0).step  # it fits (60 s), and is stopped at twice that if it overruns
    assert fits is not None and fits.kind == "textcnn" and fits.time_limit == pytest.approx(1000.0 * MAX_SHARE)
    assert make_plan([CNN, BERT], 100.0).step.time_limit == pytest.approx(100.0)  # 2 x 60 s, capped at what is left
    assert make_plan([CNN, BERT], 200.0).step.time_limit == pytest.approx(OVERRUN * 60.0)  # more than its share
    plan = make_plan([CNN, BERT], 50.0)
    assert plan.step is not None and plan.step.kind == "textcnn"
    assert plan.step.time_limit == pytest.approx(50.0 * MAX_SHARE)


def test_what_cannot_fit_is_skipped_with_the_reason() -> None:
    plan = make_plan([FAST, BERT], 10.0)  # fasttext needs 30 s and stops for nobody; bert would get 10 s
    assert [s.kind for s in plan.skipped] == ["fasttext", "bert"] and plan.step is None
    assert "needs about 30 s, 10 s of the budget left" in plan.skipped[0].reason
    assert make_plan([BERT], MIN_SECONDS - 1).step is None


def test_the_measured_speed_scales_the_priors_not_the_measurements() -> None:
    assert speed_scale([(10.0, 20.0), (1.0, 2.0), (5.0, 10.0)]) == pytest.approx(2.0)
    assert speed_scale([(1.0, 1000.0)]) == 5.0 and speed_scale([]) == 1.0
    slow = make_plan([FAST], 40.0, scale=2.0)  # 30 s * 2 does not fit
    assert slow.step is None and slow.skipped[0].kind == "fasttext"
    measured = KindCost("fasttext", 4.0, 30.0, False, measured=True)
    assert make_plan([measured], 40.0, scale=2.0).step is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0.1, 2000), st.booleans()), min_size=1, max_size=8),
       st.floats(0, 5000), st.floats(0, 100), st.floats(0.2, 5))
def test_a_plan_never_gives_more_than_is_left(specs, left, reserve, scale) -> None:
    kinds = [KindCost(f"k{i}", cost, prior, limited) for i, (cost, prior, limited) in enumerate(specs)]
    plan = make_plan(kinds, left, reserve, scale)
    available = left - reserve
    if plan.step is not None:
        assert plan.step.kind not in {s.kind for s in plan.skipped}
        budget = plan.step.time_limit if plan.step.time_limit is not None else plan.step.estimate
        assert budget <= max(available, 0) + 1e-6
    order = sorted(kinds, key=lambda k: (k.cost, k.name))
    named = [s.kind for s in plan.skipped] + ([plan.step.kind] if plan.step else [])
    assert named == [k.name for k in order][:len(named)]  # cheapest first, nothing overtaken


def test_the_student_keeps_its_estimate_at_most_its_share() -> None:
    assert student_reserve(30.0, 600.0) == 30.0
    assert student_reserve(300.0, 600.0) == pytest.approx(120.0)
    assert student_reserve(30.0, math.inf) == 0.0  # no budget: nothing to keep


def test_budget_settings_are_checked() -> None:
    from cls_app import UserError

    with pytest.raises(UserError, match="--time-budget must be a positive number of minutes"):
        BudgetSettings(time_budget=0).check()


@pytest.mark.slow
def test_the_job_keeps_its_budget_and_records_the_plan(tmp_path, capsys) -> None:
    files = noisy_files(tmp_path)
    out = tmp_path / "run"
    common = ["-q", "train", "--train", str(files["train"]), "--dev", str(files["dev"]), "--test", str(files["test"]),
              "--no-cache", "--with-baselines", "--kinds", "char_svm", "word_nb", "textcnn", "--set",
              "textcnn.embed=16", "--set", "textcnn.filters=16", "--set", "textcnn.buckets=2000", *TINY_MODEL_ARGS]
    rc, _, err = run_main(capsys, *common, "--out", str(tmp_path / "small"), "--time-budget", "0.01")
    assert rc == 2 and "is less than this job needs at least" in err and "give at least" in err
    assert not (tmp_path / "small").exists()
    rc, text, err = run_main(capsys, *common, "--out", str(out), "--time-budget", "0.5")
    assert rc == 0, err
    plan = json.loads((out / "job.json").read_text(encoding="utf-8"))["plan"]
    assert plan["elapsed_s"] <= 0.5 * 60 * 1.1, plan  # the job's own clock (not the other tests' load on the machine)
    assert plan["budget_minutes"] == 0.5 and [s["kind"] for s in plan["ran"]][:2] == ["char_svm", "word_nb"]
    best = json.loads((out / "best.json").read_text(encoding="utf-8"))
    assert best["plan"] == plan
    assert "of the 0.5 minutes budgeted" in text
