"""The command line refuses bad numbers before any work: argparse exits 2, nothing is written."""

from __future__ import annotations

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
