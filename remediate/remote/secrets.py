"""Passwords through the OS keyring, stdin or a no-echo prompt; never argv, never a file.

Service names (documented in README):
  ``remediate:endpoint``  admin password of an endpoint; key ``<profile or URL>|<user>``
  ``remediate:relay``     relay account password; key = the relay user name

With ``--password-stdin`` stdin holds the admin password on line 1 (the keyring is then not
consulted for it) and, when the run needs a relay password that is not in the keyring, that
password on line 2.
"""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING, Any

from remediate.core.env import Environment
from remediate.core.errors import PreflightError, SecretStoreError, UsageError
from remediate.core.logs import known_secret
from remediate.core.preflight import check_password
from remediate.core.terminal import command_word

if TYPE_CHECKING:
    from remediate.core.plan import CredentialRef
    from remediate.remote.connections import Connection

ENDPOINT_SERVICE = "remediate:endpoint"
ALLOW_PLAINTEXT_ENV = "REMEDIATE_ALLOW_PLAINTEXT_KEYRING"
INSTALL_HINT = (
    "install and unlock a Secret Service (Debian: apt-get install gnome-keyring, inside a D-Bus "
    "session), or pick a backend with PYTHON_KEYRING_BACKEND; for one run, use --password-stdin"
)
UNLOCK_HINT = (
    "unlock it: log in to the desktop session, or start the daemon with "
    "'gnome-keyring-daemon --unlock --components=secrets' and the keyring password on stdin"
)
_INSECURE_MODULES = ("keyrings.alt",)
_REFUSED_CLASSES = {"keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"}


def _backend_name(backend: Any) -> str:
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def _backends(backend: Any) -> list[Any]:
    """The real backends behind keyring's chainer, if that is what is in use."""
    inner = getattr(backend, "backends", None)
    return list(inner) if inner is not None else [backend]


def check_backend(environ: dict[str, str] | None = None) -> Any:
    """The usable keyring backend, or SecretStoreError saying what to install or configure."""

    # lazy: keyring loads its backends (D-Bus, Secret Service) on import; only secrets need it
    import keyring

    environ = dict(os.environ) if environ is None else environ
    backend = keyring.get_keyring()
    members = _backends(backend)
    if not members or all(_backend_name(b) in _REFUSED_CLASSES for b in members):
        raise SecretStoreError("no usable OS keyring on this machine", hint=INSTALL_HINT)
    for member in members:
        if type(member).__module__.startswith(_INSECURE_MODULES):
            if environ.get(ALLOW_PLAINTEXT_ENV) != "1":
                raise SecretStoreError(
                    f"the keyring backend {_backend_name(member)} keeps passwords in a file "
                    "readable without a login secret; remediate refuses it",
                    hint=f"{INSTALL_HINT}; or accept it explicitly with {ALLOW_PLAINTEXT_ENV}=1",
                )
    return backend


def keyring_usable(environ: dict[str, str] | None = None) -> bool:
    try:
        check_backend(environ)
    except SecretStoreError:
        return False
    return True


def _call(action: str, service: str, key: str, func: Any, *args: Any) -> Any:
    # lazy: keyring loads its backends (D-Bus, Secret Service) on import; only secrets need it
    import keyring.errors

    try:
        return func(service, key, *args)
    except keyring.errors.KeyringLocked:
        raise SecretStoreError(
            f"the keyring is locked; cannot {action} {service} / {key}",
            hint=UNLOCK_HINT,
        ) from None
    except keyring.errors.NoKeyringError:
        raise SecretStoreError("no usable OS keyring on this machine", hint=INSTALL_HINT) from None
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.InitError as exc:
        if "prompt" in str(exc).lower():  # the daemon wanted to ask for the login password
            raise SecretStoreError(
                f"the keyring is locked (or has no login collection yet), so cannot {action} "
                f"{service} / {key}",
                hint=UNLOCK_HINT,
            ) from None
        raise SecretStoreError(
            f"no keyring service answers, so cannot {action} {service} / {key} "
            "(is gnome-keyring-daemon running in this D-Bus session?)",
            hint=INSTALL_HINT,
        ) from None
    except (keyring.errors.KeyringError, OSError) as exc:
        kind = type(exc).__name__
        raise SecretStoreError(
            f"the keyring refused to {action} {service} / {key} ({kind})", hint=INSTALL_HINT
        ) from None
    except Exception as exc:  # D-Bus errors from secretstorage/jeepney
        kind = type(exc).__name__
        raise SecretStoreError(
            f"the keyring could not {action} {service} / {key} ({kind})", hint=INSTALL_HINT
        ) from None


def get_secret(service: str, key: str, environ: dict[str, str] | None = None) -> str | None:
    # lazy: keyring loads its backends (D-Bus, Secret Service) on import; only secrets need it
    import keyring

    check_backend(environ)
    return _call("read", service, key, keyring.get_password)


