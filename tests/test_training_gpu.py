"""GPU smoke tests (marker `gpu`, left out of the default run): the tiny model in bf16 on CUDA,
GRPO with vLLM colocated, and the DeepSpeed accelerate launch lines. Run with `pytest -m gpu`
on a CUDA machine; the vLLM / DeepSpeed ones also need those extras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training_data import mixed_cases, write_cases

pytestmark = pytest.mark.gpu
REPO = Path(__file__).resolve().parents[1]
GPU = {"use_cpu": False, "bf16": True}


@pytest.fixture(scope="module", autouse=True)
def _cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from training.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory) -> Path:
    return write_cases(tmp_path_factory.mktemp("cases") / "cases.jsonl", mixed_cases())


def _train(stage: str, overrides: dict):
    from training.config import load_recipe
    from training.run import train

    return train(load_recipe(f"tiny/{stage}/cpu", stage, {**GPU, "save_strategy": "no", **overrides}))


def _changed(before: Path, after: Path) -> bool:
    from safetensors.torch import load_file

    old, new = load_file(str(before / "model.safetensors")), load_file(str(after / "model.safetensors"))
    return any(not old[name].to(new[name].dtype).equal(new[name]) for name in old)


def test_sft_in_bf16_on_gpu(tiny_model, cases_file, tmp_path):
    result = _train("sft", {"model_name_or_path": str(tiny_model), "dataset_path": str(cases_file),
                            "output_dir": str(tmp_path / "sft"), "max_steps": 3})
    assert result.global_step == 3 and result.metrics["train_loss"] > 0
    assert _changed(tiny_model, tmp_path / "sft")


def test_grpo_in_bf16_on_gpu(tiny_model, cases_file, tmp_path):
    result = _train("grpo", {"model_name_or_path": str(tiny_model), "dataset_path": str(cases_file),
                             "output_dir": str(tmp_path / "grpo"), "max_steps": 2})
    assert result.global_step == 2
    rows = [json.loads(line) for line in (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()]
    assert "rewards/set_f1_reward/mean" in rows[0]


def test_grpo_with_vllm_colocated(tiny_model, cases_file, tmp_path):
    pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'ehr-r1[vllm]')")
    recipe_overrides = {"model_name_or_path": str(tiny_model), "dataset_path": str(cases_file),
                        "output_dir": str(tmp_path / "grpo-vllm"), "max_steps": 1, "prefer_vllm": True,
                        "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.2,
                        "vllm_max_model_length": 2048}
    from training.config import load_recipe

    recipe = load_recipe("tiny/grpo/cpu", "grpo", {**GPU, "save_strategy": "no", **recipe_overrides})
    assert recipe.config.use_vllm, "prefer_vllm must switch vLLM on where it is installed and CUDA is present"
    _train("grpo", recipe_overrides)


@pytest.mark.parametrize("accelerate_config", ["deepspeed_zero2", "deepspeed_zero3"])
def test_deepspeed_launch_line(accelerate_config, tiny_model, cases_file, tmp_path):
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (pip install 'ehr-r1[deepspeed]')")
    out = tmp_path / accelerate_config
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               f"training/accelerate/{accelerate_config}.yaml", "--num_processes", "1",
               "-m", "ehr_r1.cli", "train", "sft", "--recipe", "tiny/sft/cpu", "use_cpu=false", "bf16=true",
               f"model_name_or_path={tiny_model}", f"dataset_path={cases_file}", f"output_dir={out}", "max_steps=2",
               "save_strategy=no"]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out)
    assert _changed(tiny_model, out)
