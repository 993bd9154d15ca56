"""A benchmark's results as a section of BENCHMARKS.md.

Each benchmark owns the section between `<!-- begin: NAME -->` and
`<!-- end: NAME -->`; rerunning it replaces its section in place and leaves
the others alone. The header of every section names the machine, the date
and the command, so a number never travels without its context.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from keras_gen.core.files import write_text
from keras_gen.zoo.publish import machine_description, now_iso

TITLE = "# Benchmarks\n\nMeasured on the machine each section names; every section says how to reproduce it.\n"


def machine():
    """The card's machine description, with the Keras version benchmarks depend on."""
    import keras

    return f"{machine_description()}, Keras {keras.__version__}"


class BenchmarksFile:
    """The BENCHMARKS.md at `path`, in the root of a checkout."""

    def __init__(self, path):
        self.path = Path(path)

    @property
    def root(self):
        return self.path.parent

    def header(self, title, command=None):
        """A section's title and context; the command defaults to this process's, relative to the root."""
        if command is None:
            script = os.path.relpath(os.path.abspath(sys.argv[0]), self.root)
            command = "python " + shlex.join([script, *sys.argv[1:]])  # quoted: it runs when pasted
        return f"## {title}\n\n- machine: {machine()}\n- date: {now_iso()}\n- command: `{command}`\n"

    def write_section(self, name, markdown):
        """Replace (or append) the section `name`, atomically."""
        begin, end = f"<!-- begin: {name} -->", f"<!-- end: {name} -->"
        block = f"{begin}\n{markdown.strip()}\n{end}\n"
        text = self.path.read_text() if self.path.exists() else TITLE
        if begin in text and end in text:
            before, rest = text.split(begin, 1)
            after = rest.split(end, 1)[1].lstrip("\n")
            text = before + block + ("\n" + after if after else "")
        else:
            text = text.rstrip("\n") + "\n\n" + block
        write_text(self.path, text)
        return self.path


def markdown_table(rows, columns):
    """rows: list of dicts; columns: list of (key, heading)."""
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(k)) for k, _ in columns) + " |")
    return "\n".join(lines)


def _format(v):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
