"""The synthetic UMLS-shaped release: deterministic, readable by the same reader, UMLS-like shape."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from graphkit.umls import open_release
from graphkit.umls.semantic import semantic_types
from graphkit.umls.synthetic import generate_synthetic_rrf

N_CONCEPTS = 5_000
N_RELATIONS = 30_000


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    summary = generate_synthetic_rrf(folder, n_concepts=N_CONCEPTS, n_relations=N_RELATIONS, seed=7)
    return folder, summary


def digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.RRF"))}


def test_same_seed_same_bytes_other_seed_differs(synthetic, tmp_path):
    folder, _ = synthetic
    generate_synthetic_rrf(tmp_path / "again", n_concepts=N_CONCEPTS, n_relations=N_RELATIONS, seed=7)
    generate_synthetic_rrf(tmp_path / "other", n_concepts=N_CONCEPTS, n_relations=N_RELATIONS, seed=8)
    assert digest(folder) == digest(tmp_path / "again")
    assert digest(folder)["MRREL.RRF"] != digest(tmp_path / "other")["MRREL.RRF"]


def test_reader_gets_back_exactly_the_generated_facts(synthetic):
    folder, summary = synthetic
    assert summary["mrrel_rows"] == 2 * N_RELATIONS
    release = open_release(folder, languages=None, suppress=["N", "O", "E", "Y"])
    concepts = release.concepts().collect()
    assert concepts.height == N_CONCEPTS
    edges = release.relations().collect()
    assert edges.height == N_RELATIONS  # both rows of every fact collapse to one edge
    assert edges.select("src", "type", "dst", "sab").is_duplicated().sum() == 0


def test_shape_looks_like_umls(synthetic):
    folder, _ = synthetic
    release = open_release(folder, languages=None, suppress=["N", "O", "E", "Y"])
    concepts = release.concepts().collect()
    known = set(semantic_types())
    assert set(concepts["semantic_types"].explode()) <= known
    assert concepts["semantic_group"].n_unique() >= 10
    assert release.sources().height == 10
    edges = release.relations().collect()
    share = edges.group_by("type").len().with_columns(pl.col("len") / edges.height)
    shares = dict(share.rows())
    assert 0.15 < shares["ISA"] < 0.35 and shares["CHILD_OF"] > 0.05 and shares["NARROWER_THAN"] > 0.04
    assert (
        len([t for t in shares if t not in {"ISA", "CHILD_OF", "NARROWER_THAN"}]) >= 20
    )  # lateral + symmetric
    in_degree = edges.group_by("dst").len()["len"]
    assert in_degree.max() > 20 * in_degree.mean()  # hubs
    # the default filters drop non-English and suppressed atoms but keep every concept (first atom is ENG/N)
    default = open_release(folder)
    assert default.names().collect().height < release.names().collect().height
    assert default.concepts().collect().height == N_CONCEPTS


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError):
        generate_synthetic_rrf(tmp_path, n_concepts=1, n_relations=10)
    with pytest.raises(ValueError):
        generate_synthetic_rrf(tmp_path, n_concepts=3, n_relations=10_000)
