"""Playbooks: YAML data, loaded and validated into frozen dataclasses.

A playbook names its event (source, id, the documented message with each ``%N`` field named,
from which the linear-time message parser is compiled), the documented user actions
(paraphrased), the inputs it takes (``Input``: type, validation, question, ``when``, choices,
default, in the way of copier's Question), the reads it makes, the fixes it can propose (each
fix says which input sets which Set-SendConnector parameter: ``sets``), the read-back steps,
and its diagnosis checks by name (Python supplies checks, YAML composes them). Steps point at
templates in ps_templates/.

The shipped playbooks live in playbooks/; an admin's own load from
``$XDG_CONFIG_HOME/remediate/playbooks/``. A broken playbook is reported as one
``PlaybookError`` line, ``FILE:LINE: field: problem``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

import yaml

from remediate.core.errors import PlaybookError, UsageError
from remediate.core.exchange import PROPERTY_NAMES
from remediate.core.paths import config_dir
from remediate.core.resources import playbooks_dir, templates_dir
from remediate.core.yamlfile import Loader, YamlProblem, compose, duplicate_keys

# Built-in input name (a FixOptions field) -> its type. A playbook declaring one of these
# names must give it this type; the planner knows what each one does.
INPUT_TYPES: dict[str, str] = {
    "mechanism": "mechanism",
    "username": "username",
    "reenter_credential": "flag",
    "smart_hosts": "hosts",
    "port": "port",
    "require_tls": "bool",
    "tls_auth_level": "tls_auth_level",
    "tls_domain": "domain",
    "enable": "flag",
    "protocol_logging": "protocol_logging",
}
# Types any other input may have (the planner converts and validates them).
GENERIC_TYPES = frozenset(
    {"text", "domain", "host", "hosts", "port", "int", "bool", "flag", "choice"}
)
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Names an input may not take: the commands' own options and the wizard's own answers-file
# keys (remediate.core.answers.KEYS), which mean something else there.
RESERVED = frozenset(
    {
        "connector", "playbook", "profile", "server", "auth", "user", "json", "output", "yes",
        "what_if", "event", "event_text", "connection", "action", "undo", "script_path",
        "save_profile", "profile_name", "password_source", "save_password", "smart_host",
        "require_tls_off", "apply_after_what_if",
    }
)  # fmt: skip
_FIELD_KEY = re.compile(r"%(\d{1,2})")  # a bounded digit run: linear

READ_TEMPLATES = frozenset({"get_send_connector", "get_queue", "retry_queue"})
FIX_TEMPLATES = frozenset(
    {
        "set_send_connector",
        "set_send_connector_routing",
        "set_send_connector_auth",
        "set_send_connector_tls",
        "set_send_connector_state",
    }
)
TEMPLATE_SUFFIX = ".ps1.j2"
# Set-SendConnector parameters a fix may set (the connector properties the tool models).
SETTABLE = frozenset(PROPERTY_NAMES.values()) - {"Name", "Guid"}
USER_DIR_NAME = "playbooks"
# The diagnosis checks a playbook may name; ``remediate.diagnose.playbook_checks.CHECKS`` implements
# exactly these (a test holds them equal). Named here so loading a playbook needs no probes.
CHECK_NAMES = frozenset(
    {
        "event-hints",
        "show-connector",
        "configuration",
        "enabled",
        "dns-routing",
        "certificate",
        "smart-host-probe",
        "reachability",
        "server-view",
        "event-endpoint",
        "queues",
        "queue-last-error",
        "related-events",
        "escalation",
    }
)
# Where the wizard's own stages live: ``flow: NAME`` is the module WIZARD_PACKAGE.NAME.
WIZARD_PACKAGE = "remediate.ui.wizard"
_FLOW = re.compile(r"flow_[a-z0-9_]{1,40}")


@dataclass(frozen=True)
class EventField:
    """One ``%N`` of the message: the name the parser gives it, and how it is cleaned."""

    key: str  # "%1"
    name: str  # "connector"
    text: str  # what it holds, for people
    max_length: int | None = None
    forbid: str | None = None  # text the field may not contain (a repeated message prefix)
    remove_prefix: str | None = None  # dropped from the value, any letter case


@dataclass(frozen=True)
class MessagePattern:
    """The message as the parser reads it: literal text and field names alternating
    (starting with text), how the last field ends, and the fields' bounds. Data only:
    ``remediate.diagnose.eventmatch`` scans with it (str.find, never a regex made from the text)."""

    parts: tuple[str, ...]
    last_ends_at_sentence: bool = True
    limits: tuple[tuple[str, int], ...] = ()
    forbid: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EventInfo:
    id: int
    source: str
    symbolic_name: str | None
    severity: str
    message: str
    category: str | None = None
    named: tuple[EventField, ...] = ()  # %1, %2, ... with their names
    pattern: MessagePattern | None = None  # compiled from ``message``; None without fields

    def field(self, name: str) -> EventField | None:
        return next((f for f in self.named if f.name == name), None)


@dataclass(frozen=True)
class Action:
    """One documented user action, in the project's own words."""

    id: str
    text: str


