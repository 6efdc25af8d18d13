"""House rules of the repository: configuration, lint, and what stays out of git."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff), "check", "."], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_nbgrader_config_uses_relative_course_paths():
    config = (REPO / "nbgrader_config.py").read_text()
    assert 'c.CourseDirectory.source_directory = "solutions"' in config
    assert 'c.CourseDirectory.release_directory = "exercises"' in config
    assert "CourseDirectory.root" not in config, "no absolute course root: instructors run nbgrader from this folder"
    assert "ClearHiddenTests" in config, "feedback must not show hidden tests"


def test_gradebook_and_student_work_are_ignored_by_git():
    ignored = (REPO / ".gitignore").read_text().split()
    for entry in ("gradebook.db", "submitted/", "autograded/", "feedback/", "_build/", ".venv/"):
        assert entry in ignored, f"{entry} must be in .gitignore"


def test_pre_commit_hooks_are_local_and_cover_the_house_rules():
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    assert all(repo["repo"] == "local" for repo in config["repos"]), "hooks must not need network to install"
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "nbstripout", "check-yaml", "end-of-file-fixer", "trailing-whitespace"} <= set(hooks)
    assert re.search(r"solutions|exercises", hooks["nbstripout"]["files"])


def test_ci_runs_the_test_command_of_the_readme():
    commands = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd ", "export "))]
    assert commands == ["./course test"]
    assert "./course test" in (REPO / "README.md").read_text()


def test_torch_is_pinned_to_the_cpu_wheel_version():
    assert '"torch==2.13.0"' in (REPO / "pyproject.toml").read_text()


def test_the_package_keeps_its_three_jobs_apart():
    """grading -> checks -> library, never the other way: the import-linter contracts in pyproject.toml."""
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_every_module_of_the_package_is_under_a_contract():
    """A new module must be placed in one of the three jobs, or the contracts would not see it."""
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    covered = {module for contract in contracts for module in contract["source_modules"]}
    entry_points = {"softgrad", "softgrad.__main__", "softgrad.cli"}
    package = REPO / "src" / "softgrad"
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        assert module in entry_points or any(module == c or module.startswith(c + ".") for c in covered), (
            f"{module} is in none of the import-linter contracts of pyproject.toml: add it to the teaching library, "
            "the checks (softgrad.testing, softgrad.mistakes) or the grading infrastructure (softgrad.grader)")
