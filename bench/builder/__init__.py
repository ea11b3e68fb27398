"""The EHR-Bench / EHR-Ins sample builder (``ehr-r1 bench build``).

    from bench.builder import BuildConfig, build
    result = build("graphkit/data/mimic-iv-demo", "out/bench", BuildConfig(per_task=1000, balance=True))

Task definitions (bench/tasks/**.yaml) drive it; see bench.builder.run for the output layout and
bench.builder.samples for the leakage rules.
"""

from bench.builder.plan import BuildConfig, parse_per_task, parse_shard
from bench.builder.run import BuildResult, build

__all__ = ["BuildConfig", "BuildResult", "build", "parse_per_task", "parse_shard"]