@dataclass(frozen=True)
class Condition:
    """``when``: ask the question only when another input is given (``NAME``), or equals /
    differs from a value (``NAME == VALUE``, ``NAME != VALUE``)."""

    input: str
    op: str = ""  # "", "==" or "!="
    value: str = ""

    def holds(self, answers: Mapping[str, Any]) -> bool:
        have = answers.get(self.input)
        if not self.op:
            return have not in (None, False, "", ())
        same = str(have).lower() == self.value.lower()
        return same if self.op == "==" else not same


@dataclass(frozen=True)
class Input:
    """One input, as copier's Question: its type, validation, the question the wizard asks,
    when it is asked, its choices and default."""

    name: str
    type: str
    help: str
    question: str = ""
    choices: tuple[str, ...] = ()
    default: str | int | bool | None = None
    when: Condition | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    where: str = ""  # FILE:LINE of its declaration

    @property
    def builtin(self) -> bool:
        return self.name in INPUT_TYPES

    @property
    def prompt(self) -> str:
        return self.question or (self.help[:1].upper() + self.help[1:] + ":")


@dataclass(frozen=True)
class StepSpec:
    """A read, fix or read-back: which template, which documented action, and why; a fix also
    says which input sets which Set-SendConnector parameter (``sets``, in order)."""

    template: str
    action: str
    reason: str
    id: str = ""
    sets: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    purpose: str
    event: EventInfo
    actions: tuple[Action, ...]
    inputs: tuple[Input, ...]
    reads: tuple[StepSpec, ...]
    fixes: tuple[StepSpec, ...]
    verify: tuple[StepSpec, ...]
    source: Path
    checks: tuple[str, ...] = ()
    flow: str | None = None  # the wizard's own stages (remediate/ui/wizard/<flow>.py), if any

    @property
    def input_names(self) -> frozenset[str]:
        return frozenset(i.name for i in self.inputs)

    def action(self, action_id: str) -> Action:
        for a in self.actions:
            if a.id == action_id:
                return a
        raise KeyError(action_id)


def user_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The admin's own playbooks: ``$XDG_CONFIG_HOME/remediate/playbooks``."""
    return config_dir(environ) / USER_DIR_NAME


def load_all(directory: Path | None = None) -> tuple[Playbook, ...]:
    """Every playbook, sorted by event: those in ``directory``, or (by default) the shipped
    ones and the admin's own. An id or event number used twice is an error."""
    dirs = (directory,) if directory is not None else _default_dirs(*_dir_keys())
    files = tuple(f for d in dirs for f in _yaml_files(d))
    found = _SETS.get(files)
    if found is None:
        found = _checked_set(
            [_load_cached(Path(path), (mtime, size)) for path, mtime, size in files]
        )
        _SETS.clear()  # one set is current; a changed file makes another
        _SETS[files] = found
    return found


def _dir_keys() -> tuple[str | None, ...]:
    """What the default directories depend on (the environment ``paths`` reads)."""
    return tuple(os.environ.get(v) for v in ("XDG_CONFIG_HOME", "HOME", "APPDATA"))


@functools.lru_cache(maxsize=8)
def _default_dirs(*keys: str | None) -> tuple[Path, Path]:
    """The shipped and the admin's directories, worked out once per environment (event
    parsing asks for the playbooks once per record)."""
    return playbooks_dir(), user_dir()


