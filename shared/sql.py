"""Building SQL text: only fixed fragments enter it, every value goes in as a positional parameter."""

from __future__ import annotations

from typing import Any


class Conditions:
    """WHERE conditions with positional parameters: only fixed SQL fragments ever enter the text."""

    def __init__(self) -> None:
        self.fragments: list[str] = []
        self.args: list[Any] = []

    def add(self, fragment: str, value: Any) -> str:
        """Add a condition whose every `$?` stands for `value`; returns the placeholder used."""
        self.args.append(value)
        placeholder = f"${len(self.args)}"
        self.fragments.append(fragment.replace("$?", placeholder))
        return placeholder

    def add_if_set(self, fragment: str, value: Any) -> None:
        if value is not None:
            self.add(fragment, value)

    def where(self) -> str:
        return "WHERE " + " AND ".join(self.fragments) if self.fragments else ""
