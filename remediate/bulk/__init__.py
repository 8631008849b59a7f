"""Scripted bulk fixes: many connectors over many endpoints from one YAML or CSV file.

``spec`` reads and validates the file (every problem with its line), ``diff`` turns a row and
the connector read into the same plan ``remediate plan``/``apply`` build, ``runner`` reads and
applies per endpoint in parallel, ``report`` prints the recap and writes the JSON report.
"""
