"""Stand-in for the pip bootstrap script ansible-test downloads from
ci-files.testing.ansible.com, which this network does not reach (PyPI is reachable).

ansible-test creates each sanity test's virtual environment without pip and runs
``python get_pip_<version>.py [pip options] pip==<version> [--no-setuptools] [--no-wheel]``
from ``~/.ansible/test/cache/``; this installs pip from Python's own ensurepip, then the
version asked for from PyPI. scripts/test.sh copies it there under the name ansible-test
looks for (``--cache-name`` prints it).
"""

import re
import subprocess
import sys
from pathlib import Path

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")  # get-pip.py's options, not pip's


def cache_name() -> str:
    """get_pip_24_2.py for the pip version the installed ansible-test pins."""
    import ansible_test

    source = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    found = re.search(r"pip='([0-9.]+)'", source.read_text(encoding="utf-8"))
    if found is None:
        sys.exit("ansible_test_get_pip: the pip version ansible-test pins was not found")
    return "get_pip_" + found.group(1).replace(".", "_") + ".py"


def main() -> None:
    if sys.argv[1:] == ["--cache-name"]:
        print(cache_name())
        return
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True)


if __name__ == "__main__":
    main()
