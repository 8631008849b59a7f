from tests.wizard.helpers import drive, drive_keyring, lab, no_keyring  # noqa: F401 - fixtures
