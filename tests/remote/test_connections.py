"""Connections: --server URLs, profiles on disk (0600, no password), options over profiles."""

from __future__ import annotations

import argparse
import io
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from remediate.core.env import Environment
from remediate.core.errors import UsageError
from remediate.remote.connections import (
    AuthMethod,
    Connection,
    ProfileStore,
    add_connection_arguments,
    connection_from_args,
    parse_server,
)


def env_for(tmp_path: Path) -> Environment:
    return Environment(
        stdin=io.StringIO(),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        environ={"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)},
    )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_connection_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("ex01.contoso.com", "http://ex01.contoso.com:80/PowerShell"),
        ("http://ex01/PowerShell", "http://ex01:80/PowerShell"),
        ("https://ex01.contoso.com/PowerShell/", "https://ex01.contoso.com:443/PowerShell"),
        ("http://127.0.0.1:5985/PowerShell", "http://127.0.0.1:5985/PowerShell"),
        ("http://[::1]:8080", "http://[::1]:8080/PowerShell"),
    ],
)
def test_server_urls(text: str, url: str) -> None:
    assert parse_server(text).url == url


@pytest.mark.parametrize(
    "text",
    ["", "ftp://ex01", "http://", "http://ex01:99999/", "http://u:p@ex01/", "ex01\n", "a b"],
)
def test_bad_server_urls_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_server(text)


def test_profiles_round_trip_in_a_private_file_without_passwords(tmp_path: Path) -> None:
    store = ProfileStore(environ={"XDG_CONFIG_HOME": str(tmp_path)})
    conn = Connection(
        server="ex01.contoso.com",
        port=443,
        scheme="https",
        auth=AuthMethod.NTLM,
        username="CONTOSO\\admin",
        ca_file=tmp_path / "ca.pem",
        profile="ex01",
    )
    store.save(conn)
    store.save(Connection(server="ex02", port=80, username="admin", profile="ex02"))
    assert store.path == tmp_path / "remediate" / "profiles.json"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.get("ex01") == conn
    assert [c.profile for c in store.list()] == ["ex01", "ex02"]
    assert "password" not in store.path.read_text()
    store.remove("ex01")
    with pytest.raises(UsageError, match="no connection profile named 'ex01'"):
        store.get("ex01")


def test_a_damaged_profile_file_is_one_clear_error(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "profiles.json")
    store.path.write_text("{not json")
    with pytest.raises(UsageError, match="cannot be read"):
        store.list()


def test_flags_override_the_profile(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    store = ProfileStore(environ=env.environ)
    store.save(Connection(server="ex01", port=80, username="admin", profile="ex01"))
    conn = connection_from_args(
        parse(["--profile", "ex01", "--auth", "basic", "--operation-timeout", "5"]), env
    )
    assert (conn.server, conn.auth, conn.operation_timeout, conn.profile) == (
        "ex01",
        AuthMethod.BASIC,
        5.0,
        "ex01",
    )
    assert conn.label == "ex01"
    assert conn.secret_key == "ex01|admin"


def test_ad_hoc_server_and_defaults(tmp_path: Path) -> None:
    conn = connection_from_args(parse(["--server", "ex01", "--user", "a@b"]), env_for(tmp_path))
    assert conn.auth is AuthMethod.KERBEROS
    assert conn.verify and conn.configuration_name == "Microsoft.Exchange"
    assert conn.label == "http://ex01:80/PowerShell"


def test_no_endpoint_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--profile NAME or --server URL"):
        connection_from_args(parse([]), env_for(tmp_path))


def test_insecure_is_loud(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    conn = connection_from_args(parse(["--server", "https://ex01", "--insecure"]), env)
    assert conn.verify is False
    assert "WARNING: certificate validation is OFF" in env.stderr.getvalue()


def test_missing_ca_file_and_bad_timeout(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    with pytest.raises(UsageError, match="--ca-file"):
        connection_from_args(parse(["--server", "https://ex01", "--ca-file", "nope.pem"]), env)
    with pytest.raises(UsageError, match="--connect-timeout"):
        connection_from_args(parse(["--server", "ex01", "--connect-timeout", "0"]), env)


def test_certificate_auth_needs_https_and_both_files(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    cert, key = tmp_path / "admin.pem", tmp_path / "admin.key"
    cert.write_text("cert")
    key.write_text("key")
    files = ["--certificate", str(cert), "--certificate-key", str(key)]
    conn = connection_from_args(
        parse(["--server", "https://ex01", "--auth", "certificate", *files]), env
    )
    assert (conn.certificate_file, conn.certificate_key_file) == (cert, key)
    store = ProfileStore(environ=env.environ)
    store.save(replace(conn, profile="ex01"))
    assert store.get("ex01").certificate_key_file == key
    with pytest.raises(UsageError, match="needs an https"):
        connection_from_args(parse(["--server", "ex01", "--auth", "certificate", *files]), env)
    with pytest.raises(UsageError, match="--certificate-key PEM"):
        connection_from_args(
            parse(
                ["--server", "https://ex01", "--auth", "certificate", "--certificate", str(cert)]
            ),
            env,
        )
    with pytest.raises(UsageError, match="need --auth certificate"):
        connection_from_args(parse(["--server", "https://ex01", *files]), env)
