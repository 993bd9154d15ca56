"""README says only what is true of this checkout.

* Its zoo table is `keras_gen.zoo.summary.markdown_table()` verbatim, and the
  gallery it links to (docs/zoo.md) is `keras_gen.zoo.gallery.markdown()`: the
  numbers come from the cards, never copied by hand.
* Every Python block runs as it stands, each in a fresh folder and namespace:
  a newcomer can paste any one of them. A block preceded by
  `<!-- slow: why -->` runs only with the slow tests.
* Every dotted `keras_gen.…` name it mentions exists.
* Every `keras-gen …` command in its shell blocks parses (its options exist and
  take the values shown), and every zoo name a command reads is in the zoo.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GALLERY = ROOT / "docs" / "zoo.md"
TEXT = README.read_text()
BLOCK = re.compile(r"(?:<!-- (?P<slow>slow)\b[^>]*-->\n)?```python\n(?P<code>.*?)```", re.S)
PYTHON_BLOCKS = [(match["code"], bool(match["slow"])) for match in BLOCK.finditer(TEXT)]
MNIST_AVAILABLE = os.path.isdir(os.path.join(os.environ.get("TFDS_DATA_DIR", ""), "mnist"))


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


def _blocks():
    for index, (code, slow) in enumerate(PYTHON_BLOCKS):
        marks = [pytest.mark.slow] if slow else []
        if '"mnist"' in code and not MNIST_AVAILABLE:
            marks.append(pytest.mark.skip(reason="MNIST needs TFDS_DATA_DIR with a prepared copy"))
        first = code.strip().splitlines()[0]
        yield pytest.param(index, marks=marks, id=f"{index}:{first[:40]}")


@pytest.mark.parametrize("index", _blocks())
def test_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what a block writes (runs/, exports/) lands here
    monkeypatch.setenv("KERAS_GEN_CACHE", str(tmp_path / "cache"))  # simulated as on a new machine
    code, _ = PYTHON_BLOCKS[index]
    exec(compile(code, f"README.md, Python block {index}", "exec"), {"__name__": "__main__"})


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


SHELL_BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
COMMANDS = [
    line.split("#")[0].strip()
    for block in SHELL_BLOCK.findall(TEXT)
    for line in block.splitlines()
    if line.strip().startswith("keras-gen ")
]


def test_every_command_line_parses_and_names_zoo_entries():
    from keras_gen import cli, zoo

    assert len(COMMANDS) >= 10, COMMANDS
    parser = cli.build_parser()
    for command in COMMANDS:
        words = shlex.split(command)[1:]
        if any(word.isupper() or "|" in word or word.startswith("[") for word in words):
            continue  # a synopsis (FAMILY, [--dataset ...]), not a command to run
        try:
            args = parser.parse_args(words)
        except SystemExit:
            pytest.fail(f"README command does not parse: {command}")
        model = getattr(args, "model", None)
        if model and not model.endswith(".keras"):
            assert model in zoo.names(), f"README command names no zoo entry: {command}"
