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


def test_nbgrader_config_loads_and_releases_with_the_course_address():
    """nbgrader only logs an error in its config file and goes on with its defaults: load it here, strictly."""
    from traitlets.config import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    release = config.GenerateAssignment.preprocessors
    assert release[0] == "softgrad.grader.preprocessors.FillCourseAddress", release
    assert "softgrad.grader.preprocessors.VerifyOutsideKernel" in config.Autograde.autograde_preprocessors


def test_gradebook_and_student_work_are_ignored_by_git():
    ignored = (REPO / ".gitignore").read_text().split()
    for entry in ("gradebook.db", "submitted/", "autograded/", "feedback/", "_build/", ".venv/", "work/"):
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


def _tracked_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    return [REPO / name for name in names if name and (REPO / name).is_file()]


def test_the_course_address_is_written_once():
    """softgrad.about holds the repository's address; every other file reads it (a fork changes one line)."""
    from softgrad import about

    owner_and_name = "/".join(about.REPOSITORY.rstrip("/").split("/")[-2:])
    generated = ("exercises/", "notebooks/")  # written from their sources, which hold placeholders
    copies = []
    for path in _tracked_files():
        relative = path.relative_to(REPO).as_posix()
        if relative == "src/softgrad/about.py" or relative.startswith(generated):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if owner_and_name in text or about.BOOK_URL.removeprefix("https://").rstrip("/") in text:
            copies.append(relative)
    assert not copies, f"the course's address is written out in {copies}: use a {{{{ softgrad.about.NAME }}}} " \
                       "placeholder (filled by softgrad.about.fill) or read softgrad.about"


def test_every_placeholder_names_a_value_of_the_course():
    """Each {{ softgrad.about.NAME }} in the repository's texts is one that softgrad.about.fill fills."""
    from softgrad import about

    for path in _tracked_files():
        if path.suffix not in {".md", ".ipynb"}:  # the texts that are filled in
            continue
        text = path.read_text()
        if about.PLACEHOLDER.search(text):
            about.fill(text)  # raises on an unknown name
            assert not about.PLACEHOLDER.search(about.fill(text)), path


def test_released_notebooks_and_chapter_notebooks_hold_the_address_itself():
    """What students and Colab receive has no placeholder left: the address is filled in."""
    from softgrad import about

    for path in [*sorted((REPO / "exercises").glob("*/*.ipynb")), *sorted((REPO / "notebooks").glob("*.ipynb"))]:
        text = path.read_text()
        assert "{{ softgrad.about." not in text, f"{path.relative_to(REPO)} has an unfilled placeholder"
        assert about.INSTALL in text, f"{path.relative_to(REPO)} does not install the course from its address"
