"""EHR-Bench evaluation: run a model on benchmark samples and score it (``ehr-r1 bench eval``).

    from bench.evaluate import EvalConfig, evaluate, parse_model_spec
    run = evaluate("out/bench", parse_model_spec("openai:http://127.0.0.1:8000/v1@qwen3"), "out/eval-qwen3",
                   EvalConfig(limit=100))
    run.results["tasks"]["labevents"]["metrics"]["f1"]   # {"point", "low", "high", ...}

SPEC syntax: bench.evaluate.spec; scoring rules: bench.evaluate.scoring; result files:
bench.evaluate.results; baselines without a model: bench.baselines; reports: bench.report.
"""

from bench.evaluate.results import Run, load_run
from bench.evaluate.runner import EvalConfig, EvalRun, evaluate
from bench.evaluate.spec import ModelSpec, parse_model_spec

__all__ = ["EvalConfig", "EvalRun", "ModelSpec", "Run", "evaluate", "load_run", "parse_model_spec"]
