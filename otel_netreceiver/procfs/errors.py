"""The one exception procfs parsers raise."""

from __future__ import annotations


class ParseError(ValueError):
    """Malformed procfs content; the message names the file and the line."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        self.source, self.line, self.problem = source, line, problem
        super().__init__(f"{source}:{line}: {problem}")
