pytest_plugins = ["pytester", "tests.secret_service", "tests.e2e_marker"]
