"""The bundled chartevents pool: the demo's chartevents as far as they are openly available.

The MIMIC-IV demo ships without ``icu/chartevents``. Its MEDS export (ODbL, see
``data/PROVENANCE.md``) keeps the numeric values of the chart items, from which a stand-in of
the demo's chartevents was rebuilt (``shared/data/mimic-iv-demo-meds``). The synthesizer needs
only what a pool of chart "moments" is made of: which stay, which charttime, which items, and
their numeric values and units. ``derive`` keeps exactly that, compactly, so a fresh install can
synthesize chartevents without the shared folder:

    python -m graphkit.ehr.synth.chart_pool SRC.csv.gz graphkit/ehr/synth/data/chartevents_pool.parquet
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from graphkit.atomic import atomic_path
from graphkit.errors import InputError

POOL_FILE = Path(__file__).with_name("data") / "chartevents_pool.parquet"
COLUMNS = {
    "stay_id": pl.Int64(),
    "charttime": pl.Datetime("us"),
    "itemid": pl.Int32(),
    "valuenum": pl.Float64(),
    "valueuom": pl.String(),
}


def derive(source: str | Path, target: str | Path = POOL_FILE) -> int:
    """Write the pool from a chartevents CSV (MIMIC-IV column layout); returns its row count.

    Rows without a stay are dropped (they cannot be placed in an ICU stay); values are rounded to
    2 decimals, which undoes the float32 noise of the MEDS export (98.59999847 -> 98.6).
    """
    source = Path(source)
    try:
        frame = (
            pl.scan_csv(source, infer_schema=False)
            .select(
                pl.col("stay_id").cast(pl.Int64),
                pl.col("charttime").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us"),
                pl.col("itemid").cast(pl.Int32),
                pl.col("valuenum").cast(pl.Float64).round(2),
                pl.col("valueuom"),
            )
            .filter(pl.col("stay_id").is_not_null())
            .sort("stay_id", "charttime", "itemid")
            .collect()
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(
            f"cannot read it as a chartevents CSV ({type(exc).__name__})",
            where=str(source),
            fix="pass a chartevents .csv or .csv.gz with stay_id, charttime, itemid, valuenum, valueuom",
        ) from exc
    with atomic_path(target, suffix=".parquet") as tmp:
        frame.write_parquet(tmp, compression="zstd", compression_level=19, statistics=False)
    return frame.height


def load(path: str | Path = POOL_FILE) -> pl.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(
            "the bundled chartevents pool is missing",
            where=str(path),
            fix="reinstall ehr-r1, or rebuild it with `python -m graphkit.ehr.synth.chart_pool SRC.csv.gz`",
        )
    return pl.read_parquet(path).cast(COLUMNS)


if __name__ == "__main__":  # maintenance entry point, see the module docstring
    rows = derive(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else POOL_FILE)
    print(f"{rows} rows")
