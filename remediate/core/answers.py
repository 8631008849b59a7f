"""The wizard's answers file (``--answers FILE``): YAML, one key per question, for repeatable
runs without a terminal.

Keys are the wizard's question keys (``KEYS`` plus each event flow's optional
``ANSWER_KEYS``). Errors name the file, line and key. Passwords are refused here: with
``--answers`` they are read from stdin, one per line (admin password first when the keyring
has none, then the relay password twice as the wizard asks for it twice).

Example::

    event: 2016
    connection: lab            # a profile name, or "(new connection)" with server/auth/user
    connector: Outbound to Relay
    mechanism: BasicAuthRequireTLS
    username: relay@contoso.lab
    password_source: type      # keyring | type | lab (demo only)
    action: apply              # apply | what-if | save | cancel
    undo: false
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remediate.core.errors import UsageError
from remediate.core.exchange import AuthMechanism
from remediate.core.files import decode_text, read_bounded
from remediate.core.yamlfile import YamlProblem, compose, duplicate_keys

_TEXT = str
_FLAG = bool
MAX_FILE_BYTES = 1024 * 1024  # a few dozen answers; past this the file is not read
CHOICES: dict[str, tuple[str, ...]] = {
    "password_source": ("keyring", "type", "lab"),
    "action": ("apply", "what-if", "save", "cancel"),
    "auth": ("kerberos", "negotiate", "ntlm", "basic", "credssp", "certificate"),
}
KEYS: dict[str, type] = {
    "event_text": _TEXT,
    "event": _TEXT,
    "connection": _TEXT,
    "server": _TEXT,
    "auth": _TEXT,
    "user": _TEXT,
    "save_profile": _FLAG,
    "profile_name": _TEXT,
    "connector": _TEXT,
    "mechanism": _TEXT,
    "username": _TEXT,
    "password_source": _TEXT,
    "save_password": _FLAG,
    "port": _TEXT,
    "smart_host": _TEXT,
    "require_tls_off": _FLAG,
    "action": _TEXT,
    "apply_after_what_if": _FLAG,
    "script_path": _TEXT,
    "undo": _FLAG,
}


def load(path: Path | str, extra_keys: Mapping[str, type] | None = None) -> dict[str, Any]:
    """Read and validate an answers file; UsageError naming file, line and key."""
    # lazy: PyYAML only when a YAML file is read (start-up)
    import yaml

    path = Path(path)
    raw = read_bounded(path, MAX_FILE_BYTES, f"--answers {path}", cannot="cannot read it")
    try:
        node = compose(decode_text(raw))
    except YamlProblem as refused:
        message = f"not valid YAML ({refused.message})" if refused.syntax else refused.message
        raise UsageError(f"{path}:{refused.line}: {message}") from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise UsageError(
            f"{path}:{node.start_mark.line + 1}: the answers must be 'key: value' lines"
        )
    problems = [f"{path}:{d.line}: {d.message}" for d in duplicate_keys(node)]
    hints: list[str] = []
    keys = {**KEYS, **(extra_keys or {})}
    answers: dict[str, Any] = {}
    for key_node, value_node in node.value:
        where = f"{path}:{key_node.start_mark.line + 1}"
        key = str(key_node.value)
        try:
            answers[key] = _value(where, key, value_node, keys)
        except UsageError as bad:
            problems.append(bad.message)
            if bad.hint and bad.hint not in hints:
                hints.append(bad.hint)
    if problems:
        raise AnswersError(path, sorted(problems, key=_line_of), hints)
    return answers


class AnswersError(UsageError):
    """Every problem of the file (``lines()``: ``FILE:LINE: message``), found in one read,
    as bulk files report theirs. One problem is the message itself."""

    def __init__(self, path: Path, problems: list[str], hints: list[str]) -> None:
        count = len(problems)
        message = problems[0] if count == 1 else f"{path}: {count} problems; nothing was run"
        super().__init__(message, hint="; ".join(hints) or None)
        self.problems = problems

    def lines(self) -> list[str]:
        return self.problems if len(self.problems) > 1 else []


def _line_of(problem: str) -> int:
    """The line number of ``FILE:LINE: message`` (the file name may hold colons)."""
    head = problem.split(": ", 1)[0]
    number = head.rpartition(":")[2]
    return int(number) if number.isdigit() else 0


def _value(where: str, key: str, node: Any, keys: Mapping[str, type]) -> Any:
    # lazy: PyYAML only when a YAML file is read (start-up)
    import yaml

    if "password" in key.lower() and key not in keys:
        raise UsageError(
            f"{where}: '{key}': passwords never go in an answers file",
            hint="pipe them on stdin, one per line (admin first, then the relay password twice)",
        )
    if key not in keys:
        allowed = ", ".join(sorted(keys))
        raise UsageError(f"{where}: unknown key '{key}'", hint=f"known keys: {allowed}")
    if not isinstance(node, yaml.ScalarNode):
        raise UsageError(f"{where}: '{key}' must be a single value")
    value = yaml.safe_load(yaml.serialize(node))
    if keys[key] is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: '{key}' must be true or false, not {value!r}")
        return value
    if value is None or isinstance(value, bool):
        raise UsageError(f"{where}: '{key}' needs a text value")
    text = str(value)
    if key in CHOICES and text not in CHOICES[key]:
        raise UsageError(f"{where}: '{key}': {text!r} is not one of {', '.join(CHOICES[key])}")
    if key == "mechanism":
        try:
            text = AuthMechanism.parse(text).value
        except ValueError as exc:
            raise UsageError(f"{where}: 'mechanism': {exc}") from None
    return text
