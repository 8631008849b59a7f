"""The bulk input file: YAML or CSV rows, each naming an endpoint, a connector (or a selector)
and the settings wanted. The whole file is validated before anything connects; every problem
is reported with its line.

A row's keys (YAML) or columns (CSV):

  endpoint            a connection profile name, or a URL (http(s)://host:port/PowerShell)
  auth, user, ca_file, spn_host   only with a URL: WinRM authentication, admin user, CA bundle,
                                  the host name of the Kerberos SPN
  connector           the Send connector's name or GUID            } exactly one of
  smart_host_match    every connector with a smart host matching   } these two
                      this pattern (shell-style: *.relay.contoso.com)
  playbook            2016 or 2002 (default: 2002 when it takes all the settings, else 2016)
  mechanism, credential_user, credential_key, reenter_credential, smart_hosts, port,
  require_tls, tls_auth_level, tls_domain, enabled              the settings wanted

A YAML file is a list of rows, or a mapping with ``connectors:`` (the rows) and optional
``defaults:`` (keys every row gets unless it gives its own).
"""

from __future__ import annotations

import csv
import fnmatch
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from remediate.core.errors import OptionError, UsageError
from remediate.core.exchange import AuthMechanism, SendConnector, TlsAuthLevel, smart_host_key
from remediate.core.files import decode_text, read_bounded
from remediate.core.options import FixOptions, port_number
from remediate.core.plan import RELAY_SERVICE, CredentialRef
from remediate.core.playbooks import Playbook, load_all
from remediate.core.pwsh import unsafe_character
from remediate.core.yamlfile import YamlProblem, compose, duplicate_keys
from remediate.remote.connections import (
    AuthMethod,
    Connection,
    ProfileStore,
    check_spn_host,
    parse_server,
)
from remediate.run.locks import endpoint_identity


@dataclass(frozen=True)
class Problem:
    line: int
    message: str


