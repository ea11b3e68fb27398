"""GPU benchmark: training throughput (tokens/s) of each stage through ehr-r1 against a plain TRL
script with the same settings (target >= 0.95x), and peak GPU memory of DeepSpeed ZeRO-2 vs
ZeRO-3 for the Qwen3-1.7B sft recipe. Needs a CUDA machine; nothing is downloaded: without
``--model`` the weights are random, in the exact Qwen3-1.7B shape (throughput and memory do not
depend on the weights' values).

    python -m perf.train_gpu [--model DIR] [--steps 10] [--gpus N]
    python -m perf.train_gpu --smoke-cpu     # the same flow on CPU with the tiny model (checks the script)

Writes perf/results/train_gpu.{json,md} (train_gpu_smoke.* with --smoke-cpu).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from graphkit.extras import available
from perf.train_common import machine, run_pair, run_worker, stage_table, write_cases, write_results

QWEN3_1_7B = dict(vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                  num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                  tie_word_embeddings=True, rope_theta=1000000.0)


def random_qwen3_1_7b(out: Path) -> Path:
    """Random weights in Qwen3-1.7B's shape with the tiny tokenizer (its ids fit the vocabulary)."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    from training.tiny import TinyModelSpec, build_tiny_model

    tiny = build_tiny_model(out.parent / "tokenizer-source", TinyModelSpec())
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    config = Qwen3Config(**QWEN3_1_7B, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tokenizer.pad_token_id)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="local Qwen3-1.7B directory (default: random weights, same shape)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--gpus", type=int, default=None, help="processes for the ZeRO runs (default: all GPUs)")
    parser.add_argument("--max-length", type=int, default=4096, help="sft/dapt sequence budget for the throughput runs")
    parser.add_argument("--repeats", type=int, default=2, help="runs per stage and implementation (medians)")
    parser.add_argument("--smoke-cpu", action="store_true", help="run the flow on CPU with the tiny model")
    args = parser.parse_args()

    import torch

    if not args.smoke_cpu and not torch.cuda.is_available():
        raise SystemExit("perf.train_gpu needs a CUDA GPU (use --smoke-cpu to check the script on CPU)")
    gpus = args.gpus or (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.smoke_cpu:
            from training.tiny import build_tiny_model

            model, recipes, events = build_tiny_model(root / "model"), "tiny/{stage}/cpu", 8
            sizes = {}
        else:
            model = args.model or random_qwen3_1_7b(root / "model")
            recipes, events = "qwen3-1.7b/{stage}/reference", 80  # ~3-4k-token records
            # one optimizer step = one micro-batch, so steps are comparable across implementations
            sizes = {"per_device_train_batch_size": 2, "global_batch_size": 2, "max_length": args.max_length,
                     "dataloader_num_workers": 2}
        cases = write_cases(root / "cases.jsonl", 64, events)
        common = {"model_name_or_path": str(model), "dataset_path": str(cases), "max_steps": args.steps}
        rows = []
        for stage in ("dapt", "sft", "grpo"):
            stage_sizes = dict(sizes)
            if stage == "grpo" and sizes:
                stage_sizes = {"per_device_train_batch_size": 16, "global_batch_size": 16,
                               "max_prompt_length": args.max_length, "dataloader_num_workers": 2}
            rows += run_pair(stage, recipes.format(stage=stage), {**common, **stage_sizes}, root, args.repeats)
        zero = []
        if not args.smoke_cpu:
            for name in ("deepspeed_zero2", "deepspeed_zero3"):
                if not available("deepspeed"):
                    zero.append({"config": name, "error": "deepspeed is not installed (pip install 'ehr-r1[deepspeed]')"})
                    continue
                launch = ["--config_file", f"training/accelerate/{name}.yaml", "--num_processes", str(gpus)]
                result = run_worker("ehr-r1", "sft", recipes.format(stage="sft"), root / f"{name}.json",
                                    {**common, "max_length": args.max_length, "output_dir": str(root / name)},
                                    launch=launch)
                zero.append({"config": name, "processes": gpus, **result})

    payload = {"benchmark": "train_gpu_smoke" if args.smoke_cpu else "train_gpu", "machine": machine(),
               "args": {k: str(v) for k, v in vars(args).items()}, "stages": rows, "zero": zero}
    table = [
        "# Training throughput: ehr-r1 vs plain TRL" + (" (CPU smoke run, not a measurement)" if args.smoke_cpu else ""),
        "",
        f"Machine: {payload['machine'].get('gpu', 'CPU only')}, git {payload['machine']['git']}, {args.steps} steps.",
        "",
        *stage_table(rows, ["tokens/s", "s/step", "peak GPU GiB"]),
    ]
    if zero:
        table += ["", "| DeepSpeed (sft, Qwen3-1.7B shape) | processes | peak GPU GiB (rank 0) | s/step |", "|---|---|---|---|"]
        for row in zero:
            if "error" in row:
                table.append(f"| {row['config']} | {row.get('processes', '')} | error: {row['error']} | |")
            else:
                table.append(f"| {row['config']} | {row['processes']} | {row.get('peak_gpu_memory_gib', float('nan')):.1f} | "
                             f"{row.get('seconds_per_step', float('nan')):.2f} |")
    print(write_results(payload["benchmark"], payload, table).read_text())


if __name__ == "__main__":
    main()
