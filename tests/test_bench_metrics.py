"""EHR-Bench metrics on hand-made cases, including the reference's edge-case behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.metrics import accuracy, answer_text, auprc, auroc, bootstrap_ci, parse_answer, set_prf
from graphkit.errors import InputError


def reference_calculate_em(true_set, pred_set):
    """The reference's eval/score_func.py::calculate_em semantics, restated for comparison."""
    true_set = {item.lower() for item in set(true_set)}
    pred_set = {item.lower() for item in set(pred_set)}
    inter = len(true_set & pred_set)
    p = inter / len(pred_set) if pred_set else 0
    r = inter / len(true_set) if true_set else 0
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0)


# --- parse_answer -----------------------------------------------------------------------------


def test_answer_is_the_text_after_the_last_think_close():
    text = "<think>\nplan </think> not yet\n</think>\n\nCreatinine\nEstimated GFR (MDRD equation)\n"
    assert parse_answer(text) == ["creatinine", "estimated gfr (mdrd equation)"]


def test_missing_answer_is_none_not_empty():
    assert parse_answer(None) is None
    assert parse_answer("<think>still thinking about creatinine") is None
    assert parse_answer("Creatinine") is None  # thinking expected but no </think>
    assert parse_answer("<think>\n...\n</think>\n\n") == []


def test_thinking_off():
    assert parse_answer("yes", thinking=False) == ["yes"]
    assert parse_answer("<think>\n\n</think>\n\nno", thinking=False) == ["no"]
    assert parse_answer("<think> unclosed", thinking=False) is None
    assert answer_text("  yes ", thinking=False) == "  yes "


def test_lines_are_stripped_lowercased_deduplicated_in_order():
    text = "</think>\n  Heparin \nINSULIN\nheparin\n\n\ninsulin  \n"
    assert parse_answer(text) == ["heparin", "insulin"]


def test_list_markers_are_stripped_but_not_item_text():
    text = "</think>\n- Heparin\n* Insulin\n• Aspirin\n1. Metoprolol\n2) Furosemide\n0.9% Sodium Chloride\n1.5 mg Tablet\n-Warfarin"
    assert parse_answer(text) == [
        "heparin", "insulin", "aspirin", "metoprolol", "furosemide", "0.9% sodium chloride", "1.5 mg tablet", "-warfarin",
    ]  # fmt: skip
    assert parse_answer("</think>\n- Heparin\n1. Insulin", strip_markers=False) == ["- heparin", "1. insulin"]


def test_literal_backslash_n_splits_lines_like_the_reference():
    assert parse_answer("</think>Heparin\\nInsulin") == ["heparin", "insulin"]


# --- set_prf ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        (["creatinine", "glucose"], ["Creatinine", "Estimated GFR (MDRD equation)"]),
        (["a", "a", "b"], ["a"]),  # duplicates count once
        ([], ["a"]),  # empty prediction: precision 0
        (["a"], []),  # empty gold: recall 0
        ([], []),  # both empty: 0, not 1
        (["A", "b"], ["a", "B"]),  # case-insensitive
        (["x"], ["y"]),
    ],
)
def test_set_prf_matches_the_reference_edge_cases(pred, gold):
    assert set_prf(pred, gold) == pytest.approx(reference_calculate_em(gold, pred))


def test_set_prf_values():
    assert set_prf(["a", "b"], ["a"]) == pytest.approx((0.5, 1.0, 2 / 3))
    assert set_prf(None, ["a"]) == (0.0, 0.0, 0.0)
    assert set_prf([" a "], ["a"]) == (1.0, 1.0, 1.0)
    with pytest.raises(TypeError):
        set_prf("abc", ["abc"])


def test_blank_line_difference_from_reference_test_py():
    # test.py keeps "" from a blank line as a predicted item; parse_answer drops it.
    raw = "a\n\nb"
    reference_items = [p.strip() for p in raw.split("\n")]
    assert reference_calculate_em(["a", "b"], reference_items)[0] == pytest.approx(2 / 3)
    assert set_prf(parse_answer(raw, thinking=False), ["a", "b"])[0] == 1.0


# --- accuracy -----------------------------------------------------------------------------------


def test_accuracy_exact_and_reference_prefix_rule():
    assert accuracy(["labevents"], "labevents") == 1.0
    assert accuracy(["LabEvents"], "labevents") == 1.0
    assert accuracy(["labevents and more"], "labevents") == 0.0
    assert accuracy(["labevents and more"], "labevents", prefix=True) == 1.0
    assert accuracy("poe_detail", "poe", prefix=True) == 1.0  # the reference's rule is this lenient
    assert accuracy("poe_detail", "poe") == 0.0
    assert accuracy(None, "yes") == 0.0
    assert accuracy([], "yes") == 0.0
    assert accuracy(" Yes ", "yes") == 1.0


# --- AUROC / AUPRC ------------------------------------------------------------------------------


def test_auroc_and_auprc_by_hand():
    labels = ["yes", "no", "yes", "no"]
    scores = [0.9, 0.1, 0.4, 0.5]
    assert auroc(labels, scores) == pytest.approx(3 / 4)  # pairs: 0.9>0.1, 0.9>0.5, 0.4>0.1, 0.4<0.5
    assert auprc([1, 0, 1, 0], scores) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert auroc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)  # ties count half


def test_auroc_undefined_with_one_class_and_bad_input():
    assert math.isnan(auroc([1, 1, 1], [0.1, 0.2, 0.3]))
    assert math.isnan(auprc(["no", "no"], [0.1, 0.2]))
    with pytest.raises(InputError, match="differ in length"):
        auroc([1, 0], [0.3])
    with pytest.raises(InputError, match=r"y_true\[1\]"):
        auroc([1, "maybe"], [0.3, 0.2])
    with pytest.raises(InputError, match=r"y_score\[0\]"):
        auroc([1, 0], [float("nan"), 0.2])
    with pytest.raises(InputError, match=r"y_score\[1\]"):
        auroc([1, 0], [0.1, None])


# --- bootstrap ----------------------------------------------------------------------------------


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [0.0, 0.25, 0.5, 1.0] * 25
    a = bootstrap_ci(np.mean, values, n_resamples=500, seed=7)
    b = bootstrap_ci(np.mean, values, n_resamples=500, seed=7)
    c = bootstrap_ci(np.mean, values, n_resamples=500, seed=8)
    assert a == b and a != c
    assert a.low < a.point < a.high
    assert a.point == pytest.approx(np.mean(values))
    assert a.level == 0.95 and a.n == 100 and a.skipped == 0


def test_bootstrap_of_auroc_resamples_pairs_and_skips_one_class_draws():
    labels = [1] + [0] * 9
    scores = [0.9] + [0.1 * i for i in range(9)]
    ci = bootstrap_ci(auroc, labels, scores, n_resamples=200, seed=0)
    assert ci.point == 1.0
    assert 0 < ci.skipped < 200  # draws without the single positive are undefined
    assert ci.low == ci.high == 1.0


def test_bootstrap_edge_cases():
    empty = bootstrap_ci(np.mean, [], n_resamples=10)
    assert math.isnan(empty.point) and empty.n == 0
    undefined = bootstrap_ci(auroc, [1, 1], [0.2, 0.3], n_resamples=10)
    assert math.isnan(undefined.low) and undefined.skipped == 10
    with pytest.raises(InputError, match="differ in length"):
        bootstrap_ci(auroc, [1, 0], [0.2])
    with pytest.raises(InputError, match="between 0 and 1"):
        bootstrap_ci(np.mean, [1.0], level=95)
