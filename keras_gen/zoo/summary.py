"""The zoo at a glance: each entry's headline metrics, read from its card.

`keras-gen zoo list` prints `text_table()` and `keras-gen zoo show NAME`
prints `describe(card)`; README's zoo table is `markdown_table()` verbatim (a
test compares them), so no number is copied by hand; the gallery page is
`keras_gen.zoo.gallery`. Nothing here imports TensorFlow: a card is JSON.
"""

from __future__ import annotations

import math
import textwrap

from keras_gen.zoo import loader, registry

HEADER = ("name", "family", "data", "size", "measured (from its card)")


def _with_error(value, error):
    """value ± error, rounded to the error's first significant digit (two when it is a 1)."""
    if not error or error <= 0:
        return f"{value:.2f}"
    digits = max(0, -math.floor(math.log10(error)))
    if f"{error:.{digits}f}".replace("0", "").replace(".", "").startswith("1"):
        digits += 1
    return f"{value:.{digits}f} ± {error:.{digits}f}"


def headline(card):
    """The one or two numbers that say how good an entry is, as short strings."""
    m = card.metrics
    out = []
    quality = m.get("sample_quality")
    if isinstance(quality, dict) and "fd" in quality:
        out.append(f"FD {quality['fd']:.1f}, score {quality['score']:.2f}, recall {quality['recall']:.2f}")
    if "test_nll_iwae_nats" in m:
        out.append(f"test NLL ≤ {_with_error(m['test_nll_iwae_nats'], m['test_nll_iwae_sem'])} nats (IWAE)")
    if "test_log_likelihood_nats" in m:
        error = m.get("test_log_likelihood_data_sem", m.get("test_log_likelihood_sem"))
        how = "AIS" if "log_z_stderr" in m else "exact"
        floor = m.get("true_density_test_log_likelihood")
        floor = "" if floor is None else f"; the true density's: {floor:.2f}"
        out.append(f"test log-likelihood {_with_error(m['test_log_likelihood_nats'], error)} nats ({how}{floor})")
    if "modes_covered_within_10_std" in m:
        out.append(f"{m['modes_covered_within_10_std']}/8 modes")
    if "modes_covered" in m and "mmd" in m:
        out.append(f"{m['modes_covered']}/8 modes, MMD {m['mmd']:.4f} (held-out floor {m['mmd_held_out_floor']:.4f})")
    if "temperatures_within_target" in m:
        n = len(m.get("per_temperature", {})) or 11
        out.append(
            f"{m['temperatures_within_target']}/{n} temperatures with E and magnetization within 1%, "
            "C and chi within 5% of exact"
        )
    if "test_accuracy" in m:
        out.append(f"test accuracy {100 * m['test_accuracy']:.2f}%")
    return out


def weights_size(card):
    """The size of the entry's weights file ("19.6 MB"), or "missing"."""
    path = card.root / "saved_models" / card.weights.file if card.root else None
    if path is None or not path.is_file():
        return "missing"
    size = path.stat().st_size
    for unit in ("B", "kB", "MB"):
        if size < 999.5 or unit == "MB":
            return f"{size:.3g} {unit}" if unit != "B" else f"{size} B"
        size /= 1000


def figures(card):
    """(path, exists) of every figure the card lists, under the card's root."""
    return [(card.root / figure, (card.root / figure).is_file()) for figure in card.figures] if card.root else []


def rows():
    """(name, family, dataset, weights size, headline parts) for every well-formed entry, sorted by name."""
    out = []
    for name, entry in sorted(loader.entries().items()):
        if isinstance(entry, Exception):
            continue
        out.append((name, entry.family, entry.dataset.get("name", ""), weights_size(entry), headline(entry)))
    return out


def text_table():
    """`keras-gen zoo list`: one entry per row, each headline number on a line of its own."""
    table = rows()
    widths = [max(len(str(row[i])) for row in table + [HEADER]) for i in range(4)]
    indent = " " * (sum(widths) + 2 * len(widths))
    lines = []
    for *cells, measured in [(*HEADER[:4], [HEADER[4]])] + table:
        start = "  ".join(cell.ljust(w) for cell, w in zip(cells, widths)) + "  "
        lines += [(indent if i else start) + part for i, part in enumerate(measured or ["-"])]
    return "\n".join(lines) + "\n"


def markdown_table():
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|---|---|---|"]
    lines += [
        f"| `{name}` | {family} | {data} | {size} | {'; '.join(measured)} |"
        for name, family, data, size, measured in rows()
    ]
    return "\n".join(lines) + "\n"


def _numbers(metrics):
    """The card's measured numbers (top level and sample quality), as "key=value" strings."""
    out = []
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(f"{key}={value:g}")
        elif key == "sample_quality" and isinstance(value, dict):
            out += _numbers(value)
    return out


def command(card):
    """The command that reproduces the entry, a line per step: a shell line ending
    in && continues on the next, so the lines paste as the one command."""
    return card.recipe.command.replace(" && ", " &&\n")


def _wrap(text, width):
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def describe(card):
    """`keras-gen zoo show NAME`: the entry in a page a person reads (the JSON: `--json`)."""
    module, function = registry.FACTORIES[card.architecture.factory].split(":")
    arguments = ", ".join(f"{key}={value!r}" for key, value in card.architecture.kwargs.items())
    dataset = ", ".join(f"{key}={value}" for key, value in card.dataset.items() if key != "name")
    training = card.training.get("total", card.training)
    trained = [card.training["date"], card.training["machine"]]
    trained += [
        f"{training[key]} {unit}"
        for key, unit in (("epochs", "epochs"), ("seconds", "s of training"))
        if key in training
    ]
    fields = [
        ("family", card.family),
        ("architecture", f"{module}.{function}({arguments})"),
        ("data", f"{card.dataset.get('name', '')} ({dataset})" if dataset else card.dataset.get("name", "")),
        ("measured", "\n".join(headline(card)) or "-"),
        ("numbers", ", ".join(_numbers(card.metrics)) or "-"),
        ("reproduce", command(card) + "\n(from the root of a source checkout)"),
        ("trained", "; ".join(str(t) for t in trained)),
        (
            "weights",
            f"{card.root / 'saved_models' / card.weights.file} "
            f"({weights_size(card)}, sha256 {card.weights.sha256[:12]}...)",
        ),
    ]
    shown = [str(path) for path, exists in figures(card) if exists]
    missing = [str(path) for path, exists in figures(card) if not exists]
    if shown:
        fields.append(("figures", "\n".join(shown)))
    if missing:
        fields.append(("not found", "\n".join(missing)))
    fields.append(("card", f"{card.path} (all of it: keras-gen zoo show {card.name} --json)"))
    width = max(len(label) for label, _ in fields) + 2
    lines = _wrap(f"{card.name}: {card.description}", 100) + [""]
    for label, text in fields:
        # Prose wraps at spaces; commands and paths keep their lines, to copy whole.
        wrap = label in ("architecture", "data", "measured", "numbers", "trained")
        parts = text.split("\n")
        if wrap:
            parts = [line for part in parts for line in _wrap(part, 100 - width)]
        lines += [(label.ljust(width) if i == 0 else " " * width) + part for i, part in enumerate(parts)]
    return "\n".join(lines) + "\n"
