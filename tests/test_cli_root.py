"""The root CLI: every command documented, errors as one line with exit code 2."""

from __future__ import annotations

import re

import typer
from typer.main import get_command
from typer.testing import CliRunner

from ehr_r1.cli import EhrR1Group, app
from graphkit.errors import ConfigError, EhrR1Error


def _leaf_commands(group, prefix: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            yield from _leaf_commands(command, path)
        else:
            yield path, command


def test_every_command_is_documented_in_readme_and_has_help(repo_root):
    readme = (repo_root / "README.md").read_text()
    commands = list(_leaf_commands(get_command(app)))
    assert commands, "the root app registers no commands"
    for path, command in commands:
        assert (command.help or "").strip(), f"ehr-r1 {' '.join(path)} has no --help text"
        assert f"ehr-r1 {' '.join(path)}" in readme, f"`ehr-r1 {' '.join(path)}` is not documented in README.md"


def test_every_command_answers_help():
    runner = CliRunner()
    for path, _ in _leaf_commands(get_command(app)):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)


def test_error_message_names_where_value_and_fix():
    error = ConfigError("must be positive", where="option --patients", value=-3, fix="pass a number >= 1")
    assert str(error) == "option --patients: must be positive (got -3); fix: pass a number >= 1"
    assert isinstance(error, EhrR1Error)


def test_cli_turns_errors_into_one_line_and_exit_code_2():
    probe = typer.Typer(cls=EhrR1Group)

    @probe.command()
    def fail() -> None:
        """Always fails."""
        raise ConfigError("is not a number", where="recipe.yaml: lr", value="fast", fix="write a float such as 2e-5")

    @probe.command()
    def other() -> None:
        """A second command, so that `fail` is a sub-command."""

    result = CliRunner().invoke(probe, ["fail"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: recipe.yaml: lr: is not a number (got 'fast'); fix: write a float such as 2e-5"]


def test_version_flag():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert re.match(r"ehr-r1 \d+\.\d+", result.output)
