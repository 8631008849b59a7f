"""Sub-commands. Each module ``remediate.ui.commands.<name>`` defines ``add_arguments(parser)``
and ``run(args, env) -> int`` (``DESCRIPTION`` and ``EPILOG`` optional); its one-line help is
here, so ``remediate --help`` and ``--version`` import no command module at all.
``changing`` is what apply, undo, show and plan share around ``remediate.api``.

Command modules must stay cheap to import anyway (the command run and tab completion import
them): import pypsrp, questionary, the lab and other heavy modules inside ``run``.
"""

# name -> one-line help, in the order --help shows them.
COMMANDS: dict[str, str] = {
    "playbooks": "list the playbooks (event, id, purpose): the shipped ones and your own",
    "plan": "print the PowerShell a fix would run (dry run; nothing is sent)",
    "diagnose": "read event 2016/2002 records (text, wevtutil XML, CSV, or the server's log with "
    "--since) and say which fix applies",
    "connect": "save, list, remove and test connections to the Exchange Management Shell",
    "show": "list the Send connectors (smart hosts, port, authentication, TLS) from Exchange",
    "apply": "fix a Send connector: show the plan, confirm, back up, run it, show before/after",
    "undo": "restore a connector's settings from a backup taken by apply (or write the undo "
    "script)",
    "bulk": "fix many connectors over many endpoints from one YAML or CSV file",
    "fix": "guided fix: diagnose a Send connector, fix it step by step, verify the queue drains",
    "demo": "start the embedded lab and fix its broken Send connector with the guided wizard",
    "lab": "run the simulated Exchange lab (WSMan/PSRP endpoint and SMTP smart host)",
    "completion": "print the tab-completion script for bash, zsh or PowerShell",
}
