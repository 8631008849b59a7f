"""A real MIT KDC on loopback for the Kerberos tests: a temporary realm on a free port.

Every Kerberos process of the tests gets ``KRB5_CONFIG``, ``KRB5_KDC_PROFILE``,
``KRB5CCNAME`` and ``KRB5_KTNAME`` pointing at files of this realm: Debian's krb5-config
writes a foreign realm into /etc/krb5.conf, which must never be used. The KDC is ended by
its PID. Under CI=true a machine without the MIT KDC fails the run (tests/kerberos/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REALM = "LAB.TEST"
NETBIOS = "LAB"
ADMIN = "administrator"
ADMIN_PRINCIPAL = f"{ADMIN}@{REALM}"
OTHER = "operator"  # a second user, kinit'ed for the ticket-cache test
SERVICES = ("host/localhost", "HTTP/localhost")
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/usr/bin")


def find_tool(name: str) -> str | None:
    """krb5kdc, kdb5_util and kadmin.local live in /usr/sbin, often not on a user's PATH."""
    found = shutil.which(name)
    if found:
        return found
    for directory in _SBIN:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def missing_tools() -> list[str]:
    return [t for t in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit") if not find_tool(t)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class KDC:
    """A running KDC: ``env`` holds the variables every Kerberos process needs."""

    directory: Path
    port: int
    passwords: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def keytab(self) -> Path:
        return self.directory / "service.keytab"

    @property
    def krb5_conf(self) -> Path:
        return self.directory / "krb5.conf"

    def ccache(self, name: str) -> Path:
        return self.directory / f"ccache-{name}"

    def client_env(self, ccache: Path | None = None, **extra: str) -> dict[str, str]:
        """The variables for one client process; its own (empty unless kinit'ed) ccache."""
        env = dict(self.env)
        env["KRB5CCNAME"] = f"FILE:{ccache or self.ccache('empty')}"
        env.update(extra)
        return env

    def kinit(self, principal: str, ccache: Path) -> None:
        done = subprocess.run(
            [find_tool("kinit") or "kinit", principal],
            input=(self.passwords[principal] + "\n").encode(),
            env={**os.environ, **self.client_env(ccache)},
            capture_output=True,
            timeout=20,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()

    def stop(self) -> None:
        """End the KDC by its PID (and only it)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process = None

    def start(self) -> None:
        """(Re)start krb5kdc on the realm's port."""
        if self.process is not None and self.process.poll() is None:
            return
        with (self.directory / "krb5kdc.stderr").open("ab") as log:  # the child keeps its copy
            self.process = subprocess.Popen(
                [find_tool("krb5kdc") or "krb5kdc", "-n", "-r", REALM],
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        _wait_for_port(self.port, self.process)


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"krb5kdc exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"krb5kdc did not listen on port {port}")


def _krb5_conf(port: int) -> str:
    # Each "{" ends its line: otherwise kdb5_util silently uses its built-in paths.
    return f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1

[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}

[domain_realm]
    localhost = {REALM}
    .lab.test = {REALM}
"""


def _kdc_conf(directory: Path, port: int) -> str:
    return f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}

[realms]
    {REALM} = {{
        database_name = {directory}/principal
        key_stash_file = {directory}/stash
        acl_file = {directory}/kadm5.acl
        kdc_listen = 127.0.0.1:{port}
        kdc_tcp_listen = 127.0.0.1:{port}
        max_life = 10h 0m 0s
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}

[logging]
    kdc = FILE:{directory}/krb5kdc.log
"""


def create_kdc(directory: Path, passwords: dict[str, str]) -> KDC:
    """A new realm in ``directory`` with the users of ``passwords`` (principal -> password)
    and the services in a keytab; the KDC started."""
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    kdc = KDC(directory=directory, port=port, passwords=dict(passwords))
    (directory / "krb5.conf").write_text(_krb5_conf(port))
    (directory / "kdc.conf").write_text(_kdc_conf(directory, port))
    (directory / "kadm5.acl").write_text("")
    kdc.env = {
        "KRB5_CONFIG": str(directory / "krb5.conf"),
        "KRB5_KDC_PROFILE": str(directory / "kdc.conf"),
        "KRB5_KTNAME": f"FILE:{kdc.keytab}",
        "KRB5CCNAME": f"FILE:{kdc.ccache('empty')}",
    }
    env = {**os.environ, **kdc.env}

    def run(*argv: str, stdin: str = "") -> None:
        done = subprocess.run(
            list(argv), input=stdin.encode(), env=env, capture_output=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode().strip()}")

    master = os.urandom(12).hex()
    run(find_tool("kdb5_util") or "kdb5_util", "create", "-s", "-r", REALM, "-P", master)
    kadmin = find_tool("kadmin.local") or "kadmin.local"
    queries = [f'addprinc -pw "{pw}" {principal}' for principal, pw in passwords.items()]
    queries += [f"addprinc -randkey {service}@{REALM}" for service in SERVICES]
    queries += [f"ktadd -k {kdc.keytab} {service}@{REALM}" for service in SERVICES]
    for query in queries:
        run(kadmin, "-r", REALM, "-q", query)
    kdc.start()
    return kdc
