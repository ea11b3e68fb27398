"""`ehr-r1 graph export --format neo4j-admin`: CSV files for ``neo4j-admin database import full``.

At full UMLS scale a first Neo4j build through Bolt takes long; neo4j-admin writes the store
files directly. The export reads the graph through the store (any backend) page by page and
writes, atomically into one folder::

    nodes/<Label>.csv                header  key:ID(<Label>),prop,prop:float,prop:string[]...
    relationships/<TYPE>.csv         header  :START_ID(<Label>),:END_ID(<Label>),prop...
    neo4j-admin-import.sh            the import command with every file
    schema.cypher                    constraints and indexes for cypher-shell, after the import
    manifest.json                    counts, source, version
"""

from __future__ import annotations

import csv
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphkit import __version__
from graphkit.atomic import atomic_dir
from graphkit.errors import ConfigError, GraphError
from graphkit.progress import NULL_PROGRESS, Progress
from graphkit.store import schema
from graphkit.store.base import GraphStore
from graphkit.store.vocab import NODE_LABELS, Vocabulary

FORMATS = ("neo4j-admin",)
ARRAY_DELIMITER = ";"
_ADMIN_TYPES = {"string": "", "int": ":long", "float": ":double", "bool": ":boolean", "string[]": ":string[]"}


def _undeclared(properties: dict, declared: Any, where: str) -> None:
    extra = sorted(set(properties) - set(declared))
    if extra:
        raise GraphError(
            "properties not in the model would be lost by the export",
            where=where,
            value=extra,
            fix="declare them in graphkit/store/vocab.py",
        )


def _node_pages(store: GraphStore, label: str, page: int) -> Iterator[list[dict]]:
    key = NODE_LABELS[label].key
    after = ""
    while True:
        rows = store.run(
            "export_node_page", slots={"node_label": label, "node_key": key}, after=after, limit=page
        )
        if not rows:
            return
        yield rows
        after = rows[-1]["key"]


_PYTHON_TYPES = {"string": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "string[]": (list,)}


def _cell(value: Any, kind: str, where: str) -> Any:
    if value is None:
        return ""
    if not isinstance(value, _PYTHON_TYPES[kind]) or (kind != "bool" and isinstance(value, bool)):
        raise GraphError(
            f"a value does not have the declared type {kind}",
            where=where,
            value=value,
            fix="correct the data or the property type in graphkit/store/vocab.py",
        )
    if kind == "string[]":
        items = [str(item) for item in value]
        if any(ARRAY_DELIMITER in item for item in items):
            raise ConfigError(
                f"an array item contains the array delimiter '{ARRAY_DELIMITER}'",
                where="neo4j-admin export",
                value=items,
            )
        return ARRAY_DELIMITER.join(items)
    if kind == "bool":
        return "true" if value else "false"
    return value


