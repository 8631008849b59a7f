"""remediate connect: saved connection profiles, their passwords in the keyring, and a test."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from remediate.core.env import Environment
from remediate.core.errors import UsageError
from remediate.core.plan import RELAY_SERVICE, CredentialRef
from remediate.core.status import ExitStatus
from remediate.remote.connections import (
    AuthMethod,
    Connection,
    ProfileStore,
    add_connection_arguments,
    check_profile_name,
    connection_from_args,
)
from remediate.ui.jsonout import add_json_argument, emit

NAME = "connect"
EPILOG = f"""\
examples:
  remediate connect add ex01 --server http://ex01.contoso.com/PowerShell --user admin@contoso.com
  remediate connect add ex01 --server http://ex01.contoso.com/PowerShell --auth kerberos
      # no --user: the kinit ticket's user, no password stored
  remediate connect add mail --server http://mail.contoso.com/PowerShell --auth kerberos \\
      --user admin@CONTOSO.COM --spn-host ex01.contoso.com   # a load-balanced name
  remediate connect add lab --server http://127.0.0.1:5985/PowerShell --auth ntlm \\
      --user administrator@contoso.lab --save-password
  remediate connect list
  remediate connect list --json
  remediate connect test ex01
  remediate connect password ex01          # store the admin password in the keyring
  remediate connect relay relay@contoso.com  # store a relay account's password
  remediate connect add ex02 --server https://ex02.contoso.com/PowerShell --auth certificate \\
      --certificate admin.pem --certificate-key admin.key
  remediate connect remove ex01

Passwords are asked without echo (or read from stdin with --password-stdin) and kept in the
OS keyring: service remediate:endpoint (key PROFILE|USER) and {RELAY_SERVICE} (key USER).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="connect_action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="save a connection profile")
    add.add_argument("name", help="profile name")
    add_connection_arguments(add, profile=False)
    add.add_argument(
        "--save-password",
        action="store_true",
        help="also store the admin password in the keyring (asked, or from --password-stdin)",
    )
    listing = sub.add_parser("list", help="list saved profiles")
    add_json_argument(listing, "the profiles")
    remove = sub.add_parser("remove", help="delete a profile and its stored password")
    remove.add_argument("name")
    test = sub.add_parser("test", help="open a session, run Get-SendConnector, time it")
    test.add_argument("name", nargs="?", help="profile name (or give --server ...)")
    add_connection_arguments(test, profile=False)
    password = sub.add_parser("password", help="store a profile's admin password")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true")
    password.add_argument("--delete", action="store_true", help="remove it instead")
    relay = sub.add_parser("relay", help=f"store a relay account's password ({RELAY_SERVICE})")
    relay.add_argument("username")
    relay.add_argument("--password-stdin", action="store_true")
    relay.add_argument("--delete", action="store_true", help="remove it instead")


def run(args: argparse.Namespace, env: Environment) -> int:
    store = ProfileStore(environ=env.environ)
    action = args.connect_action
    if action == "add":
        return _add(args, env, store)
    if action == "list":
        return _list(env, store, as_json=args.json)
    if action == "remove":
        return _remove(args, env, store)
    if action == "test":
        return _test(args, env, store)
    if action == "password":
        return _password(args, env, store)
    return _relay(args, env)


def _add(args: argparse.Namespace, env: Environment, store: ProfileStore) -> int:
    name = check_profile_name(args.name)
    if not args.server:
        raise UsageError("connect add: give --server URL")
    args.profile = None
    connection = replace(connection_from_args(args, env), profile=name)
    no_user_ok = (AuthMethod.CERTIFICATE, AuthMethod.KERBEROS, AuthMethod.NEGOTIATE)
    if connection.auth not in no_user_ok and not connection.username:
        raise UsageError(
            "connect add: give --user (the admin account)",
            hint="only --auth kerberos or negotiate log in without one (with a kinit ticket)",
        )
    if args.save_password and not connection.username:
        raise UsageError("connect add: --save-password needs --user")
    if args.save_password:
        # lazy: a command module stays cheap to import (--help, completion); its work loads here
        from remediate.remote.secrets import check_backend

        check_backend(env.environ)
    previous = next((c for c in store.list() if c.profile == name), None)
    store.save(connection)
    verb = "replaced" if previous else "saved"
    env.out(f"{verb} profile {name}: {connection.url} ({_login(connection)})")
    if previous is not None:
        env.out(f"  it was: {previous.url} ({_login(previous)})")
        if previous.secret_key != connection.secret_key:
            _forget_endpoint_password(previous, env)
    if args.save_password:
        _store_endpoint_password(connection, env, password_stdin=args.password_stdin)
    return ExitStatus.SUCCESS


def _login(connection: Connection) -> str:
    """How a profile logs in, for the listing: auth, user (or the ticket), SPN override."""
    parts = [str(connection.auth), connection.username or "ticket cache's user"]
    if connection.spn_host:
        parts.append(f"SPN host/{connection.spn_host}")
    return ", ".join(parts)


