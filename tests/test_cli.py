"""The command line a newcomer meets first: help and the zoo answer without TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LIGHT_COMMANDS = """
import sys
from keras_gen import cli

for argv in (
    ["--help"],
    ["train", "--help"],
    ["evaluate", "--help"],
    ["zoo", "list"],
    ["zoo", "show", "vae_mnist"],
    ["zoo", "gallery", "--out", "zoo.md"],
):
    try:
        cli.main(argv)
    except SystemExit as stop:
        assert stop.code in (0, None), (argv, stop.code)
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


def test_help_and_the_zoo_do_not_import_tensorflow(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", LIGHT_COMMANDS], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", "imported by help or zoo: " + result.stdout[-200:]


def test_zoo_list_is_a_table_with_size_and_metrics(capsys):
    from keras_gen import cli, zoo

    assert cli.main(["zoo", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["name", "family", "data", "size"]
    rows = {line.split()[0]: line for line in lines[1:] if not line.startswith(" ")}
    assert sorted(rows) == zoo.names()
    for name, line in rows.items():
        entry = zoo.card(name)
        assert line.split()[1:3] == [entry.family, entry.dataset["name"]]
        assert line.split()[4] in ("B", "kB", "MB"), line  # the weights file's size
    gans = [name for name in rows if zoo.card(name).family == "gan"]
    assert gans and all("FD " in rows[name] and "score " in rows[name] for name in gans)


def test_zoo_show_is_a_summary_whose_files_exist(capsys):
    from keras_gen import cli, zoo
    from keras_gen.zoo import summary

    for name in zoo.names():
        entry = zoo.card(name)
        assert cli.main(["zoo", "show", name]) == 0
        out = capsys.readouterr().out
        assert not out.lstrip().startswith("{")
        labels = [line.split()[0] for line in out.splitlines()[1:] if line and not line.startswith(" ")]
        assert {"architecture", "measured", "reproduce", "weights", "card"} <= set(labels), out
        assert entry.recipe.command.split(" && ")[0] in out
        assert all(part in out for part in summary.headline(entry))
        # Every path it prints is a file: the weights, the card, each figure.
        printed = [word for word in out.split() if word.startswith(str(entry.root))]
        assert printed and all(Path(path).is_file() for path in printed), printed
        assert sum(path.endswith(".png") for path in printed) == len(entry.figures)


def test_zoo_show_json_prints_the_card(capsys):
    import json

    from keras_gen import cli, zoo

    assert cli.main(["zoo", "show", "vae_mnist", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == zoo.card("vae_mnist").to_dict()


def test_evaluate_is_quick_by_default_and_ends_with_the_verdict(monkeypatch, capsys):
    """`keras-gen evaluate NAME` asks for the quick protocol unless --full, prints a line per
    stage on stderr, and ends with each target's verdict (evaluation itself is replaced here)."""
    from conftest import EVALUATION_ROW

    from keras_gen import cli, evaluation

    asked = []

    def fake_evaluate(model, progress, **settings):
        with progress("drawing samples"):
            asked.append(settings)
        return dict(EVALUATION_ROW, n_samples=settings["n_samples"])

    monkeypatch.setattr(cli, "load_model", lambda name: name)
    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    cli.main(["evaluate", "some_gan"])
    out, err = capsys.readouterr()
    assert asked[-1]["n_samples"] == 2_000 and asked[-1]["n_reference"] == 2_000 and asked[-1]["iwae_k"] == 100
    assert "keras-gen evaluate: loading some_gan ..." in err and "drawing samples ... " in err
    assert "a quick check; --full" in out
    assert out.splitlines()[-1] == "verdict: 1 of 3 targets met; not met: classifier score, Fréchet distance"

    cli.main(["evaluate", "some_gan", "--full", "--iwae-k", "50"])
    assert asked[-1]["n_samples"] == 10_000 and asked[-1]["n_reference"] is None and asked[-1]["iwae_k"] == 50
    assert "the zoo table's protocol" in capsys.readouterr().out


def test_zoo_gallery_writes_the_page_with_links_from_where_it_is(tmp_path, capsys):
    from keras_gen import cli
    from keras_gen.zoo import gallery

    page = tmp_path / "site" / "zoo.md"
    assert cli.main(["zoo", "gallery", "--out", str(page)]) == 0
    assert str(page) in capsys.readouterr().out
    text = page.read_text()
    assert text == gallery.markdown(page)
    pictures = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert pictures and all((page.parent / picture).is_file() for picture in pictures)
