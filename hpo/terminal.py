"""The one sanitizer for text on its way to a terminal.

Names, parameter values, errors and attributes come from the database, and
anyone who can write to it chooses them: a study named "\\x1b]0;...\\x07"
would retitle the window, "\\x1b[2J" clear the screen, U+202E reverse what
follows. Everything the CLI prints for people goes through `printable`.
"""

from __future__ import annotations

import re

# C0 and C1 control characters (ESC starts terminal sequences: colours, titles, OSC
# links, cursor moves), DEL, and the bidirectional overrides that reorder what is shown
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = frozenset("\n\t")


def printable(text: str, newlines: bool = True) -> str:
    """`text` safe for a terminal: every control character shown as its escape
    (ESC as \\x1b), so nothing from the database can move the cursor, retitle
    the window or hide what is printed. `newlines`: keep line breaks and tabs
    (whole messages); else escape them too (table cells, one-line progress)."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if newlines and char in _LINE_BREAKS:
            return char
        return char.encode("unicode_escape").decode("ascii")

    return _UNPRINTABLE.sub(escape, text)