class SpecError(UsageError):
    """The file has problems; ``problems`` lists each with its line."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        count = len(problems)
        super().__init__(
            f"{path}: {count} problem{'s' if count != 1 else ''}; nothing was sent",
            hint="fix the lines named above and run again",
        )
        self.path = path
        self.problems = problems

    def lines(self) -> list[str]:
        return [f"{self.path}:{p.line}: {p.message}" for p in self.problems]


@dataclass(frozen=True)
class Row:
    """One validated row. ``options`` holds FixOptions fields (connector name aside)."""

    line: int
    endpoint: Connection
    playbook: Playbook
    options: dict[str, Any]
    connector: str | None = None
    smart_host_match: str | None = None
    credential_key: str | None = None

    @property
    def target(self) -> str:
        """How messages name what this row selects."""
        if self.connector is not None:
            return self.connector
        return f"smart host matching {self.smart_host_match!r}"

    def selects(self, connector: SendConnector) -> bool:
        if self.connector is not None:
            wanted = self.connector.lower()
            return wanted in (connector.name.lower(), connector.guid.lower())
        # brackets of an IP smart host ([10.0.0.5]) are not a pattern's character class
        pattern = smart_host_key(self.smart_host_match or "")
        return any(fnmatch.fnmatchcase(smart_host_key(h), pattern) for h in connector.smart_hosts)

    def credential_ref(self, username: str) -> CredentialRef:
        """The keyring entry of the relay password: ``credential_key`` or the user name."""
        return CredentialRef(username, RELAY_SERVICE, self.credential_key or username)


@dataclass
class BulkSpec:
    path: Path
    rows: list[Row] = field(default_factory=list)

    def endpoints(self) -> list[Connection]:
        """The endpoints in the order the file first names them."""
        return list(dict.fromkeys(row.endpoint for row in self.rows))

    def rows_for(self, endpoint: Connection) -> list[Row]:
        return [row for row in self.rows if row.endpoint == endpoint]


# --- values ------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("give a text value")
    text = str(value).strip()
    if not text:
        raise ValueError("is empty")
    bad = unsafe_character(text)
    if bad is not None:
        raise ValueError(f"contains the control character U+{ord(bad):04X}")
    return text


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "$true"):
        return True
    if text in ("false", "no", "0", "$false"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _port(value: Any) -> int:
    return port_number(value)


def _hosts(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items: Iterable[Any] = value.replace(",", ";").split(";")
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError("give a list of host names")
    hosts = tuple(_text(item) for item in items if str(item).strip())
    if not hosts:
        raise ValueError("is empty")
    return hosts


def _enum(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        return parse(_text(value))

    return convert


def _auth(value: Any) -> AuthMethod:
    text = _text(value).lower()
    try:
        return AuthMethod(text)
    except ValueError:
        allowed = ", ".join(m.value for m in AuthMethod)
        raise ValueError(f"{value!r} is not one of {allowed}") from None


# key -> (converter, FixOptions field or None for the row's own keys)
_SETTINGS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "mechanism": (_enum(AuthMechanism.parse), "mechanism"),
    "credential_user": (_text, "username"),
    "reenter_credential": (_bool, "reenter_credential"),
    "smart_hosts": (_hosts, "smart_hosts"),
    "port": (_port, "port"),
    "require_tls": (_bool, "require_tls"),
    "tls_auth_level": (_enum(TlsAuthLevel.parse), "tls_auth_level"),
    "tls_domain": (_text, "tls_domain"),
    "enabled": (_bool, "enable"),
}
_OWN: dict[str, Callable[[Any], Any]] = {
    "endpoint": _text,
    "auth": _auth,
    "user": _text,
    "ca_file": _text,
    "spn_host": _text,
    "connector": _text,
    "smart_host_match": _text,
    "credential_key": _text,
    "playbook": _text,
}
KEYS = (*_OWN, *_SETTINGS)
_FLAG_TO_KEY = {
    "--username": "credential_user",
    "--smart-host": "smart_hosts",
    "--port": "port",
    "--tls-domain": "tls_domain",
    "--connector": "connector",
}


# --- reading -----------------------------------------------------------------------------

# A bulk file of thousands of rows is far below this; past it the file is refused, unread.
MAX_FILE_BYTES = 8 * 1024 * 1024

# A raw row: key -> (value, line)
RawRow = dict[str, tuple[Any, int]]


def load(path: Path | str, profiles: ProfileStore | None = None) -> BulkSpec:
    """Read and validate ``path``; SpecError listing every problem when any."""
    path = Path(path)
    # UTF-8, UTF-16 (Notepad's "Unicode") or Windows-1252: read, so errors get their lines
    text = decode_text(read_bounded(path, MAX_FILE_BYTES, str(path), cannot="cannot read the file"))
    problems: list[Problem] = []
    if path.suffix.lower() == ".csv":
        raw_rows = _read_csv(text, problems)
    elif path.suffix.lower() in (".yaml", ".yml"):
        raw_rows = _read_yaml(text, problems)
    else:
        raise UsageError(f"{path}: give a .yaml, .yml or .csv file")
    spec = BulkSpec(path)
    validator = _Validator(profiles or ProfileStore(), problems)
    for line, raw in raw_rows:
        row = validator.row(line, raw)
        if row is not None:
            spec.rows.append(row)
    if not raw_rows and not problems:
        problems.append(Problem(1, "no rows: the file names no connector"))
    spec.rows = _one_name_per_endpoint(spec.rows, problems)
    _check_duplicates(spec.rows, problems)
    if problems:
        raise SpecError(path, sorted(problems, key=lambda p: p.line))
    return spec


def _read_csv(text: str, problems: list[Problem]) -> list[tuple[int, RawRow]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        problems.append(Problem(1, f"not CSV: {exc}"))
        return []
    names = [h.strip().lower() for h in header]
    rows: list[tuple[int, RawRow]] = []
    start = reader.line_num + 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(names):
                problems.append(Problem(line, f"{len(cells)} cells but {len(names)} columns"))
                continue
            raw = {n: (c, line) for n, c in zip(names, cells, strict=False) if n and c.strip()}
            rows.append((line, raw))
    except csv.Error as exc:
        problems.append(Problem(reader.line_num, f"not CSV: {exc}"))
    return rows


def _read_yaml(text: str, problems: list[Problem]) -> list[tuple[int, RawRow]]:
    try:
        root = compose(text)
    except YamlProblem as refused:
        message = f"not YAML: {refused.message}" if refused.syntax else refused.message
        problems.append(Problem(refused.line, message))
        return []
    if root is None:
        return []
    loader = yaml.constructor.SafeConstructor()
    defaults: RawRow = {}
    items: yaml.Node | None = root
    if isinstance(root, yaml.MappingNode):
        items = None
        twice = duplicate_keys(root)
        problems.extend(Problem(d.line, d.message) for d in twice)
        if twice:
            return []
        for key_node, value_node in root.value:
            key = str(key_node.value)
            if key == "defaults":
                defaults = _mapping(loader, value_node, problems, "defaults") or {}
            elif key == "connectors":
                items = value_node
            else:
                problems.append(
                    Problem(_line(key_node), f"unknown key {key!r} (use defaults, connectors)")
                )
    if items is None:  # a mapping without connectors:
        problems.append(Problem(_line(root), "no 'connectors:' list"))
        return []
    if not isinstance(items, yaml.SequenceNode):
        problems.append(Problem(_line(items), "give a list of rows (- endpoint: ...)"))
        return []
    rows = []
    for item in items.value:
        raw = _mapping(loader, item, problems, "a row")
        if raw is not None:
            rows.append((_line(item), {**defaults, **raw}))
    return rows


def _mapping(loader: Any, node: yaml.Node, problems: list[Problem], what: str) -> RawRow | None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(_line(node), f"{what} must be a mapping of key: value"))
        return None
    raw: RawRow = {}
    for key_node, value_node in node.value:
        try:
            value = loader.construct_object(value_node, deep=True)
        except yaml.YAMLError as exc:
            problems.append(Problem(_line(value_node), f"bad value: {exc}"))
            continue
        key = str(key_node.value).strip().lower()
        if key in raw:
            problems.append(Problem(_line(key_node), f"{key}: given twice"))
        raw[key] = (value, _line(key_node))
    return raw


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


# --- validation --------------------------------------------------------------------------


class _Validator:
    def __init__(self, profiles: ProfileStore, problems: list[Problem]) -> None:
        self.profiles = profiles
        self.problems = problems
        self.playbooks = {p.event.id: p for p in load_all()}
        self.ids = {p.id: p for p in load_all()}

    def row(self, line: int, raw: RawRow) -> Row | None:
        before = len(self.problems)
        values: dict[str, tuple[Any, int]] = {}
        for key, (value, key_line) in raw.items():
            convert = _OWN.get(key) or (_SETTINGS[key][0] if key in _SETTINGS else None)
            if convert is None and "password" in key:
                self.fail(
                    key_line,
                    f"{key}: passwords are never in the file; name the keyring entry with "
                    "credential_key, or pipe the secret with --password-stdin",
                )
                continue
            if convert is None:
                self.fail(key_line, f"unknown key {key!r} (keys: {', '.join(KEYS)})")
                continue
            if value is None or value == "":
                continue
            try:
                values[key] = (convert(value), key_line)
            except ValueError as exc:
                self.fail(key_line, f"{key}: {exc}")
        endpoint = self.endpoint(line, values)
        self.target(line, values)
        options = {_SETTINGS[k][1]: v for k, (v, _) in values.items() if k in _SETTINGS}
        if not any(k in _SETTINGS and v not in (None, "") for k, (v, _) in raw.items()):
            self.fail(line, "no setting to apply (mechanism, credential_user, smart_hosts, ...)")
        playbook = self.playbook(line, values, options)
        if playbook is not None and options:
            self.fix_options(line, values, options)
        if len(self.problems) > before or endpoint is None or playbook is None:
            return None
        get = {k: v for k, (v, _) in values.items()}.get
        return Row(
            line=line,
            endpoint=endpoint,
            playbook=playbook,
            options=options,
            connector=get("connector"),
            smart_host_match=get("smart_host_match"),
            credential_key=get("credential_key"),
        )

    def fail(self, line: int, message: str) -> None:
        self.problems.append(Problem(line, message))

    def endpoint(self, line: int, values: dict[str, tuple[Any, int]]) -> Connection | None:
        if "endpoint" not in values:
            self.fail(line, "endpoint: give a connection profile name or a URL")
            return None
        name, key_line = values["endpoint"]
        extra = [k for k in ("auth", "user", "ca_file", "spn_host") if k in values]
        if "://" not in name:
            if extra:
                self.fail(key_line, f"{', '.join(extra)}: only with a URL (a profile has its own)")
            try:
                return self.profiles.get(name)
            except UsageError as exc:
                self.fail(key_line, f"endpoint: {exc.message}")
                return None
        try:
            connection = parse_server(name)
        except UsageError as exc:
            self.fail(key_line, exc.message.replace("--server", "endpoint", 1))
            return None
        auth = values.get("auth", (AuthMethod.KERBEROS, line))[0]
        user = values.get("user", (None, line))[0]
        ca_file = values.get("ca_file", (None, line))[0]
        if auth in (AuthMethod.BASIC, AuthMethod.NTLM, AuthMethod.CREDSSP) and user is None:
            self.fail(values["auth"][1], f"auth {auth}: give user too")
        if auth is AuthMethod.CERTIFICATE:
            self.fail(values["auth"][1], "auth certificate: use a connection profile")
        if ca_file is not None and not Path(ca_file).is_file():
            self.fail(values["ca_file"][1], f"ca_file: {ca_file} is not a file")
        spn_host = values.get("spn_host", (None, line))[0]
        if spn_host is not None:
            try:
                check_spn_host(spn_host, "spn_host")
            except UsageError as exc:
                self.fail(values["spn_host"][1], exc.message)
        return replace(
            connection,
            auth=auth,
            username=user,
            ca_file=Path(ca_file) if ca_file else None,
            spn_host=spn_host,
        )

    def target(self, line: int, values: dict[str, tuple[Any, int]]) -> None:
        given = [k for k in ("connector", "smart_host_match") if k in values]
        if len(given) != 1:
            self.fail(line, "give exactly one of connector (name or GUID) and smart_host_match")

    def playbook(
        self, line: int, values: dict[str, tuple[Any, int]], options: dict[str, Any]
    ) -> Playbook | None:
        if "playbook" in values:
            name, key_line = values["playbook"]
            found = self.ids.get(name) or (
                self.playbooks.get(int(name)) if name.isdigit() else None
            )
            if found is None:
                self.fail(key_line, f"playbook: {name!r} is not 2016, 2002 or a playbook id")
            elif not set(options) <= found.input_names:
                extra = sorted(_key_of(o) for o in set(options) - found.input_names)
                self.fail(key_line, f"playbook {found.event.id} does not take {', '.join(extra)}")
                return None
            return found
        for playbook in self.playbooks.values():
            if set(options) <= playbook.input_names:
                return playbook
        self.fail(
            line,
            "these settings belong to different playbooks (enabled is a 2002 fix, "
            "mechanism/credential/TLS are 2016 fixes): split them into two rows",
        )
        return None

    def fix_options(
        self, line: int, values: dict[str, tuple[Any, int]], options: dict[str, Any]
    ) -> None:
        """FixOptions' own checks (host names, duplicates, lengths), named by row key."""

        name = values.get("connector", ("connector", line))[0]
        try:
            FixOptions(connector=name, **options)
        except OptionError as exc:  # named by the row's key, at its line
            key = _FLAG_TO_KEY.get(exc.flag)
            where = values[key][1] if key in values else line
            self.fail(where, f"{key or exc.flag}: {exc.problem}")
        except UsageError as exc:
            self.fail(line, exc.message)
        for key in ("reenter_credential", "credential_key"):
            if key in values and values[key][0] and "username" not in options:
                self.fail(values[key][1], f"{key}: give credential_user too")


