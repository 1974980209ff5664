"""Playbooks as rules: conditions over the signals the agent collects, verdicts, evidence.

One implementation serves the correlation API (issue 5) and ``diagnose`` (issue 7).
"""
