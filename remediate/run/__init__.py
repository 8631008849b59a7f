"""The one apply pipeline: lock, back up, execute, audit, re-read, watch queues, report."""
