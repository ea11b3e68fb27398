"""MIMIC-IV-ED content (triage, vital signs, medication reconciliation, Pyxis, diagnoses).

The demo has no ED module, so values are invented within plausible ranges; patients who are
admitted, and more so those who die, arrive sicker (higher acuity, worse vitals), which keeps the
ED risk labels learnable. Drug names come from the demo's prescriptions and eMAR, diagnosis codes
from the admission's own synthetic diagnoses (or the demo's code frequencies for visits that did
not lead to an admission).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from graphkit.ehr.synth import vocab
from graphkit.ehr.synth.profile import Profile
from graphkit.ehr.synth.skeleton import Skeleton, minute


def build_ed(
    profile: Profile, rng: np.random.Generator, skeleton: Skeleton, diagnoses: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    stays = skeleton.edstays.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_order"))
    n = stays.height
    admitted = stays["hadm_id"].is_not_null().to_numpy()
    died = stays["died"].to_numpy()
    severity = admitted.astype(float) + died.astype(float) + rng.normal(0, 0.6, n)

    ed_diagnosis = _diagnoses(profile, rng, stays, skeleton, diagnoses)
    first = ed_diagnosis.filter(pl.col("seq_num") == 1).select("stay_id", "icd_code", "icd_version")
    first = stays.select("stay_id").join(first, on="stay_id", how="left", maintain_order="left")
    complaints = vocab.complaint_for(first["icd_code"], first["icd_version"], rng.random(n))

    triage = _vitals(rng, n, severity).with_columns(
        pl.Series("subject_id", stays["subject_id"]),
        pl.Series("stay_id", stays["stay_id"]),
        pl.Series("acuity", _acuity(rng, severity)),
        pl.Series("chiefcomplaint", complaints, dtype=pl.String),
        pl.Series("_order", stays["_order"]),
    )
    return {
        "edstays": stays,
        "triage": triage,
        "vitalsign": _vitalsigns(rng, stays, severity),
        "medrecon": _medrecon(profile, rng, stays),
        "pyxis": _pyxis(profile, rng, stays, admitted),
        "diagnosis": ed_diagnosis,
    }


def _acuity(rng: np.random.Generator, severity: np.ndarray) -> np.ndarray:
    level = 3.6 - 0.9 * severity + rng.normal(0, 0.5, len(severity))
    return np.clip(np.round(level), 1, 5).astype(np.float64)


def _vitals(rng: np.random.Generator, n: int, severity: np.ndarray) -> pl.DataFrame:
    """One set of ED vital signs per row, with the few missing values triage sheets have."""
    sick = np.clip(severity, 0, None)
    values = {
        "temperature": np.round(rng.normal(98.1, 0.7, n) + 0.5 * sick * rng.random(n), 1),
        "heartrate": np.round(rng.normal(82, 13, n) + 9 * sick),
        "resprate": np.round(rng.normal(17, 2, n) + 1.5 * sick),
        "o2sat": np.clip(np.round(rng.normal(98, 1.5, n) - 1.5 * sick), 70, 100),
        "sbp": np.round(rng.normal(136, 20, n) - 6 * sick),
        "dbp": np.round(rng.normal(78, 12, n) - 3 * sick),
    }
    frame = pl.DataFrame(values)
    missing = rng.random((n, len(values))) < 0.04
    frame = frame.with_columns(
        [
            pl.when(pl.Series(missing[:, i])).then(None).otherwise(pl.col(c)).alias(c)
            for i, c in enumerate(values)
        ]
    )
    pain = np.clip(np.round(rng.normal(3 + sick, 3, n)), 0, 10).astype(np.int64).astype(str).astype(object)
    pain[rng.random(n) < 0.05] = "UTA"
    return frame.with_columns(pl.Series("pain", pain.tolist(), dtype=pl.String))


def _vitalsigns(rng: np.random.Generator, stays: pl.DataFrame, severity: np.ndarray) -> pl.DataFrame:
    intime = stays["intime"].to_numpy()
    duration = np.maximum(stays["outtime"].to_numpy() - intime, 60)
    counts = np.clip(np.round(duration / (rng.uniform(1.5, 3.0, len(intime)) * 3600)), 1, 30).astype(np.int64)
    owner = np.repeat(np.arange(len(intime)), counts)
    times = minute(intime[owner] + rng.random(len(owner)) * duration[owner])
    vitals = _vitals(rng, len(owner), severity[owner])
    rhythm = np.full(len(owner), None, dtype=object)
    draw = rng.random(len(owner))
    rhythm[draw < 0.12] = "Sinus Rhythm"
    rhythm[draw < 0.02] = "Atrial Fibrillation"
    return vitals.with_columns(
        pl.Series("subject_id", stays["subject_id"].to_numpy()[owner]),
        pl.Series("stay_id", stays["stay_id"].to_numpy()[owner]),
        pl.Series("charttime", times),
        pl.Series("rhythm", rhythm.tolist(), dtype=pl.String),
        pl.Series("_order", np.arange(len(owner), dtype=np.int64)),
    )


def _weighted(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    return rng.choice(len(weights), size=size, p=weights / weights.sum())


def _medrecon(profile: Profile, rng: np.random.Generator, stays: pl.DataFrame) -> pl.DataFrame:
    drugs = profile.home_drugs
    n = stays.height
    counts = np.where(rng.random(n) < 0.75, np.minimum(1 + rng.poisson(5, n), 25), 0)
    owner = np.repeat(np.arange(n), counts)
    picks = _weighted(rng, drugs["weight"].to_numpy().astype(float), len(owner))
    intime = stays["intime"].to_numpy()
    duration = stays["outtime"].to_numpy() - intime
    charted = minute(intime + np.minimum(rng.uniform(600, 7200, n), 0.9 * duration))
    frame = (
        drugs[picks]
        .select("name", "gsn", "ndc")
        .with_columns(
            pl.Series("subject_id", stays["subject_id"].to_numpy()[owner]),
            pl.Series("stay_id", stays["stay_id"].to_numpy()[owner]),
            pl.Series("charttime", charted[owner]),
            pl.Series("_order", np.arange(len(owner), dtype=np.int64)),
        )
        .unique(["stay_id", "name"], keep="first", maintain_order=True)
    )
    code, description = vocab.medication_class(pl.col("name"))
    return frame.with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64).over("stay_id") + 1).alias("etc_rn"),
        code.alias("etccode"),
        description.alias("etcdescription"),
    )


def _pyxis(
    profile: Profile, rng: np.random.Generator, stays: pl.DataFrame, admitted: np.ndarray
) -> pl.DataFrame:
    drugs = profile.dispensed_drugs
    n = stays.height
    counts = np.minimum(rng.poisson(np.where(admitted, 2.5, 1.2)), 12)
    owner = np.repeat(np.arange(n), counts)
    picks = _weighted(rng, drugs["weight"].to_numpy().astype(float), len(owner))
    intime = stays["intime"].to_numpy()
    duration = stays["outtime"].to_numpy() - intime
    times = minute(intime[owner] + rng.random(len(owner)) * duration[owner])
    return (
        drugs[picks]
        .select("name", "gsn")
        .with_columns(
            pl.Series("subject_id", stays["subject_id"].to_numpy()[owner]),
            pl.Series("stay_id", stays["stay_id"].to_numpy()[owner]),
            pl.Series("charttime", times),
            pl.Series("_order", np.arange(len(owner), dtype=np.int64)),
        )
        .with_columns(
            (pl.int_range(pl.len(), dtype=pl.Int64).over("stay_id") + 1).alias("med_rn"),
            pl.lit(1, pl.Int64).alias("gsn_rn"),
        )
    )


def _diagnoses(
    profile: Profile,
    rng: np.random.Generator,
    stays: pl.DataFrame,
    skeleton: Skeleton,
    diagnoses: pl.DataFrame,
) -> pl.DataFrame:
    """ED diagnoses: the admission's leading codes, or 1-2 codes drawn from the demo for the rest."""
    keep = stays.select("stay_id", "hadm_id", "subject_id", "_order").with_columns(
        pl.Series("_keep", 1 + rng.integers(0, 3, stays.height))
    )
    from_admission = (
        keep.drop_nulls("hadm_id")
        .join(diagnoses.select("hadm_id", "seq_num", "icd_code", "icd_version"), on="hadm_id")
        .filter(pl.col("seq_num") <= pl.col("_keep"))
        .select(
            "subject_id",
            "stay_id",
            "seq_num",
            "icd_code",
            "icd_version",
            (pl.col("_order") * 8 + pl.col("seq_num")).alias("_order"),
        )
    )
    alone = (
        keep.filter(pl.col("hadm_id").is_null())
        .join(skeleton.patients.select("subject_id", "gender"), on="subject_id")
        .with_columns(pl.col("_keep").clip(1, 2))
        .sort("_order")
    )
    rows = []
    for (gender,), group in alone.group_by("gender", maintain_order=True):
        pool = profile.diagnoses.get((10, str(gender)))
        if pool is None:
            pool = pl.concat([frame for (version, _), frame in profile.diagnoses.items() if version == 10])
        counts = group["_keep"].to_numpy()
        owner = np.repeat(np.arange(group.height), counts)
        picked = pool[rng.integers(0, pool.height, len(owner))]
        rows.append(
            picked.with_columns(
                pl.Series("subject_id", group["subject_id"].to_numpy()[owner]),
                pl.Series("stay_id", group["stay_id"].to_numpy()[owner]),
                pl.Series("_order", group["_order"].to_numpy()[owner] * 8),
            )
            .unique(["stay_id", "icd_code"], keep="first", maintain_order=True)
            .with_columns((pl.int_range(pl.len(), dtype=pl.Int64).over("stay_id") + 1).alias("seq_num"))
            .with_columns(pl.col("_order") + pl.col("seq_num"))
        )
    frame = pl.concat([from_admission, *rows], how="diagonal_relaxed")
    titles = profile.icd_titles.select("icd_code", "icd_version", pl.col("long_title").alias("icd_title"))
    return frame.join(titles, on=["icd_code", "icd_version"], how="left").with_columns(
        pl.col("icd_title").fill_null("Unspecified condition")
    )
