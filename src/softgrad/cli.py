"""The ``softgrad`` command: ``softgrad <subcommand> [options]`` (also ``python -m softgrad``).

Each subcommand is a module with a ``main(arguments) -> int`` function, registered in
:data:`SUBCOMMANDS` by its name, its module and a one-line description; the module is
imported only when its subcommand runs, so ``softgrad --help`` stays fast. Adding a
subcommand is one line here and a ``main`` in its module.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["SUBCOMMANDS", "main"]

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("softgrad.bench", "measure softmax and cross-entropy against this machine's limits"),
    "check": ("softgrad.grader.check", "run every test of an exercise (hidden ones too) against your own notebook"),
    "start": ("softgrad.grader.start", "copy an exercise into work/ (git-ignored) to work on it there"),
    "grade": ("softgrad.grader.classgrade", "grade a class in parallel (Dask), resumably, and write the reports"),
}
"""name -> (module with a ``main(arguments)``, one-line help)."""


def _usage() -> str:
    lines = ["usage: softgrad <command> [options]", "", "commands:"]
    lines += [f"  {name:10s} {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += ["", "`softgrad <command> --help` describes a command's options."]
    return "\n".join(lines)


def main(arguments: list[str] | None = None) -> int:
    """Dispatch to a subcommand; return the process's exit status."""
    arguments = list(sys.argv[1:] if arguments is None else arguments)
    if not arguments or arguments[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = arguments[0], arguments[1:]
    if name not in SUBCOMMANDS:
        print(f"softgrad: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
