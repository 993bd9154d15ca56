"""Write one benchmark's results as a section of BENCHMARKS.md.

Each script owns the section between `<!-- begin: NAME -->` and
`<!-- end: NAME -->`; rerunning a script replaces its section in place and
leaves the others alone. The header of every section names the machine, the
date and the command, so a number never travels without its context.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
TITLE = "# Benchmarks\n\nMeasured on the machine each section names; every section says how to reproduce it.\n"


def machine():
    import tensorflow as tf
    import keras

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}")


def header(title, command=None):
    command = command or "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"## {title}\n\n- machine: {machine()}\n- date: {date}\n- command: `{command}`\n"


def write_section(name, markdown, path=BENCHMARKS_MD):
    """Replace (or append) the section `name` of BENCHMARKS.md, atomically."""
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
        lines.append("| " + " | ".join(_fmt(row.get(k)) for k, _ in columns) + " |")
    return "\n".join(lines)


def _fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
