pytest_plugins = ["tests.secret_service"]