def _key_of(option: str) -> str:
    return next(k for k, (_, o) in _SETTINGS.items() if o == option)


def _how(connection: Connection) -> Connection:
    """The connection's settings besides where it points (and its name and timeouts)."""
    return replace(
        connection,
        server="",
        port=0,
        path="",
        scheme="",
        configuration_name="",
        profile=None,
        connect_timeout=0,
        operation_timeout=0,
    )


def _one_name_per_endpoint(rows: list[Row], problems: list[Problem]) -> list[Row]:
    """Rows naming one endpoint two ways (a profile and its URL, or two spellings of a URL)
    get the first row's connection, so they share a session and a connector they both
    select is caught; refused when the two ways differ in auth, user or certificates."""
    first: dict[tuple[str, str, int, str, str], Row] = {}
    out = []
    for row in rows:
        seen = first.setdefault(endpoint_identity(row.endpoint), row)
        if seen.endpoint != row.endpoint:
            if _how(seen.endpoint) != _how(row.endpoint):
                problems.append(
                    Problem(
                        row.line,
                        f"endpoint: {row.endpoint.label} is the endpoint of line {seen.line} "
                        f"({seen.endpoint.label}) with other auth, user or certificate "
                        "settings; name it one way in every row",
                    )
                )
                continue
            row = replace(row, endpoint=seen.endpoint)
        out.append(row)
    return out


def _check_duplicates(rows: list[Row], problems: list[Problem]) -> None:
    seen: dict[tuple[Connection, str], int] = {}
    for row in rows:
        if row.connector is None:
            continue
        key = (row.endpoint, row.connector.lower())
        if key in seen:
            problems.append(
                Problem(row.line, f"connector {row.connector!r} is already on line {seen[key]}")
            )
        else:
            seen[key] = row.line
