"""A UMLS release (licensed Metathesaurus, the open demo graph or the synthetic one) as lazy tables.

    from graphkit.umls import open_release
    umls = open_release("/data/umls/2024AA/META", sabs=["SNOMEDCT_US", "ICD10CM", "LNC"])
    umls.concepts()    # cui, name, semantic_types, semantic_type_names, semantic_group
    umls.codes()       # sab, code, cui, name            (one row per (sab, code, cui))
    umls.atoms()       # cui, sab, code, name, tty, ispref, lat   (names for text linking)
    umls.relations()   # src, type, dst, rel, rela, inverse_rel, inverse_rela, sab  (one per fact)
    umls.materialize(out_dir)   # all of the above as parquet, streamed, plus stats.json

Everything is a polars LazyFrame over the RRF files: nothing is read before a consumer collects
or sinks it, and materialize() sinks with the streaming engine so memory stays bounded by the
group-by state (concept ids and relation keys), not by the files.

Filters, applied everywhere:
- ``sabs``: source vocabularies (MRCONSO/MRREL SAB). None keeps all. An unknown SAB is an error
  listing what the release has (MRSAB, else the SABs seen in MRCONSO).
- ``languages``: MRCONSO LAT values (default ENG). A concept exists when it has at least one
  kept atom; relations are kept only between existing concepts.
- ``suppress``: the SUPPRESS flags kept (default only "N", like MetamorphoSys' default: O =
  obsolete, E = suppressed by editors, Y = suppressed by the source are dropped).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from graphkit.atomic import atomic_path, atomic_write_text
from graphkit.errors import ConfigError, GraphError
from graphkit.hashing import config_hash
from graphkit.umls.relations import RelationNames
from graphkit.umls.rrf import find_rrf, scan_rrf
from graphkit.umls.semantic import UNKNOWN_GROUP, semgroups_frame

log = logging.getLogger(__name__)

_LANG = re.compile(r"^[A-Z]{3}$")
NO_CODE = ("", "NOCODE")


def _preference() -> list[pl.Expr]:
    """Sort keys that put the UMLS-preferred atom first (TS=P, STT=PF, ISPREF=Y), AUI breaking ties."""
    return [
        (pl.col("TS") != "P").cast(pl.Int8),
        (pl.col("STT") != "PF").cast(pl.Int8),
        (pl.col("ISPREF") != "Y").cast(pl.Int8),
        pl.col("AUI"),
    ]


@dataclass
class Release:
    """One RRF release folder with its filters. Build with ``open_release``."""

    directory: Path
    sabs: frozenset[str] | None
    languages: frozenset[str] | None
    suppress: frozenset[str]
    validate: bool = True
    _validated: set[str] = field(default_factory=set, repr=False)
    _names: RelationNames | None = field(default=None, repr=False)

    # ---- files
    def has(self, name: str) -> bool:
        return bool(find_rrf(self.directory, name, required=False))

    def _scan(self, name: str, columns: Sequence[str]) -> pl.LazyFrame:
        check = self.validate and name not in self._validated
        frame = scan_rrf(self.directory, name, columns=columns, validate=check)
        self._validated.add(name)
        return frame

    def fingerprint(self) -> str:
        """Changes when a file of the release or a filter changes (sizes and mtimes, not contents)."""
        files = []
        for name in ("MRCONSO", "MRREL", "MRSTY", "MRSAB", "MRDOC", "MRSAT"):
            for path in find_rrf(self.directory, name, required=False):
                stat = path.stat()
                files.append((path.name, stat.st_size, int(stat.st_mtime)))
        return config_hash({"files": files, "filters": self.filters()})

    def filters(self) -> dict:
        return {
            "sabs": sorted(self.sabs) if self.sabs is not None else None,
            "languages": sorted(self.languages) if self.languages is not None else None,
            "suppress": sorted(self.suppress),
        }

    # ---- sources
    def sources(self) -> pl.DataFrame:
        """Current source vocabularies: sab, version (VSAB), name (SON), language, restriction level."""
        if self.has("MRSAB"):
            frame = (
                self._scan("MRSAB", ["RSAB", "VSAB", "SON", "LAT", "SRL", "CURVER"])
                .filter(pl.col("CURVER") != "N")
                .select(
                    pl.col("RSAB").alias("sab"),
                    pl.col("VSAB").alias("version"),
                    pl.col("SON").alias("name"),
                    pl.col("LAT").alias("language"),
                    pl.col("SRL").alias("restriction_level"),
                )
                .unique("sab", keep="first", maintain_order=True)
                .sort("sab")
                .collect()
            )
            return frame
        sabs = self._scan("MRCONSO", ["SAB"]).select(pl.col("SAB").unique().sort()).collect()["SAB"]
        return pl.DataFrame(
            {
                "sab": sabs,
                "version": sabs,
                "name": sabs,
                "language": [""] * len(sabs),
                "restriction_level": [""] * len(sabs),
            }
        )

    def _check_sabs(self) -> None:
        if self.sabs is None:
            return
        known = set(self.sources()["sab"].to_list())
        unknown = sorted(self.sabs - known)
        if unknown:
            where = find_rrf(self.directory, "MRSAB" if self.has("MRSAB") else "MRCONSO")[0]
            raise ConfigError(
                f"source vocabulary {unknown[0]} is not in this release",
                where=f"--sab ({where})",
                value=unknown[0],
                fix=f"use SABs the release has ({', '.join(sorted(known)[:25])}{' ...' if len(known) > 25 else ''})",
            )

    # ---- atoms, concepts, codes
    def atoms(self) -> pl.LazyFrame:
        """Kept MRCONSO rows: cui, sab, code, name, tty, ts, stt, ispref, aui, lat."""
        self._check_sabs()
        frame = self._scan(
            "MRCONSO", ["CUI", "LAT", "TS", "STT", "ISPREF", "AUI", "SAB", "TTY", "CODE", "STR", "SUPPRESS"]
        )
        conditions = [pl.col("SUPPRESS").is_in(sorted(self.suppress))]
        if self.languages is not None:
            conditions.append(pl.col("LAT").is_in(sorted(self.languages)))
        if self.sabs is not None:
            conditions.append(pl.col("SAB").is_in(sorted(self.sabs)))
        return frame.filter(*conditions).drop("SUPPRESS", "file", "line")

    def concepts(self) -> pl.LazyFrame:
        """One row per kept concept: cui, name (its preferred kept atom), semantic types and group."""
        named = self.atoms().group_by("CUI").agg(pl.col("STR").sort_by(_preference()).first().alias("name"))
        types = self.semantic_types()
        return named.join(types, on="CUI", how="left").select(
            pl.col("CUI").alias("cui"),
            "name",
            pl.col("semantic_types").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("semantic_type_names").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("semantic_group").fill_null(UNKNOWN_GROUP),
        )

    def semantic_types(self) -> pl.LazyFrame:
        """CUI, semantic_types (sorted TUIs), semantic_type_names, semantic_group (GROUP_PRIORITY)."""
        groups = semgroups_frame().lazy()
        return (
            self._scan("MRSTY", ["CUI", "TUI", "STY"])
            .drop("file", "line")
            .unique(["CUI", "TUI"])
            .join(groups.select("TUI", "semantic_group", "group_rank"), on="TUI", how="left")
            .group_by("CUI")
            .agg(
                pl.col("TUI").sort().alias("semantic_types"),
                pl.col("STY").sort_by("TUI").alias("semantic_type_names"),
                pl.col("semantic_group").sort_by(pl.col("group_rank").fill_null(999), "TUI").first(),
            )
            .with_columns(pl.col("semantic_group").fill_null(UNKNOWN_GROUP))
        )

    def codes(self) -> pl.LazyFrame:
        """sab, code, cui, name: each source code and the concept(s) it belongs to (NOCODE dropped)."""
        return (
            self.atoms()
            .filter(~pl.col("CODE").is_in(NO_CODE))
            .group_by("SAB", "CODE", "CUI")
            .agg(pl.col("STR").sort_by(_preference()).first().alias("name"))
            .select(
                pl.col("SAB").alias("sab"), pl.col("CODE").alias("code"), pl.col("CUI").alias("cui"), "name"
            )
        )

    def names(self) -> pl.LazyFrame:
        """cui, sab, code, name, tty, ispref: every kept atom (for normalized-name and QuickUMLS linking)."""
        return self.atoms().select(
            pl.col("CUI").alias("cui"),
            pl.col("SAB").alias("sab"),
            pl.col("CODE").alias("code"),
            pl.col("STR").alias("name"),
            pl.col("TTY").alias("tty"),
            (pl.col("ISPREF") == "Y").alias("ispref"),
            pl.col("LAT").alias("lat"),
        )

    # ---- relations
    def relation_names(self) -> RelationNames:
        if self._names is None:
            if self.has("MRDOC"):
                rows = (
                    self._scan("MRDOC", ["DOCKEY", "VALUE", "TYPE", "EXPL"])
                    .filter(pl.col("TYPE") == "rela_inverse")
                    .select("DOCKEY", "VALUE", "TYPE", "EXPL")
                    .collect()
                    .rows()
                )
                self._names = RelationNames.from_mrdoc_rows(rows)
            else:
                log.warning("no MRDOC.RRF in %s: using the built-in RELA inverse table", self.directory)
                self._names = RelationNames()
        return self._names

    def _raw_relations(self) -> pl.LazyFrame:
        self._check_sabs()
        frame = self._scan("MRREL", ["CUI1", "REL", "CUI2", "RELA", "SAB", "SUPPRESS"])
        conditions = [pl.col("SUPPRESS").is_in(sorted(self.suppress))]
        if self.sabs is not None:
            conditions.append(pl.col("SAB").is_in(sorted(self.sabs)))
        return frame.filter(*conditions).drop("SUPPRESS", "file", "line")

    def reading_table(self) -> pl.DataFrame:
        """How each (REL, RELA) pair present in the kept MRREL rows becomes an edge, with row counts."""
        pairs = self._raw_relations().group_by("REL", "RELA").agg(pl.len().alias("rows")).collect()
        names = self.relation_names()
        records = []
        for rel, rela, rows in pairs.sort("REL", "RELA").iter_rows():
            reading = names.reading(rel, rela)
            records.append(
                {
                    "REL": rel,
                    "RELA": rela,
                    "rows": rows,
                    "keep": reading.keep,
                    "swap": reading.swap,
                    "symmetric": reading.symmetric,
                    "type": reading.type,
                    "rel": reading.rel,
                    "rela": reading.rela,
                    "inverse_rel": reading.inverse_rel,
                    "inverse_rela": reading.inverse_rela,
                    "collapsed": reading.collapsed,
                }
            )
        table = pl.DataFrame(
            records,
            schema={
                "REL": pl.String,
                "RELA": pl.String,
                "rows": pl.UInt32,
                "keep": pl.Boolean,
                "swap": pl.Boolean,
                "symmetric": pl.Boolean,
                "type": pl.String,
                "rel": pl.String,
                "rela": pl.String,
                "inverse_rel": pl.String,
                "inverse_rela": pl.String,
                "collapsed": pl.Boolean,
            },
        )
        uncollapsed = table.filter(pl.col("keep") & ~pl.col("collapsed"))
        if uncollapsed.height:
            log.warning(
                "%d MRREL rows (%d RELA values, e.g. %s) have no known inverse: kept as stated, not collapsed",
                uncollapsed["rows"].sum(),
                uncollapsed.height,
                uncollapsed["RELA"][0] or uncollapsed["REL"][0],
            )
        return table

    def relations(self, concept_cuis: pl.LazyFrame | None = None) -> pl.LazyFrame:
        """One directed edge per fact: src, type, dst, rel, rela, inverse_rel, inverse_rela, sab.

        Only between kept concepts (``concept_cuis``: a frame with column ``cui``; default: the
        CUIs of the kept atoms). Self-loops and XR/DEL rows carry no edge.
        """
        table = self.reading_table().filter("keep").drop("rows", "keep", "collapsed").lazy()
        if concept_cuis is None:
            concept_cuis = self.atoms().select(pl.col("CUI").alias("cui")).unique()
        ends = concept_cuis.select("cui")
        src = (
            pl.when(pl.col("symmetric"))
            .then(pl.min_horizontal("CUI1", "CUI2"))
            .when(pl.col("swap"))
            .then(pl.col("CUI1"))
            .otherwise(pl.col("CUI2"))
        )
        dst = (
            pl.when(pl.col("symmetric"))
            .then(pl.max_horizontal("CUI1", "CUI2"))
            .when(pl.col("swap"))
            .then(pl.col("CUI2"))
            .otherwise(pl.col("CUI1"))
        )
        edges = (
            self._raw_relations()
            .join(table, on=["REL", "RELA"], how="inner")
            .select(
                src.alias("src"),
                "type",
                dst.alias("dst"),
                "rel",
                "rela",
                "inverse_rel",
                "inverse_rela",
                pl.col("SAB").alias("sab"),
            )
            .filter(pl.col("src") != pl.col("dst"))
            .join(ends, left_on="src", right_on="cui", how="semi")
            .join(ends, left_on="dst", right_on="cui", how="semi")
        )
        return (
            edges.group_by("src", "type", "dst", "sab")
            .agg(
                pl.col("rel").min(),
                pl.col("rela").min(),
                pl.col("inverse_rel").min(),
                pl.col("inverse_rela").min(),
            )
            .select("src", "type", "dst", "rel", "rela", "inverse_rel", "inverse_rela", "sab")
        )

    def attributes(self, names: Iterable[str]) -> pl.LazyFrame:
        """MRSAT rows for these attribute names (cui, sab, code, atn, atv), when the release has MRSAT."""
        wanted = sorted(set(names))
        frame = self._scan("MRSAT", ["CUI", "CODE", "ATN", "SAB", "ATV", "SUPPRESS"])
        conditions = [pl.col("ATN").is_in(wanted), pl.col("SUPPRESS").is_in(sorted(self.suppress))]
        if self.sabs is not None:
            conditions.append(pl.col("SAB").is_in(sorted(self.sabs)))
        return frame.filter(*conditions).select(
            pl.col("CUI").alias("cui"),
            pl.col("SAB").alias("sab"),
            pl.col("CODE").alias("code"),
            pl.col("ATN").alias("atn"),
            pl.col("ATV").alias("atv"),
        )

    # ---- materialize
    def materialize(self, out_dir: str | Path) -> dict:
        """Sink concepts, codes, names and relations to parquet in ``out_dir`` (streamed); return stats.

        Rows are sorted by their keys so the same release and filters give the same files.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        outputs = {
            "concepts": (self.concepts(), ["cui"]),
            "codes": (self.codes(), ["sab", "code", "cui"]),
            "names": (self.names(), ["cui", "sab", "code", "name", "tty"]),
        }
        counts: dict[str, int] = {}
        for name, (frame, keys) in outputs.items():
            target = out_dir / f"{name}.parquet"
            with atomic_path(target, suffix=".parquet") as tmp:
                frame.sort(keys).sink_parquet(tmp, engine="streaming")
            counts[name] = pl.scan_parquet(target).select(pl.len()).collect().item()
        concept_cuis = pl.scan_parquet(out_dir / "concepts.parquet").select("cui")
        target = out_dir / "relations.parquet"
        with atomic_path(target, suffix=".parquet") as tmp:
            self.relations(concept_cuis).sort("src", "type", "dst", "sab").sink_parquet(
                tmp, engine="streaming"
            )
        relations = pl.scan_parquet(target)
        counts["relations"] = relations.select(pl.len()).collect().item()
        by_type = (
            relations.group_by("type")
            .agg(pl.len().alias("n"))
            .sort("n", "type", descending=[True, False])
            .collect()
        )
        stats = {
            "directory": str(self.directory),
            "fingerprint": self.fingerprint(),
            "filters": self.filters(),
            "counts": counts,
            "relation_types": dict(by_type.iter_rows()),
        }
        atomic_write_text(out_dir / "stats.json", json.dumps(stats, indent=2, sort_keys=True) + "\n")
        return stats