def _yaml_files(directory: Path) -> list[tuple[str, int, int]]:
    """(path, mtime, size) of each ``*.yaml`` file in ``directory``, by name; none when the
    directory is not there (an admin without playbooks of their own)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    out = []
    for entry in sorted(entries, key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        try:
            stat = entry.stat()
        except OSError:
            continue
        if S_ISREG(stat.st_mode):
            out.append((entry.path, stat.st_mtime_ns, stat.st_size))
    return out


def _checked_set(books: list[Playbook]) -> tuple[Playbook, ...]:
    seen: dict[str, Playbook] = {}
    for book in books:
        for key in (book.id, str(book.event.id)):
            if key in seen:
                raise PlaybookError(
                    f"{_label(book.source)}:1: id: {key!r} is also used by "
                    f"{_label(seen[key].source)}"
                )
            seen[key] = book
    _same_extra_types(books)
    return tuple(sorted(books, key=lambda b: b.event.id))


def _same_extra_types(books: list[Playbook]) -> None:
    """An input beyond the built-in ones becomes one command-line option for every playbook
    that has it, so its type must be the same everywhere."""
    first: dict[str, Input] = {}
    for book in books:
        for item in book.inputs:
            if item.builtin:
                continue
            other = first.setdefault(item.name, item)
            if (other.type, other.choices) != (item.type, item.choices):
                raise PlaybookError(
                    f"{item.where}: inputs: {item.name!r} has type {item.type!r} here but "
                    f"{other.type!r} in {other.where}"
                )


def extra_inputs(books: tuple[Playbook, ...]) -> dict[str, Input]:
    """The inputs beyond the built-in ones, by name (the first declaration)."""
    out: dict[str, Input] = {}
    for book in books:
        for item in book.inputs:
            if not item.builtin:
                out.setdefault(item.name, item)
    return out


# (path, mtime, size) -> parsed playbook, and the files of the last set -> that set: event
# parsing asks for the playbooks once per record, plans and bulk runs once per connector; a
# changed, added or removed file is seen by its directory listing and parsed again.
_LOADED: dict[tuple[str, int, int], Playbook] = {}
_SETS: dict[tuple[tuple[str, int, int], ...], tuple[Playbook, ...]] = {}


def _load_cached(path: Path, stamp: tuple[int, int]) -> Playbook:
    key = (str(path), *stamp)
    if key not in _LOADED:
        _LOADED[key] = load_file(path)
    return _LOADED[key]


def find(name: str, directory: Path | None = None) -> Playbook:
    """A playbook by its id or its event number (``2016``)."""
    books = load_all(directory)
    for book in books:
        if name.strip().lower() in (book.id.lower(), str(book.event.id)):
            return book
    known = ", ".join(f"{b.event.id} ({b.id})" for b in books)
    raise UsageError(
        f"no playbook named {name!r}; known playbooks: {known}",
        hint="run 'remediate playbooks' to list them",
    )


def _label(path: Path) -> str:
    """Shipped playbooks by file name; an admin's own by their whole path."""
    try:
        path.relative_to(playbooks_dir())
    except ValueError:
        return str(path)
    return path.name


# A playbook is a page or two; past this the file is not read (a mistaken or crafted file
# would otherwise be parsed whole into memory).
MAX_PLAYBOOK_BYTES = 256 * 1024


def load_file(path: Path) -> Playbook:
    label = _label(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PLAYBOOK_BYTES + 1)
        if len(raw) > MAX_PLAYBOOK_BYTES:
            raise PlaybookError(
                f"{label}:1: larger than {MAX_PLAYBOOK_BYTES // 1024} KiB; not read"
            )
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(f"{label}:1: cannot be read ({exc})") from exc
    try:
        data, lines = _compose(text)
    except YamlProblem as refused:
        what = f"is not valid YAML ({refused.message})" if refused.syntax else refused.message
        raise PlaybookError(f"{label}:{refused.line}: {what}") from None
    return _Reader(path, label, lines).playbook(data)


