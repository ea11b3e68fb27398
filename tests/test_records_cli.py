"""`ehr-r1 ehr show`: a record on stdout, a summary on stderr, one-line errors for bad input."""

from __future__ import annotations

import datetime as dt

from graphkit.ehr.serialize import Serializer
from tests.records_data import FIRST_ADMISSION, SUBJECT, demo_timeline

WINDOW = ["--subject", str(SUBJECT), "--hadm", str(FIRST_ADMISSION), "--since", "2157-11-19 08:14",
          "--until", "2157-11-20T08:14:00"]


def test_show_prints_the_record_in_both_styles(cli, demo_dir):
    for style in ("clean", "ehr-r1"):
        result = cli("ehr", "show", demo_dir, *WINDOW, "--style", style)
        assert result.exit_code == 0, result.output
        expected = Serializer(demo_timeline(style), style=style).serialize(
            SUBJECT, FIRST_ADMISSION, dt.datetime(2157, 11, 19, 8, 14), dt.datetime(2157, 11, 20, 8, 14))
        assert result.stdout == expected.text + "\n"
        assert "15 events" in result.stderr


def test_show_a_whole_subject_with_a_budget(cli, demo_dir):
    result = cli("ehr", "show", demo_dir, "--subject", str(SUBJECT), "--max-tokens", "600")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("## Patient Demographics\n")
    assert "older events left out to fit 600 tokens" in result.stderr
    assert "## Admission [" not in result.stdout  # no --hadm: admissions stay events, the latest kept


def test_show_errors_are_one_line_with_exit_code_2(cli, demo_dir):
    cases = {
        ("--subject", "1"): "subject_id: is not a patient of this dataset (got 1); fix: use a subject_id",
        ("--subject", str(SUBJECT), "--hadm", "5"): "hadm_id: is not an admission of subject 10001217 (got 5); "
                                                    "fix: use one of this subject's admissions: 24597018, 27703517",
        ("--subject", str(SUBJECT), "--until", "soon"): "--until: is not a date or time (got 'soon')",
        ("--subject", str(SUBJECT), "--since", "2157-11-20", "--until", "2157-11-19"): "since: is not before",
        ("--subject", str(SUBJECT), "--style", "fancy"): "--style: is not a record style (got 'fancy')",
        ("--subject", str(SUBJECT), "--max-tokens", "0"): "--max-tokens: must be a positive number of tokens",
    }
    for args, message in cases.items():
        result = cli("ehr", "show", demo_dir, *args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, lines)
    missing = cli("ehr", "show", demo_dir / "nowhere", "--subject", "1")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
