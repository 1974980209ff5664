"""Playbooks as rules: conditions over the signals the agent collects, verdicts, evidence.

One implementation serves the node API's correlation answers and ``diagnose``.
"""
