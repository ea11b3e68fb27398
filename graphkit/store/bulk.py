"""Bulk loading: input rows/frames checked against the model, and FalkorDB's GRAPH.BULK encoding.

The wire format is falkordb-bulk-loader's (type codes from its ``entity_file.Type``, requests
sent with its ``query_buffer.run``). Its own CSV reader packs every field in Python, about
55 s for 1M edges here; the same tokens built column-wise with polars and numpy take a few
seconds, which is what makes the 20 s budget for 1M edges.

A token is ``name\\0 | uint32 property count | property names\\0...`` followed by one record
per entity: nodes are their property values in header order; relationships are
``uint64 src | uint64 dst`` (node ids: the position of the node in the load) then the values.
A value is one type byte and its payload: string ``\\x03 bytes \\0``, long ``\\x04 int64``,
double ``\\x02 float64``, bool ``\\x01 byte``, array ``\\x05 int64 count values...``, null ``\\x00``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import polars as pl

from graphkit.errors import ConfigError, GraphError
from graphkit.store.vocab import CONCEPT_RELATION, NodeSpec, RelationshipSpec, Vocabulary

POLARS_TYPES: Mapping[str, pl.DataType] = {
    "string": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "string[]": pl.List(pl.String()),
}
CHUNK_ROWS = 200_000
_MAX_ARRAY_ITEMS = 127  # keeps the array header's count byte ASCII, so it is built as text
_COUNT_TEXT = {n: chr(n) + "\x00" * 7 for n in range(_MAX_ARRAY_ITEMS + 1)}  # little-endian int64


def _types():
    from falkordb_bulk_loader.entity_file import Type

    return Type


# ---- input normalization
def as_frame(
    rows: Any, schema: Mapping[str, str], where: str, extra_columns: tuple[str, ...] = ()
) -> pl.DataFrame:
    """Rows (dicts), a DataFrame or a LazyFrame as a DataFrame of exactly the model's columns."""
    allowed = {
        **{name: POLARS_TYPES[kind] for name, kind in schema.items()},
        **{c: pl.String() for c in extra_columns},
    }
    if isinstance(rows, pl.LazyFrame):
        frame = rows.collect()
    elif isinstance(rows, pl.DataFrame):
        frame = rows
    else:
        records = list(rows)
        keys = {key for record in records for key in record}
        _refuse_unknown(keys, allowed, where)
        frame = pl.DataFrame(
            records, schema={key: allowed[key] for key in allowed if key in keys}, strict=False
        )
    _refuse_unknown(frame.columns, allowed, where)
    try:
        return frame.select(
            pl.col(name).cast(dtype, strict=True) for name, dtype in allowed.items() if name in frame.columns
        )
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise ConfigError("a column has the wrong type", where=where, value=str(exc).splitlines()[0]) from exc


def _refuse_unknown(names: Iterable[str], allowed: Mapping[str, Any], where: str) -> None:
    unknown = set(names) - allowed.keys()
    if unknown:
        raise ConfigError(
            "unknown properties",
            where=where,
            value=sorted(unknown),
            fix=f"use {', '.join(allowed)} (graphkit/store/vocab.py)",
        )


def node_frame(label: str, rows: Any, spec: NodeSpec) -> pl.DataFrame:
    frame = as_frame(rows, spec.properties, f"nodes {label}")
    if spec.key not in frame.columns or frame[spec.key].null_count():
        raise ConfigError(f"every {label} needs its key '{spec.key}'", where=f"nodes {label}")
    duplicated = frame.filter(pl.col(spec.key).is_duplicated())[spec.key].unique().sort()
    if len(duplicated):
        raise ConfigError(
            f"{len(duplicated)} {label} keys appear more than once",
            where=f"nodes {label}",
            value=duplicated.head(5).to_list(),
        )
    return frame


def relationship_frame(rel_type: str, rows: Any, spec: RelationshipSpec) -> pl.DataFrame:
    frame = as_frame(rows, spec.properties, f"relationships {rel_type}", extra_columns=("src", "dst"))
    if (
        "src" not in frame.columns
        or "dst" not in frame.columns
        or frame["src"].null_count()
        or frame["dst"].null_count()
    ):
        raise ConfigError(f"every {rel_type} row needs 'src' and 'dst'", where=f"relationships {rel_type}")
    if spec.identity == CONCEPT_RELATION.identity and ("edge_id" not in frame.columns or frame["edge_id"].null_count()):
        frame = frame.with_columns(_edge_ids(frame, rel_type))
    if "status" in spec.properties:  # as the merge path (base.prepare_relationship_rows)
        if "status" not in frame.columns:
            frame = frame.with_columns(pl.lit("active").alias("status"))
        frame = frame.with_columns(pl.col("status").fill_null("active"))
        bad = frame.filter(~pl.col("status").is_in(["active", "rejected"]))["status"].unique()
        if len(bad):
            raise ConfigError(
                "unknown edge status",
                where=f"relationships {rel_type}",
                value=bad.to_list()[:3],
                fix="active or rejected",
            )
    return frame


