"""Recipes, config validation, accelerate and DeepSpeed configs (no training here)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from graphkit.errors import ConfigError
from training.config import (
    CaseFields,
    GrpoFields,
    load_recipe,
    recipe_name,
    resolve_recipe_path,
    shipped_recipes,
)

ACCELERATE_DIR = Path(__file__).resolve().parents[1] / "training" / "accelerate"
REFERENCE_MODELS = ("qwen3-1.7b", "qwen3-8b")


@pytest.fixture(autouse=True)
def _one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)


def _write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_shipped_recipe_loads_and_validates(tmp_path):
    names = {recipe_name(path) for path in shipped_recipes()}
    expected = {f"{model}/{stage}/reference" for model in REFERENCE_MODELS for stage in ("dapt", "sft", "grpo")}
    assert expected | {f"tiny/{stage}/cpu" for stage in ("dapt", "sft", "grpo")} <= names
    for path in shipped_recipes():
        stage = path.parent.name
        recipe = load_recipe(path, stage, workspace=tmp_path, hardware=False)
        assert recipe.config.stage == stage
        assert str(tmp_path) in recipe.config.output_dir, "outputs go to the workspace"


def test_tiny_recipes_are_trainable_on_this_cpu(tmp_path):
    for stage in ("dapt", "sft", "grpo"):
        recipe = load_recipe(f"tiny/{stage}/cpu", stage, workspace=tmp_path)
        assert recipe.trainable and recipe.config.use_cpu and not recipe.config.bf16


@pytest.mark.parametrize("model", REFERENCE_MODELS)
def test_reference_hyperparameters(model, tmp_path, monkeypatch):
    # one process here: 64 completions per step are 8 accumulated batches of 8 (TRL reads the real world size)
    grpo = load_recipe(f"{model}/grpo/reference", "grpo", workspace=tmp_path, hardware=False)
    assert grpo.config.gradient_accumulation_steps * grpo.config.per_device_train_batch_size == 64
    monkeypatch.setattr("training.config.world_size", lambda: 8)  # the reference ran on 8 GPUs
    dapt = load_recipe(f"{model}/dapt/reference", "dapt", workspace=tmp_path, hardware=False)
    sft = load_recipe(f"{model}/sft/reference", "sft", workspace=tmp_path, hardware=False)
    for recipe in (dapt, sft):
        assert recipe.config.learning_rate == 2e-5 and recipe.config.lr_scheduler_type.value == "cosine"
        assert recipe.config.warmup_steps == 0.03
        assert recipe.values["bf16"] is True
    assert (dapt.config.num_train_epochs, dapt.config.max_length, dapt.config.case_kinds) == (1, 8192, ["direct"])
    assert dapt.config.per_device_train_batch_size * 8 * dapt.config.gradient_accumulation_steps == 64
    assert (sft.config.num_train_epochs, sft.config.max_length) == (5, 12288)
    assert set(sft.config.case_kinds) == {"reasoning", "direct"} and sft.config.assistant_only_loss
    assert sft.config.per_device_train_batch_size * 8 * sft.config.gradient_accumulation_steps == 512
    config = grpo.config
    assert (config.num_generations, config.learning_rate) == (16, 2e-6)
    assert (config.max_prompt_length, config.max_completion_length) == (10000, 2048)
    assert (config.temperature, config.top_p, config.top_k) == (0.7, 0.95, 20)
    assert config.prefer_vllm and config.vllm_mode == "colocate"
    assert sft.config.model_name_or_path == str(tmp_path / "runs" / model / "dapt"), "stages chain by default"


def test_global_batch_size_sets_accumulation_for_the_number_of_processes(tmp_path, monkeypatch):
    assert load_recipe("qwen3-1.7b/sft/reference", "sft", workspace=tmp_path, hardware=False) \
        .config.gradient_accumulation_steps == 64
    monkeypatch.setattr("training.config.world_size", lambda: 3)
    with pytest.raises(ConfigError, match=r"global_batch_size: must be a multiple of .*8 x 3 = 24.*got 512"):
        load_recipe("qwen3-1.7b/sft/reference", "sft", workspace=tmp_path, hardware=False)


def test_gpu_recipe_refuses_to_train_without_a_gpu(tmp_path):
    with pytest.raises(ConfigError, match=r"config_reference.yaml: use_cpu: this recipe is for CUDA GPUs"):
        load_recipe("qwen3-1.7b/dapt/reference", "dapt", workspace=tmp_path)


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"learning_rate": "fast"}, r"^override learning_rate=fast: expected a value of type float \(got 'fast'\); fix: "),
        ({"learnin_rate": 1e-4}, r"^override learnin_rate=0.0001: unknown recipe key .*did you mean 'learning_rate'"),
        ({"case_kinds": ["thinking"]}, r"^override case_kinds: must be a non-empty subset of reasoning, direct"),
        ({"max_length": None}, r"override max_length: the record is truncated to max_length tokens"),
        ({"gradient_accumulation_steps": 2}, r"gradient_accumulation_steps: conflicts with global_batch_size"),
        ({"global_batch_size": 5}, r"config_cpu.yaml: global_batch_size: must be a multiple of"),
        ({"packing": True}, r"packing_strategy: bfd packing is padding-free"),
        ({"bf16": True, "fp16": True}, r"fp16: bf16 and fp16 are both on"),
        ({"model_name_or_path": ""}, r"model_name_or_path: no base model given"),
        ({"eval_dataset_path": "held-out.jsonl"}, r"eval_strategy: eval_dataset_path is set but evaluation is off"),
    ],
)
def test_bad_overrides_are_one_line_errors(overrides, pattern, tmp_path):
    with pytest.raises(ConfigError, match=pattern) as info:
        load_recipe("tiny/sft/cpu", "sft", overrides, workspace=tmp_path)
    assert "\n" not in str(info.value) and "fix:" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"rewards": ["bleu"]}, r"rewards: unknown reward 'bleu'.*fix: use names from: set_f1, accuracy"),
        ({"reward_weights": [1.0]}, r"reward_weights: has 1 weights for 2 rewards"),
        ({"global_batch_size": 6, "per_device_train_batch_size": 2}, r"must be a multiple of num_generations \(4\)"),
        ({"vllm_max_model_length": 100}, r"vllm_max_model_length: is shorter than max_prompt_length"),
        ({"num_generations": 1, "global_batch_size": 4}, r"GRPO requires at least 2 generations"),  # TRL's own check
    ],
)
def test_grpo_cross_field_checks(overrides, pattern, tmp_path):
    with pytest.raises(ConfigError, match=pattern):
        load_recipe("tiny/grpo/cpu", "grpo", overrides, workspace=tmp_path)


def test_recipe_file_errors_name_the_file_and_key(tmp_path):
    unknown = _write(tmp_path, "stage: sft\nmodel_name_or_path: m\nmax_length: 64\nlerning_rate: 0.1\nuse_cpu: true\n")
    with pytest.raises(ConfigError, match=rf"^{unknown}: lerning_rate: unknown recipe key"):
        load_recipe(unknown, "sft")
    wrong_stage = _write(tmp_path, "stage: grpo\nmodel_name_or_path: m\nuse_cpu: true\n", "grpo.yaml")
    with pytest.raises(ConfigError, match=r"stage: this recipe is not for the sft stage.*run `ehr-r1 train grpo`"):
        load_recipe(wrong_stage, "sft")
    broken = _write(tmp_path, "stage: sft\nmax_length: [1, 2\n", "broken.yaml")
    with pytest.raises(ConfigError, match=r"broken.yaml line \d+: not valid YAML"):
        load_recipe(broken, "sft")
    listing = _write(tmp_path, "- stage\n", "list.yaml")
    with pytest.raises(ConfigError, match=r"a recipe must be a mapping"):
        load_recipe(listing, "sft")
    with pytest.raises(ConfigError, match=r"option --recipe: no such recipe.*one of: .*tiny/sft/cpu"):
        resolve_recipe_path("tiny/sft/gpu")


def test_workspace_placeholder_needs_a_workspace():
    with pytest.raises(ConfigError, match=r"uses \{workspace\} but no workspace was given"):
        load_recipe("tiny/sft/cpu", "sft")


def test_every_added_field_is_documented():
    for group in (CaseFields, GrpoFields):
        for item in dataclasses.fields(group):
            assert len(item.metadata.get("help", "")) > 20, f"{group.__name__}.{item.name} has no help text"


def test_recipe_hash_follows_the_values(tmp_path):
    first = load_recipe("tiny/sft/cpu", "sft", workspace=tmp_path)
    again = load_recipe("tiny/sft/cpu", "sft", workspace=tmp_path)
    changed = load_recipe("tiny/sft/cpu", "sft", {"learning_rate": 1e-4}, workspace=tmp_path)
    assert first.values_hash == again.values_hash != changed.values_hash
    assert first.file_hash == changed.file_hash


def test_cli_check_and_one_line_errors(cli, workspace_dir):
    result = cli("train", "sft", "--recipe", "qwen3-8b/sft/reference", "--check", "learning_rate=1e-5")
    assert result.exit_code == 0, result.output
    assert '"learning_rate": 1e-05' in result.output
    from typer.testing import CliRunner

    from ehr_r1.cli import app

    bad = CliRunner().invoke(app, ["train", "dapt", "--recipe", "tiny/dapt/cpu", "max_lenght=10"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines() == [
        "error: override max_lenght=10: unknown recipe key (got 'max_lenght'); fix: did you mean 'max_length'?"]


def test_cli_lists_recipes(cli):
    result = cli("train", "recipes", "--fields")
    assert result.exit_code == 0
    assert "qwen3-1.7b/grpo/reference" in result.output and "invalid" not in result.output
    assert "global_batch_size" in result.output


# ----- accelerate and DeepSpeed -------------------------------------------------------------


def _accelerate_configs():
    from accelerate.commands.config.config_args import ClusterConfig

    return {path.stem: ClusterConfig.from_yaml_file(str(path)) for path in sorted(ACCELERATE_DIR.glob("*.yaml"))}


def test_accelerate_configs_parse_with_accelerate():
    configs = _accelerate_configs()
    kinds = {name: config.distributed_type.value for name, config in configs.items()}
    assert kinds == {
        "single_gpu": "NO",
        "multi_gpu": "MULTI_GPU",
        "deepspeed_zero2": "DEEPSPEED",
        "deepspeed_zero3": "DEEPSPEED",
        "deepspeed_zero3_offload": "DEEPSPEED",
        "fsdp": "FSDP",
    }
    assert configs["fsdp"].fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "Qwen3DecoderLayer"


def test_deepspeed_accelerate_configs_point_at_matching_json():
    expected = {"deepspeed_zero2": (2, False), "deepspeed_zero3": (3, False), "deepspeed_zero3_offload": (3, True)}
    for name, config in _accelerate_configs().items():
        if name not in expected:
            continue
        json_path = ACCELERATE_DIR.parents[1] / config.deepspeed_config["deepspeed_config_file"]
        zero = json.loads(json_path.read_text())["zero_optimization"]
        stage, offload = expected[name]
        assert zero["stage"] == stage
        assert ("offload_optimizer" in zero and "offload_param" in zero) == offload
        assert config.deepspeed_config["zero3_init_flag"] == (stage == 3)


def test_deepspeed_validates_the_json_configs(monkeypatch):
    """Runs only where the `deepspeed` extra is installed (it is not in the CPU test install)."""
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (pip install 'ehr-r1[deepspeed]')")
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers import Qwen3Config, TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": "29533"}.items():
        monkeypatch.setenv(key, value)
    args = TrainingArguments(output_dir="unused", per_device_train_batch_size=8, gradient_accumulation_steps=8,
                             use_cpu=True, report_to="none")
    for path in sorted(ACCELERATE_DIR.glob("ds_*.json")):
        raw = json.loads(path.read_text())
        filled = HfTrainerDeepSpeedConfig(copy.deepcopy(raw))
        filled.trainer_config_process(args)
        filled.trainer_config_finalize(args, SimpleNamespace(config=Qwen3Config(hidden_size=2048)), 100)
        assert "auto" not in json.dumps(filled.config), path.name
        parsed = DeepSpeedConfig(filled.config)
        assert parsed.zero_optimization_stage == raw["zero_optimization"]["stage"], path.name
        assert parsed.train_batch_size == 64
        assert (parsed.zero_config.offload_optimizer is not None) == ("offload" in path.stem)
