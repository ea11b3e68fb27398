"""Text linking with QuickUMLS (extra ``nlp``), offline end to end.

QuickUMLS normally needs three downloads: its index (built by its installer from MRCONSO.RRF
and MRSTY.RRF), spaCy's ``en_core_web_sm`` and NLTK's stopword corpus. Here:

- the index is written by ``build_index`` from the release's own kept atoms (so the --sab,
  language and suppression filters apply, and gzipped or split RRF files work), with
  QuickUMLS's writers, into a folder keyed by the release fingerprint (built once, reused);
- NLTK stopwords: used when installed; otherwise spaCy's English stop words are written as an
  NLTK corpus folder under the cache and put first on ``nltk.data.path`` (no download);
- spaCy: ``en_core_web_sm`` when installed, else a blank English pipeline (QuickUMLS only
  needs its tokenizer; the part-of-speech filters then simply never fire);
- scispacy: when scispacy and one of its models (``en_core_sci_*``) are installed, that model
  with its abbreviation detector tokenizes, and "long form (SF)" definitions in a name let
  the long form stand for the short one; without them this step is skipped (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from graphkit.atomic import atomic_dir, atomic_write_text
from graphkit.errors import InputError
from graphkit.extras import require
from graphkit.link.items import KIND_GROUPS
from graphkit.umls.semantic import semantic_types

log = logging.getLogger(__name__)

SCISPACY_MODELS = ("en_core_sci_sm", "en_core_sci_md", "en_core_sci_lg", "en_core_sci_scibert")
# a match must cover half of the name ("PERIPHERAL" does not name "PERIPHERAL VASCULAR
# DISORDERS"), or, for drugs, start it (a drug string leads with its drug: "Heparin Sodium 5000 units")
MIN_COVERAGE = 0.5
INDEX_FLAGS = {"lowercase.flag": "", "language.flag": "ENG", "database_backend.flag": "unqlite"}
_PURPOSE = "text linking (QuickUMLS)"


def _require_nlp() -> None:
    for module in ("spacy", "nltk", "unqlite", "quickumls_simstring", "quickumls"):
        require(module, "nlp", _PURPOSE)


def build_index(
    names: pl.LazyFrame, concept_types: pl.LazyFrame, out_dir: str | Path, *, progress=None
) -> Path:
    """A QuickUMLS index of ``names`` (cui, name, ispref) with ``concept_types`` (cui, semantic_types).

    Terms are lowercased (the index carries QuickUMLS's lowercase flag). Written into a temporary
    folder renamed over ``out_dir`` at the end, so a killed build leaves no half index.
    """
    _require_nlp()
    from quickumls.toolbox import CuiSemTypesDB, SimstringDBWriter

    from graphkit.progress import NULL_PROGRESS

    progress = progress or NULL_PROGRESS
    terms = (
        names.select(
            "cui",
            pl.col("name").str.strip_chars().str.to_lowercase().alias("term"),
            pl.col("ispref").cast(pl.Boolean),
        )
        .filter(pl.col("term").str.len_chars() > 0)
        .group_by("term", "cui")
        .agg(pl.col("ispref").any())
        .join(concept_types.select("cui", "semantic_types"), on="cui", how="left")
        .sort("term", "cui")
        .collect()
    )
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for name, text in INDEX_FLAGS.items():
            atomic_write_text(tmp / name, text)
        simstring_dir, cuisty_dir = tmp / "umls-simstring.db", tmp / "cui-semtypes.db"
        simstring_dir.mkdir()
        cuisty_dir.mkdir()
        writer = SimstringDBWriter(str(simstring_dir))
        database = CuiSemTypesDB(str(cuisty_dir), database_backend="unqlite")
        handle = progress.start("QuickUMLS index", terms.height)
        previous = None
        for term, cui, ispref, types in terms.iter_rows():
            if term != previous:
                writer.insert(term)
                previous = term
            database.insert(term, cui, list(types or []), 1 if ispref else 0)
            progress.advance(handle)
        progress.finish(handle)
        del writer, database  # closes the simstring and unqlite files before the rename
    log.info("QuickUMLS index of %d terms in %s", terms.height, out_dir)
    return out_dir


def _stopwords(cache_dir: Path) -> str:
    """Make ``nltk.corpus.stopwords`` answer offline; returns where the words come from."""
    import nltk

    try:
        nltk.corpus.stopwords.words("english")
        return "nltk"
    except LookupError:
        pass
    from spacy.lang.en.stop_words import STOP_WORDS

    folder = cache_dir / "nltk_data"
    target = folder / "corpora" / "stopwords" / "english"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, "\n".join(sorted(STOP_WORDS)) + "\n")
    if str(folder) not in nltk.data.path:
        nltk.data.path.insert(0, str(folder))
    nltk.corpus.stopwords.words("english")
    return "spaCy stop words (NLTK's corpus is not installed)"


def _pipeline():
    """(spaCy pipeline, its description, abbreviation detection on?)."""
    import spacy

    scispacy_model = next((m for m in SCISPACY_MODELS if spacy.util.is_package(m)), None)
    if scispacy_model is not None:
        try:
            import scispacy.abbreviation  # noqa: F401 (registers the abbreviation_detector factory)

            nlp = spacy.load(scispacy_model)
            nlp.add_pipe("abbreviation_detector")
            return nlp, scispacy_model, True
        except ImportError:
            log.info(
                "scispacy model %s is installed but scispacy is not: abbreviations are not expanded",
                scispacy_model,
            )
    else:
        log.info("no scispacy model installed: abbreviations in item names are not expanded")
    if spacy.util.is_package("en_core_web_sm"):
        return spacy.load("en_core_web_sm"), "en_core_web_sm", False
    return spacy.blank("en"), "blank English tokenizer (en_core_web_sm not installed)", False


def expand_abbreviations(doc) -> str:
    """The text with each short form that scispacy defined in it replaced by its long form."""
    spans = []
    for abbreviation in getattr(doc._, "abbreviations", []):
        long_form = abbreviation._.long_form
        if abbreviation.start >= long_form.end or abbreviation.end <= long_form.start:
            spans.append((abbreviation.start_char, abbreviation.end_char, long_form.text))
    if not spans:
        return doc.text
    text, last = [], 0
    for start, end, replacement in sorted(spans):
        if start < last:
            continue
        text += [doc.text[last:start], replacement]
        last = end
    return "".join([*text, doc.text[last:]])


class QuickUMLSMatcher:
    """The text tier of graphkit.link.linker: ``link(items, threshold, limit)``."""

    def __init__(
        self, index_dir: str | Path, *, cache_dir: str | Path, similarity: str = "jaccard", window: int = 5
    ):
        _require_nlp()
        index_dir = Path(index_dir)
        if not (index_dir / "umls-simstring.db").is_dir():
            raise InputError(
                "not a QuickUMLS index",
                where=str(index_dir),
                fix="build it with graphkit.link.text.build_index",
            )
        cache_dir = Path(cache_dir)
        self.stopwords = _stopwords(cache_dir)
        self.nlp, self.tokenizer, self.abbreviations = _pipeline()
        from quickumls import QuickUMLS

        # spacy_component=True: QuickUMLS does not spacy.load() a model itself; ours is set below
        self._matcher = QuickUMLS(
            str(index_dir),
            threshold=0.5,
            window=window,
            similarity_name=similarity,
            accepted_semtypes=None,
            spacy_component=True,
        )
        self._matcher.nlp = self.nlp
        self._group_of = {tui: t.group for tui, t in semantic_types().items()}

    def describe(self) -> str:
        abbreviations = "on" if self.abbreviations else "off"
        return f"quickumls ({self.tokenizer}; stop words: {self.stopwords}; abbreviations: {abbreviations})"

    def match(self, text: str) -> list[dict]:
        """QuickUMLS candidates of a text: every span's matches, flattened, each with its ``coverage``
        (the share of the abbreviation-expanded text the span covers) and ``leading`` (it starts it)."""
        if self.abbreviations:
            text = expand_abbreviations(self.nlp(text))
        first = len(text) - len(text.lstrip())
        length = max(len(text.strip()), 1)
        matches = [m for span in self._matcher.match(text, best_match=False) for m in span]
        for m in matches:
            m["coverage"] = (m["end"] - m["start"]) / length
            m["leading"] = m["start"] <= first
        return matches

    def link(self, items: pl.DataFrame, *, threshold: float, limit: int) -> pl.DataFrame:
        """key, cui, method, score for items whose name matches a concept of their kind's groups."""
        rows = []
        for key, kind, name in (
            items.filter(pl.col("name").is_not_null() & pl.col("kind").is_in(list(KIND_GROUPS)))
            .select("key", "kind", "name")
            .iter_rows()
        ):
            found = self._best(name, KIND_GROUPS[kind], threshold, limit, leading_ok=kind == "drug")
            rows += [(key, cui, score) for cui, score in found]
        return pl.DataFrame(
            rows, schema={"key": pl.String, "cui": pl.String, "score": pl.Float64}, orient="row"
        ).select("key", "cui", pl.lit("quickumls").alias("method"), "score")

    def _best(
        self, text: str, groups: Iterable[str], threshold: float, limit: int, *, leading_ok: bool = False
    ) -> list[tuple[str, float]]:
        groups = tuple(groups)
        best: dict[str, tuple[float, int, int]] = {}
        for match in self.match(text):
            ranks = [
                groups.index(g) for g in (self._group_of.get(t) for t in match["semtypes"]) if g in groups
            ]
            covered = match["coverage"] >= MIN_COVERAGE or (leading_ok and match["leading"])
            if not ranks or match["similarity"] < threshold or not covered:
                continue
            rank = (round(match["similarity"], 4), -min(ranks), int(match["preferred"]))
            if rank > best.get(match["cui"], (-1.0, 0, 0)):
                best[match["cui"]] = rank
        if not best:
            return []
        top = max(best.values())[:2]
        chosen = sorted(
            (cui for cui, rank in best.items() if rank[:2] == top), key=lambda c: (-best[c][2], c)
        )
        return [(cui, top[0]) for cui in chosen[:limit]]


def quickumls_matcher(vocab, fingerprint: str, cache_dir: str | Path, *, progress=None) -> QuickUMLSMatcher:
    """A matcher over ``vocab`` (graphkit.link.linker.Vocabulary), its index built once per fingerprint.

    ``vocab.concepts`` must carry ``semantic_types``. Raises ExtraMissingError naming ``pip install 'ehr-r1[nlp]'`` when QuickUMLS is missing.
    """
    _require_nlp()
    cache_dir = Path(cache_dir)
    index_dir = cache_dir / "quickumls" / fingerprint
    if not (index_dir / "umls-simstring.db").is_dir():
        build_index(vocab.names, vocab.concepts, index_dir, progress=progress)
    return QuickUMLSMatcher(index_dir, cache_dir=cache_dir)
