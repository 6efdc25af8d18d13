"""softgrad start: a reader's own copy of an exercise, in the git-ignored work/ folder."""

from __future__ import annotations

import shutil

import pytest
from conftest import REPO

from softgrad.cli import main as softgrad
from softgrad.grader.check import CheckError
from softgrad.grader.start import start


def _course(tmp_path):
    (tmp_path / "solutions").mkdir()
    shutil.copytree(REPO / "exercises" / "ps1_softmax", tmp_path / "exercises" / "ps1_softmax")
    return tmp_path


def test_start_copies_the_exercise_into_work_once(tmp_path, capsys):
    """The first start copies the release; a second keeps the reader's work as it is."""
    course = _course(tmp_path)
    assert softgrad(["start", "ps1_softmax", "--course", str(course)]) == 0
    copy = course / "work" / "ps1_softmax" / "softmax.ipynb"
    released = course / "exercises" / "ps1_softmax" / "softmax.ipynb"
    assert copy.read_bytes() == released.read_bytes()
    out = capsys.readouterr().out
    assert "your copy: work/ps1_softmax/softmax.ipynb" in out
    assert "softgrad check work/ps1_softmax/softmax.ipynb" in out

    copy.write_text(copy.read_text().replace("NotImplementedError", "NotImplementedError  # mine"))
    assert softgrad(["start", "ps1_softmax", "--course", str(course)]) == 0
    assert "# mine" in copy.read_text(), "an existing copy must never be overwritten"
    assert "already there, kept as it is" in capsys.readouterr().out
    assert released.read_bytes() != copy.read_bytes()


def test_start_names_the_exercises_when_the_name_is_wrong(tmp_path, capsys):
    course = _course(tmp_path)
    assert softgrad(["start", "ps1", "--course", str(course)]) == 2
    error = capsys.readouterr().err
    assert "no exercise 'ps1'" in error and "ps1_softmax" in error
    assert not (course / "work").exists()



def test_start_in_chinese_copies_the_chinese_release(tmp_path, capsys):
    """--language zh_CN starts from exercises/zh_CN/ into work/zh_CN/, apart from an English copy."""
    course = _course(tmp_path)
    chinese = REPO / "exercises" / "zh_CN" / "ps1_softmax"
    shutil.copytree(chinese, course / "exercises" / "zh_CN" / "ps1_softmax")
    assert softgrad(["start", "ps1_softmax", "--language", "zh_CN", "--course", str(course)]) == 0
    copy = course / "work" / "zh_CN" / "ps1_softmax" / "softmax.ipynb"
    assert copy.read_bytes() == (chinese / "softmax.ipynb").read_bytes()
    assert "softgrad check work/zh_CN/ps1_softmax/softmax.ipynb" in capsys.readouterr().out
    with pytest.raises(CheckError, match="no exercises in 'fr'"):
        start(course, "ps1_softmax", "fr")
