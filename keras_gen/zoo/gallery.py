"""The zoo gallery: a markdown page (docs/zoo.md in a checkout) with a section
per entry: the picture of what it makes, what was measured and the command
that reproduces it, all read from the cards.

`keras-gen zoo gallery` writes it with `write`; a test keeps the committed
page equal to `markdown`, as README's zoo table is kept equal to its cards.
"""

from __future__ import annotations

import os
from pathlib import Path

from keras_gen.core.files import write_text
from keras_gen.zoo import loader, summary

PAGE = os.path.join("docs", "zoo.md")  # from the root of a checkout


CURVES = ("_loss.png", "_training.png")  # training curves: linked below the pictures, not shown


def pictures(card):
    """The figures that show what an entry makes: its sample grid (`*_samples.png`); for
    an entry without one, its other results (the Ising entries' observables against the
    exact values, a density), or else whatever it has (the classifier's loss curve)."""
    samples = [figure for figure in card.figures if figure.endswith("_samples.png")]
    results = [figure for figure in card.figures if not figure.endswith(CURVES)]
    return samples[:1] or results or list(card.figures)


def _link(card, figure, page):
    return Path(os.path.relpath(card.root / figure, Path(page).resolve().parent)).as_posix()


def _label(card, figure):
    """A figure's name without its entry's prefix: zoo/figures/vae_mnist_latent.png -> latent."""
    return Path(figure).stem.removeprefix(f"{card.name}_").replace("_", " ")


def section(card, page):
    shown = pictures(card)
    lines = [f"## {card.name}", "", card.description, ""]
    lines += [f"![{card.name}: {_label(card, figure)}]({_link(card, figure, page)})" for figure in shown]
    lines += [
        "",
        f"- family: {card.family}; data: {card.dataset.get('name', '')}; weights: {summary.weights_size(card)}",
        f"- measured: {'; '.join(summary.headline(card)) or 'see the card'}",
    ]
    others = [figure for figure in card.figures if figure not in shown]
    if others:
        links = ", ".join(f"[{_label(card, figure)}]({_link(card, figure, page)})" for figure in others)
        lines.append(f"- more figures: {links}")
    lines += ["", "Reproduce it from the root of a source checkout:", "", "```bash", summary.command(card), "```", ""]
    return lines


def markdown(page=PAGE):
    """The gallery page, with links relative to where it is written (`page`)."""
    cards = [entry for _, entry in sorted(loader.entries().items()) if not isinstance(entry, Exception)]
    lines = [
        "# The zoo",
        "",
        "<!-- generated from the cards by keras_gen.zoo.gallery (keras-gen zoo gallery); a test keeps it equal -->",
        "",
        "Every pretrained entry: a picture of what it makes, the numbers measured on it (read from its "
        "card) and the command that reproduces it. `keras-gen zoo show NAME` prints the whole card; "
        '`keras_gen.zoo.load("NAME")` loads the model, its weights checked by sha256 first.',
        "",
        " · ".join(f"[{card.name}](#{card.name.lower()})" for card in cards),  # anchors are lower case
        "",
    ]
    for card in cards:
        lines += section(card, page)
    return "\n".join(lines).rstrip("\n") + "\n"


def write(page=PAGE):
    """Write the gallery to `page` (atomically); return its path."""
    return write_text(page, markdown(page))
