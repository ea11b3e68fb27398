"""The training part of `ehr-r1 demo`: a tiny SFT then GRPO run on CPU, in seconds."""

from __future__ import annotations

from pathlib import Path

from graphkit.progress import Progress
from training.config import load_recipe
from training.run import train
from training.tiny import build_tiny_model


def tiny_sft_grpo(cases: str | Path, out_dir: str | Path, *, base_model: str | Path | None = None,
                  sft_steps: int = 4, grpo_steps: int = 2, max_samples: int | None = None,
                  progress: Progress | None = None) -> Path:
    """Train the tiny model on EHR-Ins ``cases`` with SFT, then GRPO; return the final model directory.

    ``base_model`` defaults to a tiny random model built under ``out_dir/tiny-model`` (reused when
    already there). ``max_samples`` reads only the first cases of the file (each stage).
    The result loads with plain transformers, like any stage's output.
    """
    out_dir = Path(out_dir)
    if base_model is None:
        base_model = out_dir / "tiny-model"
        if not (base_model / "config.json").exists():
            build_tiny_model(base_model)
    common = {"dataset_path": str(cases), "save_strategy": "no", "resume": False, "max_samples": max_samples}
    sft = load_recipe("tiny/sft/cpu", "sft", {
        **common, "model_name_or_path": str(base_model), "output_dir": str(out_dir / "sft"), "max_steps": sft_steps,
    })
    train(sft, progress)
    grpo = load_recipe("tiny/grpo/cpu", "grpo", {
        **common, "model_name_or_path": str(out_dir / "sft"), "output_dir": str(out_dir / "grpo"),
        "max_steps": grpo_steps,
    })
    return train(grpo, progress).output_dir
