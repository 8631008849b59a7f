"""Sub-commands. Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args, env) -> int``.

Command modules must stay cheap to import (``remediate --help`` imports them all): import
pypsrp, questionary, the lab and other heavy modules inside ``run``.
"""

# Order shown in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "playbooks",
    "plan",
    "diagnose",
    "connect",
    "show",
    "apply",
    "undo",
    "bulk",
    "fix",
    "demo",
    "lab",
    "completion",
)
