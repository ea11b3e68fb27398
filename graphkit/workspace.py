"""The workspace: one directory that holds everything the engine writes.

Chosen by ``--workspace`` or the ``EHR_R1_WORKSPACE`` environment variable, default
``./ehr-r1-work``. Layout::

    mimic/<name>/     converted MIMIC-IV parquet (graphkit.ehr)
    graph/            the embedded graph database and build state (graphkit.store)
    bench/            EHR-Bench samples and evaluation runs (bench)
    datasets/         EHR-Ins cases (generators)
    runs/             training runs (training)
    curation/         the curation ledger (graphkit.curation)
    cache/            caches that can be deleted at any time
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "EHR_R1_WORKSPACE"
DEFAULT_DIR = "ehr-r1-work"


@dataclass(frozen=True)
class Workspace:
    root: Path

    def sub(self, *parts: str, create: bool = True) -> Path:
        path = self.root.joinpath(*parts)
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def mimic(self) -> Path:
        return self.sub("mimic")

    @property
    def graph(self) -> Path:
        return self.sub("graph")

    @property
    def bench(self) -> Path:
        return self.sub("bench")

    @property
    def datasets(self) -> Path:
        return self.sub("datasets")

    @property
    def runs(self) -> Path:
        return self.sub("runs")

    @property
    def curation(self) -> Path:
        return self.sub("curation")

    @property
    def cache(self) -> Path:
        return self.sub("cache")


def resolve_workspace(option: str | os.PathLike[str] | None = None) -> Workspace:
    """The option wins over the environment variable, which wins over the default."""
    chosen = option or os.environ.get(ENV_VAR) or DEFAULT_DIR
    return Workspace(Path(chosen).expanduser().resolve())
