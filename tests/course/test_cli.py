"""The softgrad command's help reads as plain text: every option explained, no reStructuredText markup."""

from __future__ import annotations

import re

import pytest

from softgrad.cli import SUBCOMMANDS
from softgrad.cli import main as softgrad


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_option_of_every_command_is_explained_in_plain_text(command, capsys):
    with pytest.raises(SystemExit) as done:
        softgrad([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":mod:" not in text and ":func:" not in text, f"RST markup in {command} --help"
    options = text[text.index("options:"):]
    # an option line with nothing after its name and metavar, and no indented help on the next line
    lines = options.splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"^  (-\S.*?)(\s{2,}\S.*)?$", line)
        if match and not match.group(2):
            following = lines[number + 1] if number + 1 < len(lines) else ""
            assert following.startswith(" " * 8) and not following.lstrip().startswith("-"), (
                f"softgrad {command}: option {match.group(1).strip()!r} has no help text")
