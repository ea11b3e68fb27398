"""The README's two set-up commands stay true: CI runs exactly the README's test command."""

from __future__ import annotations

import re


def _code_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_starts_with_demo_and_test_commands(repo_root):
    readme = (repo_root / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = _code_blocks(setup)
    assert len(blocks) == 2
    demo, tests = blocks
    assert "ehr-r1 demo" in demo and "pip install" in demo
    assert "pytest" in tests and "pip install" in tests


def test_ci_runs_the_readme_test_command(repo_root):
    readme = (repo_root / "README.md").read_text()
    test_command = _code_blocks(readme.split("## Set up", 1)[1])[1]
    ci = (repo_root / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()