def open_release(
    directory: str | Path,
    sabs: Iterable[str] | None = None,
    languages: Iterable[str] | None = ("ENG",),
    suppress: Iterable[str] = ("N",),
    validate: bool = True,
) -> Release:
    """A release folder (or its META/) with filters; raises InputError/ConfigError on bad arguments."""
    directory = Path(directory)
    find_rrf(directory, "MRCONSO")
    if languages is not None:
        languages = frozenset(languages)
        for lang in sorted(languages):
            if not _LANG.match(lang):
                raise ConfigError(
                    "a language is a 3-letter UMLS LAT code",
                    where="--language",
                    value=lang,
                    fix="e.g. ENG, SPA, FRE",
                )
    flags = frozenset(suppress)
    bad = sorted(flags - {"N", "O", "E", "Y"})
    if bad:
        raise ConfigError(
            "unknown SUPPRESS flag",
            where="--suppress",
            value=bad[0],
            fix="use N, O, E and/or Y (N = not suppressed)",
        )
    if not flags:
        raise GraphError(
            "no SUPPRESS flag kept: nothing would be read", where="--suppress", fix="keep at least N"
        )
    return Release(
        directory=directory,
        sabs=frozenset(sabs) if sabs is not None else None,
        languages=languages,
        suppress=flags,
        validate=validate,
    )