def export_neo4j_admin(
    store: GraphStore, out_dir: str | Path, *, page: int = 50_000, progress: Progress | None = None
) -> dict:
    """Write the whole graph as neo4j-admin import files; returns the manifest."""
    progress = progress or NULL_PROGRESS
    vocab: Vocabulary = store.vocab
    out_dir = Path(out_dir)
    counts: dict[str, dict[str, int]] = {"nodes": {}, "relationships": {}}
    with atomic_dir(out_dir) as tmp:
        (tmp / "nodes").mkdir()
        (tmp / "relationships").mkdir()
        rel_files: dict[str, tuple[Any, csv.writer, list[str]]] = {}
        try:
            present = {row["label"] for row in store.run("labels")}
            unknown = sorted(present - set(NODE_LABELS))
            if unknown:
                raise GraphError(
                    "labels not in the model would be lost by the export",
                    where="neo4j-admin export",
                    value=unknown,
                    fix="declare them in graphkit/store/vocab.py",
                )
            for label, spec in NODE_LABELS.items():
                if label not in present:
                    continue
                props = [p for p in spec.properties if p != spec.key]
                header = [f"{spec.key}:ID({label})"] + [p + _ADMIN_TYPES[spec.properties[p]] for p in props]
                handle = progress.start(f"export {label}")
                with open(tmp / "nodes" / f"{label}.csv", "w", newline="", encoding="utf-8") as f:
                    writer = csv.writer(f)
                    writer.writerow(header)
                    n = 0
                    for rows in _node_pages(store, label, page):
                        for row in rows:
                            values = row["properties"]
                            where = f"{label} {row['key']}"
                            _undeclared(values, spec.properties, where)
                            cells = [_cell(values.get(p), spec.properties[p], f"{where}.{p}") for p in props]
                            writer.writerow([row["key"], *cells])
                        n += len(rows)
                        progress.advance(handle, len(rows))
                        keys = [row["key"] for row in rows]
                        for edge in store.run(
                            "export_relationships_from",
                            slots={"node_label": label, "node_key": spec.key},
                            keys=keys,
                        ):
                            _write_relationship(tmp, vocab, rel_files, counts, edge)
                    counts["nodes"][label] = n
                progress.finish(handle)
        finally:
            for f, _, _ in rel_files.values():
                f.close()
        manifest = {
            "format": "neo4j-admin",
            "ehr_r1_version": __version__,
            "source": {"backend": store.backend},
            "array_delimiter": ARRAY_DELIMITER,
            **counts,
        }
        (tmp / "neo4j-admin-import.sh").write_text(_import_script(counts))
        (tmp / "neo4j-admin-import.sh").chmod(0o755)
        present = set(counts["relationships"])
        statements = [
            item.text
            for item in schema.schema_items(
                vocab.with_relation_types(t for t in present if t not in vocab.types), present
            )
        ]
        (tmp / "schema.cypher").write_text("".join(f"{s};\n" for s in statements))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _write_relationship(tmp: Path, vocab: Vocabulary, files: dict, counts: dict, edge: dict) -> None:
    rel_type = edge["type"]
    spec = vocab.spec(rel_type)
    if rel_type not in files:
        props = list(spec.properties)
        header = [f":START_ID({spec.src})", f":END_ID({spec.dst})"] + [
            p + _ADMIN_TYPES[spec.properties[p]] for p in props
        ]
        f = open(tmp / "relationships" / f"{rel_type}.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed by the caller)
        writer = csv.writer(f)
        writer.writerow(header)
        files[rel_type] = (f, writer, props)
        counts["relationships"][rel_type] = 0
    _, writer, props = files[rel_type]
    dst = edge[f"dst_{NODE_LABELS[spec.dst].key}"]
    values = edge["properties"]
    where = f"{rel_type} {edge['src']}->{dst}"
    _undeclared(values, spec.properties, where)
    writer.writerow(
        [edge["src"], dst] + [_cell(values.get(p), spec.properties[p], f"{where}.{p}") for p in props]
    )
    counts["relationships"][rel_type] += 1


def _import_script(counts: dict) -> str:
    args = ["--overwrite-destination=false", "--id-type=string", f"--array-delimiter={ARRAY_DELIMITER}"]
    args += [f"--nodes={label}=nodes/{label}.csv" for label in counts["nodes"]]
    args += [f"--relationships={t}=relationships/{t}.csv" for t in sorted(counts["relationships"])]
    lines = " \\\n  ".join(shlex.quote(a) for a in args)
    return (
        "#!/bin/sh\n"
        "# Written by `ehr-r1 graph export --format neo4j-admin`: a first build of the ehr-r1 graph in\n"
        "# Neo4j 5. Stop the database first; the target database must not exist yet (or pass\n"
        "# --overwrite-destination=true). Then apply schema.cypher with cypher-shell.\n"
        "# usage: ./neo4j-admin-import.sh [DATABASE]   (default: neo4j)\n"
        'set -e\ncd "$(dirname "$0")"\n'
        f'neo4j-admin database import full "${{1:-neo4j}}" \\\n  {lines}\n'
    )
