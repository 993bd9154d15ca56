"""Write one benchmark's results as a section of BENCHMARKS.md.

Each script owns the section between `<!-- begin: NAME -->` and
`<!-- end: NAME -->`; rerunning a script replaces its section in place and
leaves the others alone. The header of every section names the machine, the
date and the command, so a number never travels without its context.

The library cannot know where the repository is, so the scripts in
`benchmarks/` pass their root (for the command line of `header`) and the path
of BENCHMARKS.md (to `write_section`).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

TITLE = "# Benchmarks\n\nMeasured on the machine each section names; every section says how to reproduce it.\n"


def machine():
    """CPU, cores, Python, TensorFlow and Keras versions, in one line."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}")


def header(title, root, command=None):
    """A section's heading and its context: machine, date, and the command (default: this
    process's, with the script's path relative to `root`, the repository)."""
    command = command or "python " + " ".join([os.path.relpath(sys.argv[0], root), *sys.argv[1:]])
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"## {title}\n\n- machine: {machine()}\n- date: {date}\n- command: `{command}`\n"


def write_section(name, markdown, path):
    """Replace (or append) the section `name` of the BENCHMARKS.md at `path`, atomically."""
    path = Path(path)
    begin, end = f"<!-- begin: {name} -->", f"<!-- end: {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}\n"
    text = path.read_text() if path.exists() else TITLE
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + block + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    fd, tmp = tempfile.mkstemp(prefix=".BENCHMARKS-", suffix=".md", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def markdown_table(rows, columns):
    """rows: list of dicts; columns: list of (key, heading)."""
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_format_cell(row.get(k)) for k, _ in columns) + " |")
    return "\n".join(lines)


def _format_cell(v):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
