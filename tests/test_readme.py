"""README says only what is true of this checkout.

* Its zoo table is `keras_gen.zoo.summary.markdown_table()` verbatim, and the
  gallery it links to (docs/zoo.md) is `keras_gen.zoo.gallery.markdown()`: the
  numbers come from the cards, never copied by hand.
* Every Python block parses, and its imports run.
* Every dotted `keras_gen.…` name it mentions exists.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GALLERY = ROOT / "docs" / "zoo.md"
TEXT = README.read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.S)


def test_zoo_table_is_generated_from_the_cards():
    from keras_gen.zoo import summary

    match = re.search(r"<!-- begin: zoo table[^>]*-->\n(.*?)<!-- end: zoo table -->", TEXT, re.S)
    assert match, "README has no zoo table section"
    assert match.group(1) == summary.markdown_table(), (
        "README's zoo table differs from the cards: paste keras_gen.zoo.summary.markdown_table()"
    )


def test_zoo_gallery_is_generated_from_the_cards_and_its_pictures_exist():
    from keras_gen.zoo import gallery

    assert "(docs/zoo.md)" in TEXT, "README does not link the gallery"
    page = GALLERY.read_text()
    assert page == gallery.markdown(GALLERY), "docs/zoo.md differs from the cards: run `keras-gen zoo gallery`"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page)
    links = re.findall(r"(?<!!)\[[^\]]*\]\(([^)#]+)\)", page)
    assert len(images) >= len(re.findall(r"^## ", page, re.M))  # a picture per entry at least
    missing = [path for path in images + links if not (GALLERY.parent / path).is_file()]
    assert not missing, f"the gallery links files that do not exist: {missing}"


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_parses_and_its_imports_run(index):
    tree = ast.parse(PYTHON_BLOCKS[index])
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    namespace = {}
    exec(compile(ast.Module(body=imports, type_ignores=[]), f"README block {index}", "exec"), namespace)


def _resolves(dotted):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return True
    return False


def test_every_keras_gen_name_exists():
    names = sorted(set(re.findall(r"\bkeras_gen(?:\.[A-Za-z_]\w*)+", TEXT)))
    old = {"keras_gen.vae", "keras_gen.rbm", "keras_gen.gan", "keras_gen.ising", "keras_gen.samplers"}
    missing = []
    for name in names:
        if name in old:  # named as the 0.1 layout, whose imports point to the new homes
            continue
        try:
            ok = _resolves(name)
        except AttributeError:
            ok = False
        if not ok:
            missing.append(name)
    assert not missing, f"README names what does not exist: {missing}"