def set_secret(service: str, key: str, value: str, environ: dict[str, str] | None = None) -> None:
    # lazy: keyring loads its backends (D-Bus, Secret Service) on import; only secrets need it
    import keyring

    check_backend(environ)
    _call("store", service, key, keyring.set_password, value)


def delete_secret(service: str, key: str, environ: dict[str, str] | None = None) -> bool:
    # lazy: keyring loads its backends (D-Bus, Secret Service) on import; only secrets need it
    import keyring

    check_backend(environ)
    if _call("read", service, key, keyring.get_password) is None:
        return False
    _call("delete", service, key, keyring.delete_password)
    return True


# --- stdin ----------------------------------------------------------------------------------


def stdin_secret(env: Environment, line: int, what: str) -> str:
    """Line ``line`` (1-based) of stdin."""
    if env.stdin_isatty:
        raise UsageError("--password-stdin: stdin is a terminal; pipe the password in")
    lines = env.stdin_lines()
    if len(lines) < line:
        raise UsageError(f"--password-stdin: line {line} of stdin should hold {what}, it is empty")
    return _known(lines[line - 1])


# --- resolution -----------------------------------------------------------------------------


def endpoint_password(
    connection: Connection, env: Environment, *, password_stdin: bool = False
) -> str:
    """The admin password: stdin line 1 with --password-stdin, else the keyring, else a
    prompt when a person is there (offering to save it), else a clear error."""
    what = f"the admin password of {connection.username} at {connection.label}"
    if password_stdin:
        return stdin_secret(env, 1, what)
    stored = _stored(ENDPOINT_SERVICE, connection.secret_key, env)
    if stored is not None:
        return stored
    if env.interactive:
        password = _prompt(env, f"Password for {connection.username} at {connection.label}: ")
        _offer_to_save(env, ENDPOINT_SERVICE, connection.secret_key, password)
        return password
    raise SecretStoreError(
        f"no password for {connection.username} at {connection.label} in the keyring "
        f"(service {ENDPOINT_SERVICE}, key {connection.secret_key})",
        hint="save it with 'remediate connect password PROFILE', or pipe it with --password-stdin",
    )


def relay_password(ref: CredentialRef, env: Environment, *, password_stdin: bool = False) -> str:
    """A relay account's password: the keyring, else stdin line 2 with --password-stdin, else
    asked twice without echo (offering to save it), else a clear error. Never empty."""
    password = _stored(ref.service, ref.key, env, quiet=password_stdin)
    if password is None:
        if password_stdin:
            password = stdin_secret(env, 2, f"the password of relay account {ref.username}")
        elif env.interactive:
            password = ask_new_password(env, ref.username)
            _offer_to_save(env, ref.service, ref.key, password)
        else:
            raise SecretStoreError(
                f"no password for relay account {ref.username} in the keyring "
                f"(service {ref.service}, key {ref.key})",
                hint=f"save it with: remediate connect relay {command_word(ref.username)}; "
                "or pipe it as "
                "line 2 with --password-stdin",
            )
    check_password(password)
    return password


def ask_new_password(env: Environment, username: str) -> str:
    """Asked twice, no echo; refused when empty or different."""
    for _ in range(3):
        first = _prompt(env, f"Password for relay account {username}: ")
        try:
            check_password(first)
        except PreflightError as exc:
            env.err(f"remediate: {exc.message}")
            continue
        if _prompt(env, "Again, to confirm: ") == first:
            return first
        env.err("remediate: the two passwords differ; try again")
    raise UsageError(f"no password entered for relay account {username}")


def _stored(service: str, key: str, env: Environment, *, quiet: bool = False) -> str | None:
    """The keyring's entry; None when there is none or no usable keyring. ``quiet``: a
    keyring that fails (locked, D-Bus error) counts as none, as stdin can still answer."""
    if not keyring_usable(env.environ):
        return None
    try:
        return _known(get_secret(service, key, env.environ))
    except SecretStoreError:
        if quiet:
            return None
        raise


def _prompt(env: Environment, label: str) -> str:
    try:
        return _known(getpass.getpass(label, stream=env.stderr))
    except EOFError:
        raise UsageError("no password entered (end of input)") from None


def _offer_to_save(env: Environment, service: str, key: str, password: str) -> None:
    if not keyring_usable(env.environ):
        env.err("remediate: no usable keyring here, so the password is used for this run only")
        return
    env.write_err(f"Save it in the keyring ({service}, {key})? [y/N] ")
    env.stderr.flush()
    answer = env.stdin.readline().strip().lower()
    if answer in ("y", "yes"):
        set_secret(service, key, password, env.environ)
        env.err("remediate: saved in the keyring")


def _known(password: str | None) -> Any:
    """A password entering the process: remembered so no --debug log line shows it."""

    return known_secret(password)
