"""The QuickUMLS text tier: offline (no stopword or spaCy-model download), clean without the nlp extra."""

from __future__ import annotations

import importlib
import subprocess
import sys
from types import SimpleNamespace

import polars as pl
import pytest

import graphkit.extras
from graphkit.errors import ExtraMissingError
from graphkit.kg import BuildConfig, build_graph
from graphkit.link import Vocabulary
from graphkit.link.text import expand_abbreviations, quickumls_matcher
from graphkit.store import open_store
from graphkit.umls import open_release
from graphkit.workspace import Workspace
from tests.kg_data import write_tiny_release


@pytest.fixture()
def tiny_vocab(tmp_path):
    release = open_release(write_tiny_release(tmp_path / "META"))
    return release, Vocabulary.from_release(release)


@pytest.fixture()
def no_quickumls(monkeypatch):
    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name.split(".")[0] == "quickumls":
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(graphkit.extras.importlib, "import_module", fake)


def test_without_the_nlp_extra_text_linking_names_the_install(no_quickumls, tiny_vocab, tmp_path):
    release, vocab = tiny_vocab
    with pytest.raises(ExtraMissingError, match=r"pip install 'ehr-r1\[nlp\]'"):
        quickumls_matcher(vocab, release.fingerprint(), tmp_path / "cache")
    workspace = Workspace(tmp_path / "ws")

    def build(text):
        return build_graph(
            BuildConfig(umls=release.directory, text=text),
            workspace,
            store_factory=lambda: open_store(workspace, "embedded", linger=0),
        )

    with pytest.raises(ExtraMissingError, match="nlp"):
        build("on")
    result = build("auto")  # auto: skipped with a note, the other tiers still link
    assert result.links["text_matching"] == "skipped: QuickUMLS not installed"
    assert result.links["items_by_method"]["icd_code"] >= 1


def test_abbreviation_expansion_replaces_short_forms_outside_their_definition():
    text = "Alanine aminotransferase (ALT) high ALT"
    long_form = SimpleNamespace(start=0, end=2, text="Alanine aminotransferase")

    def short(start, end, start_char, end_char):
        return SimpleNamespace(
            start=start,
            end=end,
            start_char=start_char,
            end_char=end_char,
            _=SimpleNamespace(long_form=long_form),
        )

    doc = SimpleNamespace(
        text=text, _=SimpleNamespace(abbreviations=[short(3, 4, 26, 29), short(6, 7, 36, 39)])
    )
    assert (
        expand_abbreviations(doc)
        == "Alanine aminotransferase (Alanine aminotransferase) high Alanine aminotransferase"
    )
    assert expand_abbreviations(SimpleNamespace(text="plain", _=SimpleNamespace(abbreviations=[]))) == "plain"


def test_quickumls_links_offline_with_the_kinds_semantic_groups(tiny_vocab, tmp_path, monkeypatch):
    pytest.importorskip("quickumls", reason="the nlp extra (pip install 'ehr-r1[nlp]') is not installed")
    import nltk

    def no_download(*args, **kwargs):
        raise AssertionError("QuickUMLS tried to download NLTK data")

    monkeypatch.setattr(nltk, "download", no_download)
    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))
    release, vocab = tiny_vocab
    cache = tmp_path / "cache"
    matcher = quickumls_matcher(vocab, release.fingerprint(), cache)
    index = cache / "quickumls" / release.fingerprint()
    assert (index / "umls-simstring.db").is_dir() and (index / "lowercase.flag").exists()
    described = matcher.describe()
    assert described.startswith("quickumls (")
    try:
        nltk.corpus.stopwords.words("english")
    except LookupError:  # pragma: no cover - the offline fallback must have made it answer
        pytest.fail("stopwords are still missing")
    items = pl.DataFrame(
        {
            "key": ["a", "b", "c", "d", "e"],
            "kind": ["drug", "organism", "drug", "procedure", "drug"],
            "name": [
                "Heparin Sodium 5000 units",
                "ESCHERICHIA COLI, ESBL",
                "Insulin Regular",
                "Heparin flush",
                "Saline line flush after heparin",
            ],
        }
    )
    found = matcher.link(items, threshold=0.85, limit=3)
    assert found.select("key", "cui", "method", "score").rows() == [
        ("a", "C0019134", "quickumls", 1.0),
        ("b", "C0014834", "quickumls", 1.0),
    ]  # "insulin" is a disease here (not a drug); heparin is no procedure; "e" names it in passing
    again = quickumls_matcher(vocab, release.fingerprint(), cache)  # the index is reused
    assert again.link(items, threshold=0.85, limit=3).equals(found)


def test_offline_stopwords_fall_back_to_spacys_list(tmp_path):
    """In a fresh process whose NLTK finds no data at all (and may not download any)."""
    pytest.importorskip("quickumls", reason="the nlp extra (pip install 'ehr-r1[nlp]') is not installed")
    script = f"""
import nltk
nltk.data.path[:] = [{str(tmp_path / "empty")!r}]
def refuse(*a, **k):
    raise SystemExit("download attempted")
nltk.download = refuse
from graphkit.link import text
print(text._stopwords(__import__("pathlib").Path({str(tmp_path / "cache")!r})))
print("the" in nltk.corpus.stopwords.words("english"))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["spaCy stop words (NLTK's corpus is not installed)", "True"]
    assert (tmp_path / "cache" / "nltk_data" / "corpora" / "stopwords" / "english").is_file()
