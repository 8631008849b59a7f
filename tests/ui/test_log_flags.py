"""--verbose and --debug wherever an admin puts them (README "--verbose / --debug"): before
the command, after it, and after a sub-action and its arguments (`bulk apply FILE
--verbose`), which argparse would otherwise refuse as an unrecognised argument."""

from __future__ import annotations

import pytest

from remediate.ui.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--verbose", "bulk", "apply", "rows.yaml"],
        ["bulk", "--verbose", "apply", "rows.yaml"],
        ["bulk", "apply", "rows.yaml", "--verbose"],
        ["bulk", "plan", "rows.yaml", "--verbose", "--output", "x.ps1"],
        ["bulk", "undo", "run.json", "--yes", "--verbose"],
        ["show", "--verbose"],
    ],
)
def test_verbose_anywhere(argv: list[str]) -> None:
    args = build_parser(argv).parse_args(argv)
    assert args.verbose is True
    assert getattr(args, "debug", False) is False


def test_debug_after_the_action_and_verbose_before_the_command_both_hold() -> None:
    argv = ["--verbose", "bulk", "apply", "rows.yaml", "--debug"]
    args = build_parser(argv).parse_args(argv)
    assert (args.verbose, args.debug) == (True, True)
