"""The ground everything stands on.

The Exchange model, plans, playbooks, the planner and its pre-flight, the PowerShell literal
rules, errors, files and paths. It imports no other layer.
"""