def _edge_ids(frame: pl.DataFrame, rel_type: str) -> pl.Series:
    """The same ids as ``vocab.edge_id`` (hashlib per row: polars has no stable sha256)."""
    sab = pl.col("sab").fill_null("") if "sab" in frame.columns else pl.lit("")
    keys = frame.select(
        pl.concat_str([pl.col("src"), pl.lit(rel_type), pl.col("dst"), sab], separator="\x1f")
    )
    keys = keys.to_series().to_list()
    existing = frame["edge_id"].to_list() if "edge_id" in frame.columns else [None] * len(frame)
    ids = [
        old or hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
        for old, key in zip(existing, keys, strict=True)
    ]
    return pl.Series("edge_id", ids, dtype=pl.String)


def split_relationships(relationships: Any) -> dict[str, Any]:
    """A mapping type -> rows, or one frame with a ``type`` column, as a mapping."""
    if relationships is None:
        return {}
    if isinstance(relationships, (pl.DataFrame, pl.LazyFrame)):
        frame = relationships.collect() if isinstance(relationships, pl.LazyFrame) else relationships
        if "type" not in frame.columns:
            raise ConfigError("a single relationships frame needs a 'type' column", where="relationships")
        return {
            key[0]: part.drop("type")
            for key, part in frame.partition_by("type", as_dict=True, maintain_order=True).items()
        }
    if isinstance(relationships, Mapping):
        return dict(relationships)
    raise ConfigError("pass a mapping type -> rows or a frame with a 'type' column", where="relationships")


