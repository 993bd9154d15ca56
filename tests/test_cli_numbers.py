"""The command line refuses bad numbers before any work: argparse exits 2, nothing is written."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from keras_gen import cli


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "vae", "--epochs", "0"],
        ["train", "vae", "--epochs", "-1"],
        ["train", "vae", "--batch-size", "0"],
        ["train", "vae", "--batch-size", "-5"],
        ["train", "rbm", "--hidden", "2.5"],
        ["train", "gan", "--learning-rate", "0"],
        ["train", "gan", "--learning-rate", "nan"],
        ["sample", "vae_mnist", "-n", "0"],
        ["evaluate", "vae_mnist", "--samples", "-10"],
    ],
)
def test_bad_numbers_exit_2_and_write_nothing(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        cli.main(argv + (["--out", str(tmp_path / "run")] if argv[0] in ("train",) else []))
    assert stop.value.code == 2
    assert "expected a positive" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_good_numbers_parse():
    args = cli.build_parser().parse_args(
        ["train", "vae", "--epochs", "3", "--batch-size", "64", "--learning-rate", "1e-3"]
    )
    assert (args.epochs, args.batch_size, args.learning_rate) == (3, 64, 1e-3)


def test_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch):
    from keras_gen import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.keras").write_bytes(b"not a zip file at all")
    with pytest.raises(SystemExit) as info:
        cli.main(["sample", "broken.keras", "-n", "4"])
    message = str(info.value)
    assert "broken.keras" in message and "cannot load" in message and "\n" not in message
    with pytest.raises(SystemExit, match="not a registered|unknown|zoo"):
        cli.main(["sample", "no_such_zoo_entry", "-n", "4"])

    # An unexpected error: one line with its type by default, the real exception with --debug.
    def boom(args):
        raise RuntimeError("disk full\nsecond line")

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), boom))
    with pytest.raises(SystemExit, match=r"^keras-gen zoo: RuntimeError: disk full \(run with --debug"):
        cli.main(["zoo", "list"])
    with pytest.raises(RuntimeError, match="disk full"):
        cli.main(["--debug", "zoo", "list"])


def _with_func(parser, func):
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            sub.set_defaults(func=func)
    return parser


RECIPES = sorted(p.name for p in (Path(__file__).parents[1] / "training").glob("*.py"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_zoo_recipe_refuses_a_bad_epoch_count(recipe, tmp_path, monkeypatch, capsys):
    path = Path(__file__).parents[1] / "training" / recipe
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [recipe, "--epochs", "0", "--out", str(tmp_path / "run")])
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(path), run_name="__main__")  # as `python training/<recipe>` runs it
    assert stop.value.code == 2
    assert "expected a positive integer, got 0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