def _compose(text: str) -> tuple[Any, dict[str, int]]:
    """The document as plain data (safe loading: no Python objects; no aliases, no deep
    nesting: ``remediate.core.yamlfile``), and the line of every field path (``inputs[0].type``)."""
    node = compose(text)
    if node is None:
        return None, {"": 1}
    lines: dict[str, int] = {"": 1}
    _mark(node, "", lines)
    loader = Loader("")
    try:
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _mark(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for twice in duplicate_keys(node):
            field = f"{path}: " if path else ""
            raise YamlProblem(twice.line, f"{field}{twice.message}")
        for key, value in node.value:
            child = f"{path}.{key.value}" if path else str(key.value)
            lines[child] = key.start_mark.line + 1
            _mark(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{path}[{index}]"
            lines[child] = item.start_mark.line + 1
            _mark(item, child, lines)


def template_parameters(template: str) -> frozenset[str] | None:
    """The parameters a ps_templates/ step template allows (its ``command(step, [...])``
    list), or None when the template has no such list."""
    try:
        text = (templates_dir() / (template + TEMPLATE_SUFFIX)).read_text(encoding="utf-8")
    except OSError:
        return None
    start = text.find("command(step, [")
    end = text.find("]", start)
    if start < 0 or end < 0:
        return None
    names = text[start + len("command(step, [") : end].split(",")
    return frozenset(n.strip().strip("\"'") for n in names if n.strip())


class _Reader:
    """Validates one file's data; every error names the file, the line and the field."""

    def __init__(self, path: Path, label: str, lines: dict[str, int]) -> None:
        self.path = path
        self.label = label
        self.lines = lines
        self.templates = {
            p.name.removesuffix(TEMPLATE_SUFFIX)
            for p in templates_dir().glob("*" + TEMPLATE_SUFFIX)
        }

    def where(self, field: str) -> str:
        """FILE:LINE of ``field``, or of the nearest enclosing field that is there."""
        probe = field
        while probe and probe not in self.lines:
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return f"{self.label}:{self.lines.get(probe, 1)}"

    def fail(self, field: str, problem: str) -> PlaybookError:
        return PlaybookError(f"{self.where(field)}: {field or '(top level)'}: {problem}")

    def mapping(self, data: Any, field: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(field, "must be a mapping")
        return data

    def text(self, data: dict[str, Any], key: str, field: str, *, optional: bool = False) -> Any:
        value = data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{field}.{key}" if field else key, "must be a non-empty string")
        return value.strip()

    def literal(self, data: dict[str, Any], key: str, field: str) -> str | None:
        """Text matched as it is: its spaces count (``"Send connector "``)."""
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{field}.{key}", "must be a non-empty string")
        return value

    def number(self, data: dict[str, Any], key: str, field: str) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(f"{field}.{key}", "must be a whole number, 0 or more")
        return value

    def items(self, data: dict[str, Any], key: str, *, optional: bool = False) -> list[Any]:
        value = data.get(key)
        if optional and value is None:
            return []
        if not isinstance(value, list) or not value:
            raise self.fail(key, "must be a non-empty list")
        return value

    def playbook(self, data: Any) -> Playbook:
        data = self.mapping(data, "")
        pb_id = self.text(data, "id", "")
        actions = tuple(
            self.action(a, f"actions[{i}]") for i, a in enumerate(self.items(data, "actions"))
        )
        action_ids = [a.id for a in actions]
        if len(set(action_ids)) != len(action_ids):
            raise self.fail("actions", "action ids must be unique")
        inputs: list[Input] = []
        for i, x in enumerate(self.items(data, "inputs")):
            inputs.append(self.input(x, f"inputs[{i}]", inputs))
        reads = self.specs(data, "reads", READ_TEMPLATES, action_ids, inputs)
        fixes = self.specs(data, "fixes", FIX_TEMPLATES, action_ids, inputs)
        fix_templates = [f.template for f in fixes]
        if len(set(fix_templates)) != len(fix_templates):
            raise self.fail("fixes", "each template may be used by one fix only")
        return Playbook(
            id=pb_id,
            title=self.text(data, "title", ""),
            purpose=self.text(data, "purpose", ""),
            event=self.event(data.get("event")),
            actions=actions,
            inputs=tuple(inputs),
            reads=reads,
            fixes=fixes,
            verify=self.specs(data, "verify", READ_TEMPLATES, action_ids, inputs),
            source=self.path,
            checks=self.checks(data),
            flow=self.flow(data),
        )

    # --- event and its parser

    def event(self, data: Any) -> EventInfo:
        data = self.mapping(data, "event")
        event_id = data.get("id")
        if not isinstance(event_id, int) or isinstance(event_id, bool) or event_id <= 0:
            raise self.fail("event.id", "must be a positive event number")
        fields = self.mapping(data.get("fields"), "event.fields")
        named = tuple(self.event_field(str(k), v) for k, v in fields.items())
        names = [f.name for f in named]
        if len(set(names)) != len(names):
            raise self.fail("event.fields", "each field needs a name of its own")
        message = self.text(data, "message", "event")
        ends = data.get("last_field", "sentence")
        if ends not in ("sentence", "word"):
            raise self.fail("event.last_field", "must be sentence or word")
        return EventInfo(
            id=event_id,
            source=self.text(data, "source", "event"),
            symbolic_name=self.text(data, "symbolic_name", "event", optional=True),
            severity=self.text(data, "severity", "event"),
            message=message,
            category=self.text(data, "category", "event", optional=True),
            named=named,
            pattern=self.pattern(message, named, ends == "sentence") if named else None,
        )

    def event_field(self, key: str, value: Any) -> EventField:
        field = f"event.fields.{key}"
        if not _FIELD_KEY.fullmatch(key):
            raise self.fail(field, "fields are the message's %1, %2, ...")
        value = self.mapping(value, field)
        name = self.text(value, "name", field)
        if not _NAME.fullmatch(name):
            raise self.fail(f"{field}.name", "lower-case letters, digits and _ only")
        return EventField(
            key=key,
            name=name,
            text=self.text(value, "text", field),
            max_length=self.number(value, "max_length", field),
            forbid=self.literal(value, "forbid", field),
            remove_prefix=self.literal(value, "remove_prefix", field),
        )

    def pattern(
        self, message: str, named: tuple[EventField, ...], sentence: bool
    ) -> MessagePattern:
        """The message's literal text and named fields, for ``eventmatch``'s scanner (which
        finds each literal with str.find, never a regex built from the message)."""
        by_key = {f.key: f for f in named}
        flat = " ".join(message.split())
        pieces = _FIELD_KEY.split(flat)  # literal, digits, literal, digits, ..., literal
        parts: list[str] = []
        used: list[str] = []
        for index, piece in enumerate(pieces[:-1]):
            if index % 2 == 0:
                if not piece:
                    raise self.fail(
                        "event.message",
                        "must start with text, and fields need text between them (the parser "
                        "finds where each field ends by the text that follows it)",
                    )
                parts.append(piece)
                continue
            found = by_key.get(f"%{piece}")
            if found is None:
                raise self.fail("event.message", f"%{piece} has no named entry in event.fields")
            if found.key in used:
                raise self.fail("event.message", f"{found.key} occurs twice")
            used.append(found.key)
            parts.append(found.name)
        if not parts:
            raise self.fail("event.message", "names none of event.fields (%1, %2, ...)")
        tail = pieces[-1]
        if sentence and tail and not tail.startswith("."):
            raise self.fail(
                "event.message",
                "the last field ends at a full stop: put '.' after it, or set "
                "event.last_field: word",
            )
        unused = [f.key for f in named if f.key not in used]
        if unused:
            raise self.fail("event.fields", f"{', '.join(unused)} is not in event.message")
        if "connector" not in (by_key[k].name for k in used):
            raise self.fail("event.fields", "one field must be named connector")
        return MessagePattern(
            tuple(parts),
            last_ends_at_sentence=sentence,
            limits=tuple((f.name, f.max_length) for f in named if f.max_length is not None),
            forbid=tuple((f.name, f.forbid) for f in named if f.forbid is not None),
        )

    # --- actions, inputs, steps, checks

    def action(self, data: Any, field: str) -> Action:
        data = self.mapping(data, field)
        return Action(
            id=self.text(data, "id", field), text=" ".join(self.text(data, "text", field).split())
        )

    def input(self, data: Any, field: str, earlier: list[Input]) -> Input:
        data = self.mapping(data, field)
        name = self.text(data, "name", field)
        kind = self.text(data, "type", field)
        if name in INPUT_TYPES:
            if kind != INPUT_TYPES[name]:
                raise self.fail(
                    f"{field}.type", f"input {name!r} has type {INPUT_TYPES[name]!r}, not {kind!r}"
                )
        elif any(word in name for word in ("password", "secret")):
            raise self.fail(
                f"{field}.name",
                f"unknown input {name!r}: a secret is never an input (it would be on the "
                "command line); a relay password is asked for by the credential step",
            )
        elif not _NAME.fullmatch(name) or name in RESERVED:
            raise self.fail(
                f"{field}.name",
                f"unknown input {name!r}: a new input's name is lower-case letters, digits and "
                "_, and not one the commands or the wizard use themselves; built in: "
                + ", ".join(sorted(INPUT_TYPES)),
            )
        elif kind not in GENERIC_TYPES:
            raise self.fail(
                f"{field}.type",
                f"{kind!r} is not a type; use one of " + ", ".join(sorted(GENERIC_TYPES)),
            )
        if name in (i.name for i in earlier):
            raise self.fail(f"{field}.name", f"input {name!r} is declared twice")
        choices = data.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, str) and c for c in choices):
            raise self.fail(f"{field}.choices", "must be a list of non-empty strings")
        if kind == "choice" and not choices:
            raise self.fail(f"{field}.choices", "a choice input needs its choices")
        default = data.get("default")
        if default is not None and not isinstance(default, str | int | bool):
            raise self.fail(f"{field}.default", "must be a string, number or true/false")
        if choices and default is not None and str(default) not in choices:
            raise self.fail(f"{field}.default", f"{default!r} is not one of its choices")
        return Input(
            name=name,
            type=kind,
            help=self.text(data, "help", field),
            question=self.text(data, "question", field, optional=True) or "",
            choices=tuple(choices),
            default=default,
            when=self.condition(data.get("when"), f"{field}.when", earlier),
            minimum=self.number(data, "min", field),
            maximum=self.number(data, "max", field),
            max_length=self.number(data, "max_length", field),
            where=self.where(field),
        )

    def condition(self, value: Any, field: str, earlier: list[Input]) -> Condition | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, "must be NAME, NAME == VALUE or NAME != VALUE")
        for op in ("==", "!="):
            name, found, wanted = value.partition(op)
            if found:
                condition = Condition(name.strip(), op, wanted.strip().strip("\"'"))
                break
        else:
            condition = Condition(value.strip())
        if condition.input not in (i.name for i in earlier):
            raise self.fail(field, f"{condition.input!r} is not an input declared before it")
        return condition

    def specs(
        self,
        data: dict[str, Any],
        key: str,
        allowed: frozenset[str],
        action_ids: list[str],
        inputs: list[Input],
    ) -> tuple[StepSpec, ...]:
        out = []
        for i, item in enumerate(self.items(data, key)):
            field = f"{key}[{i}]"
            item = self.mapping(item, field)
            template = self.text(item, "template", field)
            if template not in allowed:
                raise self.fail(
                    f"{field}.template",
                    f"{template!r} cannot be used here; use " + " or ".join(sorted(allowed)),
                )
            if template not in self.templates:
                raise self.fail(
                    f"{field}.template", f"ps_templates/{template}{TEMPLATE_SUFFIX} does not exist"
                )
            action = self.text(item, "action", field)
            if action not in action_ids:
                raise self.fail(
                    f"{field}.action", f"{action!r} is not one of the playbook's actions"
                )
            sets = self.sets(item, field, template, inputs) if key == "fixes" else ()
            out.append(
                StepSpec(
                    template=template,
                    action=action,
                    reason=" ".join(self.text(item, "reason", field).split()),
                    id=item.get("id") or template,
                    sets=sets,
                )
            )
        return tuple(out)

    def sets(
        self, item: dict[str, Any], field: str, template: str, inputs: list[Input]
    ) -> tuple[tuple[str, str], ...]:
        """``sets: {Parameter: input, ...}``: which input gives which Set-SendConnector
        parameter (in that order)."""
        data = self.mapping(item.get("sets"), f"{field}.sets")
        if not data:
            raise self.fail(f"{field}.sets", "must name at least one parameter")
        allowed = template_parameters(template) or frozenset()
        names = {i.name for i in inputs}
        out = []
        for parameter, name in data.items():
            where = f"{field}.sets.{parameter}"
            if parameter not in SETTABLE:
                raise self.fail(where, f"{parameter!r} is not a Set-SendConnector parameter")
            if parameter not in allowed:
                raise self.fail(
                    where, f"ps_templates/{template}{TEMPLATE_SUFFIX} does not take {parameter}"
                )
            if name not in names:
                raise self.fail(where, f"{name!r} is not one of the playbook's inputs")
            out.append((str(parameter), str(name)))
        return tuple(out)

    def checks(self, data: dict[str, Any]) -> tuple[str, ...]:
        names = self.items(data, "checks", optional=True)
        for i, name in enumerate(names):
            if name not in CHECK_NAMES:
                raise self.fail(
                    f"checks[{i}]",
                    f"unknown check {name!r}; known: " + ", ".join(sorted(CHECK_NAMES)),
                )
        return tuple(names)

    def flow(self, data: dict[str, Any]) -> str | None:
        name = data.get("flow")
        if name is None:
            return None
        if not isinstance(name, str) or not _FLOW.fullmatch(name) or not _module_exists(name):
            raise self.fail("flow", f"{name!r} is not one of the wizard's flow modules")
        return name


def _module_exists(flow: str) -> bool:
    """Whether the wizard has the flow module (found by name, not imported)."""
    try:
        return importlib.util.find_spec(f"{WIZARD_PACKAGE}.{flow}") is not None
    except ImportError:
        return False