def _forget_endpoint_password(connection: Connection, env: Environment) -> None:
    """A stored password for a user the profile no longer names would never be used again."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.secrets import ENDPOINT_SERVICE, delete_secret, keyring_usable

    if keyring_usable(env.environ) and delete_secret(
        ENDPOINT_SERVICE, connection.secret_key, env.environ
    ):
        env.out(f"  removed the password stored for {connection.username} (no longer used)")


def _list(env: Environment, store: ProfileStore, *, as_json: bool = False) -> int:
    profiles = store.list()
    if as_json:  # a profile holds no password
        emit(env, [{"profile": c.profile, **c.to_json()} for c in profiles])
        return ExitStatus.SUCCESS
    if not profiles:
        env.out("no saved profiles (add one with 'remediate connect add')")
        return ExitStatus.SUCCESS
    rows = [("PROFILE", "ENDPOINT", "AUTH", "USER", "SPN", "CERTIFICATE")]
    for c in profiles:
        cert = "not checked" if not c.verify else (str(c.ca_file) if c.ca_file else "system CAs")
        if c.scheme == "http":
            cert = "-"
        spn = f"host/{c.spn_host}" if c.spn_host else "-"
        rows.append((c.profile or "", c.url, str(c.auth), c.username or "-", spn, cert))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        env.out("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return ExitStatus.SUCCESS


def _remove(args: argparse.Namespace, env: Environment, store: ProfileStore) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.secrets import ENDPOINT_SERVICE, delete_secret, keyring_usable

    connection = store.get(args.name)
    store.remove(args.name)
    removed = keyring_usable(env.environ) and delete_secret(
        ENDPOINT_SERVICE, connection.secret_key, env.environ
    )
    env.out(f"removed profile {args.name}" + (" and its stored password" if removed else ""))
    return ExitStatus.SUCCESS


def _test(args: argparse.Namespace, env: Environment, store: ProfileStore) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.session import open_session

    if not (args.name or args.server):
        raise UsageError(
            "connect test: give a profile NAME or --server URL",
            hint="list saved profiles with 'remediate connect list'",
        )
    args.profile = args.name
    connection = connection_from_args(args, env, store=store)
    started = time.perf_counter()
    with open_session(connection, env, password_stdin=args.password_stdin) as session:
        opened = time.perf_counter()
        connectors = session.get_connectors()
        done = time.perf_counter()
    env.out(
        f"{connection.label}: connected in {(opened - started) * 1000:.0f} ms; "
        f"Get-SendConnector returned {len(connectors)} connector(s) in "
        f"{(done - opened) * 1000:.0f} ms"
    )
    return ExitStatus.SUCCESS


def _password(args: argparse.Namespace, env: Environment, store: ProfileStore) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.secrets import ENDPOINT_SERVICE, delete_secret

    connection = store.get(args.name)
    if args.delete:
        found = delete_secret(ENDPOINT_SERVICE, connection.secret_key, env.environ)
        env.out("deleted" if found else "no stored password for this profile")
        return ExitStatus.SUCCESS
    _store_endpoint_password(connection, env, password_stdin=args.password_stdin)
    return ExitStatus.SUCCESS


def _store_endpoint_password(
    connection: Connection, env: Environment, *, password_stdin: bool
) -> None:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.secrets import ENDPOINT_SERVICE, check_backend, set_secret, stdin_secret

    check_backend(env.environ)
    if password_stdin:
        password = stdin_secret(env, 1, f"the admin password of {connection.username}")
    elif env.interactive:
        # lazy: a command module stays cheap to import (--help, completion); its work loads here
        import getpass

        password = getpass.getpass(f"Password for {connection.username}: ", stream=env.stderr)
    else:
        raise UsageError("no terminal to ask the password: use --password-stdin")
    if not password:
        raise UsageError("the password is empty; nothing stored")
    set_secret(ENDPOINT_SERVICE, connection.secret_key, password, env.environ)
    env.out(f"admin password stored in the keyring ({ENDPOINT_SERVICE}, {connection.secret_key})")


def _relay(args: argparse.Namespace, env: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.core.planner import relay_credential
    from remediate.core.preflight import check_password, check_username
    from remediate.remote.secrets import (
        ask_new_password,
        check_backend,
        delete_secret,
        set_secret,
        stdin_secret,
    )

    ref: CredentialRef = relay_credential(check_username(args.username))
    check_backend(env.environ)
    if args.delete:
        found = delete_secret(ref.service, ref.key, env.environ)
        env.out("deleted" if found else f"no stored password for {ref.username}")
        return ExitStatus.SUCCESS
    if args.password_stdin:
        password = stdin_secret(env, 1, f"the password of relay account {ref.username}")
    elif env.interactive:
        password = ask_new_password(env, ref.username)
    else:
        raise UsageError("no terminal to ask the password: use --password-stdin")
    check_password(password)
    set_secret(ref.service, ref.key, password, env.environ)
    env.out(f"relay password stored in the keyring ({ref.service}, {ref.key})")
    return ExitStatus.SUCCESS
