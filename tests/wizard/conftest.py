from tests.wizard.helpers import drive, lab, no_keyring  # noqa: F401 - fixtures
