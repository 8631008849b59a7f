"""Names vulture (``vulture remediate scripts/vulture_whitelist.py --min-confidence 60``)
reports as unused that are used, by a framework, by Exchange's data or by the tests.

Each line is one such name (vulture only sees that it is used here); the comment says where
the use is. Code that is really unused is removed, never listed here.
"""

# ruff: noqa
_ = object()

# Enum members: values Exchange sends back and the tests and pre-flight rules name
_.ENCRYPTION_ONLY  # exchange.TlsAuthLevel
_.CERTIFICATE_VALIDATION  # exchange.TlsAuthLevel

# signal handlers take (signum, frame)
_.frame  # commands/lab.py _raise_interrupt, interrupts.py _handler

# data read from the playbook YAML, validated and kept with the playbook
_.symbolic_name  # playbooks.EventInfo (tests/test_playbooks.py)
_.severity  # playbooks.EventInfo
_.help  # playbooks.Input
_.enhanced_status  # queues.LastErrorDiagnosis (tests/test_queues.py)

# used by the tests (the observations they make), and a helper for scripts
_.schema  # jsonout.schema: a shipped JSON Schema by name (tests/schema_check.py, test_wheel)
_.is_open  # remote.Session (tests/test_remote.py, test_remote_errors.py)
_.shells_created  # lab.endpoint (tests/test_remote.py, tests/bulk/test_bulk_protocol.py)
_.peak_pipelines  # lab.endpoint
_.shell_count  # lab.endpoint
_.write_warning  # lab.api.Host: a cmdlet's WriteWarning (tests/lab/test_protocol.py)

# http.server and socketserver hooks and settings (lab/http_server.py)
_.daemon_threads
_.block_on_close
_.request_queue_size
_.address_family
_.protocol_version
_.sys_version
_.disable_nagle_algorithm
_.log_message
_.do_POST
_.do_GET

# aiosmtpd handler hooks (lab/smarthost.py)
_.handle_EHLO
_.handle_MAIL
_.handle_DATA

# argparse reads a parser's description when it prints the help (ui/cli.py)
_.description

# read by the tests: the cmdlets a lab ran (tests/bulk/test_bulk_protocol.py) and the
# server's own network path (tests/wizard/test_wizard_2016.py)
_.cmdlets_run
_.set_server_route

# the reference the lab's fast paths are tested against (tests/lab/test_wire_bytes.py,
# tests/lab/test_psrpcore_speed.py, tests/remote/test_wire.py): psrpcore's own serializer and
# note-property constructor
_.encode_object
_.ORIGINAL_NOTE_PROPERTY

# requests reads it on every request (remote/shell.py _settle_environment)
_.trust_env

# aiosmtpd's Controller calls it for each connection (lab/smarthost.py _ClosingController)
_.factory