def check_bulk_input(
    vocab: Vocabulary, nodes: Mapping[str, Any] | None, relationships: Any
) -> tuple[Vocabulary, dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """The vocabulary with the load's relation types, and the validated frames by label and type."""
    node_frames = {
        label: node_frame(label, rows, vocab.node_spec(label)) for label, rows in (nodes or {}).items()
    }
    rel_inputs = split_relationships(relationships)
    vocab = vocab.with_relation_types(t for t in rel_inputs if t not in vocab.types)
    rel_frames = {
        rel_type: relationship_frame(rel_type, rows, vocab.spec(rel_type))
        for rel_type, rows in rel_inputs.items()
    }
    return vocab, node_frames, rel_frames


def node_ids(vocab: Vocabulary, node_frames: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Per label, key -> bulk node id (the node's position in the load, labels in order)."""
    ids, next_id = {}, 0
    for label, frame in node_frames.items():
        ids[label] = frame.select(
            pl.col(vocab.node_spec(label).key).alias("key"),
            (pl.int_range(pl.len(), dtype=pl.UInt64) + next_id).alias("node_id"),
        )
        next_id += len(frame)
    return ids


def endpoint_ids(
    vocab: Vocabulary, rel_frames: Mapping[str, pl.DataFrame], ids: Mapping[str, pl.DataFrame]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per type, the bulk node ids of each row's endpoints; GraphError naming missing endpoints.

    Types with the same endpoint labels are resolved in one join (one join per type costs
    several times more: polars builds the key table's hash each time).
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for rel_type in rel_frames:
        spec = vocab.spec(rel_type)
        for label in (spec.src, spec.dst):
            if label not in ids:
                raise GraphError(
                    f"{rel_type} needs {label} nodes in the same bulk load", where=f"relationships {rel_type}"
                )
        groups.setdefault((spec.src, spec.dst), []).append(rel_type)
    result: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for (src_label, dst_label), types in groups.items():
        ends = pl.concat([rel_frames[t].select("src", "dst") for t in types])
        joined = ends.join(
            ids[src_label].rename({"key": "src", "node_id": "src_id"}),
            on="src",
            how="left",
            maintain_order="left",
        ).join(
            ids[dst_label].rename({"key": "dst", "node_id": "dst_id"}),
            on="dst",
            how="left",
            maintain_order="left",
        )
        start = 0
        for rel_type in types:
            part = joined.slice(start, len(rel_frames[rel_type]))
            start += len(part)
            for end, label in (("src", src_label), ("dst", dst_label)):
                missing = part.filter(pl.col(f"{end}_id").is_null())[end]
                if len(missing):
                    raise GraphError(
                        f"{len(missing)} {rel_type} rows name a {label} that is not in the load",
                        where=f"relationships {rel_type} ({end})",
                        value=missing.unique().sort().head(5).to_list(),
                        fix="add the nodes or drop these rows",
                    )
            result[rel_type] = (
                part["src_id"].to_numpy().astype("<u8"),
                part["dst_id"].to_numpy().astype("<u8"),
            )
    return result


# ---- encoding
def header(name: str, properties: list[str]) -> bytes:
    parts = [struct.pack(f"={len(name.encode()) + 1}sI", name.encode(), len(properties))]
    parts += [prop.encode() + b"\x00" for prop in properties]
    return b"".join(parts)


def _text_field(name: str, kind: str) -> pl.Expr:
    """One value as text whose UTF-8 bytes are its GRAPH.BULK encoding (strings, arrays, bools).

    A null propagates through ``+`` and becomes the null marker (cheaper than when/then).
    """
    Type = _types()
    col = pl.col(name)
    if kind == "string":
        value = pl.lit(chr(Type.STRING.value)) + col + pl.lit("\x00")
    elif kind == "bool":
        value = pl.lit(chr(Type.BOOL.value)) + col.replace_strict(
            {True: "\x01", False: "\x00"}, return_dtype=pl.String
        )
    elif kind == "string[]":
        items = col.list.eval(
            pl.lit(chr(Type.STRING.value)) + pl.element().fill_null("") + pl.lit("\x00")
        ).list.join("")
        count = col.list.len().replace_strict(_COUNT_TEXT, return_dtype=pl.String)
        value = pl.lit(chr(Type.ARRAY.value)) + count + items
    else:
        raise AssertionError(kind)
    return value.fill_null(chr(Type.UNKNOWN.value))


def _numeric_field(series: pl.Series, kind: str) -> tuple[np.ndarray, np.ndarray]:
    Type = _types()
    n = len(series)
    block = np.zeros((n, 9), dtype=np.uint8)
    if kind == "int":
        values = series.fill_null(0).to_numpy().astype("<i8")
        block[:, 0] = Type.LONG.value
    else:
        values = series.fill_null(0.0).to_numpy().astype("<f8")
        if not np.isfinite(values).all():
            raise ConfigError("NaN and infinity cannot be stored", where=f"property {series.name}")
        block[:, 0] = Type.DOUBLE.value
    block[:, 1:] = values.view(np.uint8).reshape(n, 8)
    nulls = series.is_null().to_numpy()
    block[nulls, 0] = Type.UNKNOWN.value
    keep = np.ones((n, 9), dtype=bool)
    keep[nulls, 1:] = False
    lengths = np.where(nulls, 1, 9).astype(np.int64)
    return block[keep], lengths


def _text_column(frame: pl.DataFrame, fields: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    text = frame.select(pl.concat_str([_text_field(name, kind) for name, kind in fields]).alias("t"))["t"]
    lengths = text.str.len_bytes().to_numpy().astype(np.int64)
    flat = np.frombuffer(text.str.join("").item().encode("utf-8"), dtype=np.uint8)
    return flat, lengths


def _interleave(columns: list[tuple[np.ndarray, np.ndarray]], n: int) -> bytes:
    """Row-major bytes from per-column (flat bytes, per-row lengths), without a Python loop over rows."""
    row_lengths = np.zeros(n, dtype=np.int64)
    for _, lengths in columns:
        row_lengths += lengths
    row_start = np.cumsum(row_lengths) - row_lengths
    out = np.empty(int(row_lengths.sum()), dtype=np.uint8)
    offset = np.zeros(n, dtype=np.int64)
    for flat, lengths in columns:
        column_start = np.cumsum(lengths) - lengths
        index = np.repeat(row_start + offset - column_start, lengths)
        index += np.arange(len(flat), dtype=np.int64)
        out[index] = flat
        offset += lengths
    return out.tobytes()


def encode_records(
    frame: pl.DataFrame, schema: Mapping[str, str], ends: tuple[np.ndarray, np.ndarray] | None
) -> tuple[list[str], bytes]:
    """(property order, record bytes) of a chunk of nodes (ends None) or relationships."""
    for name, kind in schema.items():
        if name not in frame.columns:
            continue
        if kind == "string" and frame[name].str.contains("\x00", literal=True).any():
            raise ConfigError("text with a NUL character cannot be stored", where=f"property {name}")
        if kind == "string[]" and (frame[name].list.len().max() or 0) > _MAX_ARRAY_ITEMS:
            raise ConfigError(
                f"arrays longer than {_MAX_ARRAY_ITEMS} items are not supported", where=f"property {name}"
            )
    present = [name for name in schema if name in frame.columns]
    numeric = [name for name in present if schema[name] in ("int", "float")]
    textual = [name for name in present if name not in numeric]
    columns: list[tuple[np.ndarray, np.ndarray]] = []
    n = len(frame)
    if ends is not None:
        pair = np.stack(ends, axis=1).astype("<u8")
        columns.append((pair.view(np.uint8).reshape(-1), np.full(n, 16, dtype=np.int64)))
    for name in numeric:
        columns.append(_numeric_field(frame[name], schema[name]))
    if textual:
        columns.append(_text_column(frame, [(name, schema[name]) for name in textual]))
    return numeric + textual, _interleave(columns, n)


def chunks(frame: pl.DataFrame, size: int = CHUNK_ROWS) -> Iterator[tuple[int, pl.DataFrame]]:
    for start in range(0, len(frame), size):
        yield start, frame.slice(start, size)


def send(
    client,
    graph: str,
    first: bool,
    node_count: int,
    relation_count: int,
    label_tokens: list[bytes],
    type_tokens: list[bytes],
) -> None:
    from falkordb_bulk_loader.query_buffer import run

    args: list[Any] = [
        node_count,
        relation_count,
        len(label_tokens),
        len(type_tokens),
        *label_tokens,
        *type_tokens,
    ]
    if first:
        args.insert(0, "BEGIN")
    run(client, graph, args)


def rows_of(frame: pl.DataFrame, size: int) -> Iterable[list[dict]]:
    for _, part in chunks(frame, size):
        yield part.to_dicts()
