"""GRPO rewards on hand-written completions (they score with bench.metrics)."""

from __future__ import annotations

import pytest

from training.rewards import REWARDS, accuracy_reward, completion_text, set_f1_reward

GOLD_SET = ["Hypertension", "Sepsis"]


def _think(answer: str, reasoning: str = "## Extraction\n...\n## Reasoning\n...\n## Final Results\n...") -> str:
    return f"<think>\n{reasoning}\n</think>\n\n{answer}"


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (_think("hypertension\nsepsis"), 1.0),  # case-insensitive exact match of the whole set
        (_think("Sepsis\nHypertension\nsepsis"), 1.0),  # order and duplicates do not matter
        (_think("hypertension"), 2 * 1.0 * 0.5 / 1.5),  # p=1, r=0.5
        (_think("hypertension\npneumonia"), 0.5),  # p=0.5, r=0.5
        (_think("- hypertension\n- sepsis"), 1.0),  # list markers are stripped, as the benchmark does
        (_think("pneumonia"), 0.0),
        (_think(""), 0.0),  # empty answer block
        ("hypertension\nsepsis", 0.0),  # no </think>: the answer block is missing
        ("<think>\nstill thinking about hypertension", 0.0),  # never closed
        (_think("ignored</think>\nhypertension\nsepsis"), 1.0),  # only text after the last </think> counts
        ("<think>\n\n</think>\n\nhypertension\nsepsis", 1.0),  # thinking off: empty think block
    ],
)
def test_set_f1_reward(completion, expected):
    assert set_f1_reward([completion], [GOLD_SET], output_type=["set"]) == [pytest.approx(expected)]


@pytest.mark.parametrize(
    ("completion", "gold", "expected"),
    [
        (_think("yes"), "yes", 1.0),
        (_think("Yes"), "yes", 1.0),
        (_think("no"), "yes", 0.0),
        (_think("yes, the patient will be readmitted"), "yes", 0.0),  # whole answer must be the class
        ("<think>\n\n</think>\n\nlabevents", ["labevents"], 1.0),  # next_event, label stored as a 1-item list
        (_think("labevents\nprescriptions"), "labevents", 1.0),  # the first answer line is the answer
        ("yes", "yes", 0.0),  # missing </think>
        (_think(""), "yes", 0.0),  # missing answer
    ],
)
def test_accuracy_reward(completion, gold, expected):
    assert accuracy_reward([completion], [gold], output_type=["binary"]) == [expected]


def test_each_reward_skips_the_other_family_with_none():
    completions = [_think("hypertension\nsepsis"), _think("yes")]
    labels = [GOLD_SET, ["yes"]]
    types = ["set", "binary"]
    assert set_f1_reward(completions, labels, output_type=types) == [1.0, None]
    assert accuracy_reward(completions, labels, output_type=types) == [None, 1.0]


def test_rewards_take_trl_keyword_columns_and_conversational_completions():
    """TRL passes every dataset column and extra keywords; chat completions are lists of messages."""
    completions = [[{"role": "assistant", "content": _think("Sepsis\nHypertension")}],
                   [{"role": "assistant", "content": "no think block"}]]
    kwargs = {"prompts": [[], []], "completion_ids": [[1], [2]], "task": ["dx", "dx"], "trainer_state": None,
              "output_type": ["set", "set"]}
    assert set_f1_reward(completions, [GOLD_SET, GOLD_SET], **kwargs) == [1.0, 0.0]


def test_parsed_reasoning_content_is_put_back_in_front_of_the_answer():
    parsed = [{"role": "assistant", "reasoning_content": "weighing the labs", "content": "yes"}]
    assert completion_text(parsed) == "<think>\nweighing the labs\n</think>\n\nyes"
    assert accuracy_reward([parsed], ["yes"], output_type=["binary"]) == [1.0]


def test_without_output_type_both_rewards_score_every_row():
    assert set_f1_reward([_think("sepsis")], [["sepsis"]]) == [1.0]
    assert accuracy_reward([_think("sepsis")], [["sepsis"]]) == [1.0]


def test_registry_names_the_recipe_rewards():
    assert REWARDS == {"set_f1": set_f1_reward, "accuracy": accuracy_reward}
