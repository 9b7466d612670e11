"""The tinyprune command line: train, eval, prune (all main options), report, datasets."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tinyprune.cli import main
from tinyprune.nn.checkpoint import load_checkpoint


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "mlp.npz"
    assert main(["train", "--model", "lenet-300-100", "--epochs", "1", "--out", str(path),
                 "--json"]) == 0
    return path


def test_train_json_and_eval(trained, capsys):
    code, out, _ = run(capsys, "eval", str(trained), "--json")
    assert code == 0
    res = json.loads(out)
    assert res["dataset"] == "fashion-mnist-small"
    assert 0.7 < res["test_accuracy"] <= 1.0
    meta = load_checkpoint(trained).metadata
    assert meta["test_accuracy"] == pytest.approx(res["test_accuracy"])


def test_prune_channel_physical(trained, tmp_path, capsys):
    out_path = tmp_path / "thin.npz"
    code, out, _ = run(capsys, "prune", str(trained), "--criterion", "l1", "--granularity",
                       "channel", "--sparsity", "0.5", "--finetune-epochs", "1", "--physical",
                       "--out", str(out_path), "--json", "--no-progress")
    assert code == 0
    res = json.loads(out)
    assert res["targets"] == ["fc1.weight", "fc2.weight"]  # the classifier keeps its classes
    assert res["physical"]["kept_units"] == {"fc1": 150, "fc2": 50, "fc3": 10}
    assert res["physical"]["test_accuracy"] == pytest.approx(res["accuracy_finetuned"])
    assert res["report"]["layers"]["fc1"]["zero_channels"] == pytest.approx(0.5)
    thin = load_checkpoint(out_path).model
    assert thin["fc1"].params["weight"].shape == (150, 784)
    assert thin["fc2"].params["weight"].shape == (50, 150)


def test_prune_nm_text_output(trained, capsys):
    code, out, _ = run(capsys, "prune", str(trained), "--granularity", "nm", "--n", "2", "--m",
                       "4", "--finetune-epochs", "0")
    assert code == 0
    assert "2:4 (n_pruned:m)" in out
    assert "accuracy before pruning" in out and "accuracy after pruning" in out
    assert out.count("100.0%") >= 3  # every layer fully 2:4 compliant


def test_prune_global_exclude_and_report(trained, tmp_path, capsys):
    out_path = tmp_path / "g.npz"
    code, out, _ = run(capsys, "prune", str(trained), "--global", "--exclude", "fc3",
                       "--criterion", "magnitude", "--sparsity", "0.8", "--finetune-epochs", "1",
                       "--out", str(out_path), "--json", "--no-progress")
    res = json.loads(out)
    assert res["targets"] == ["fc1.weight", "fc2.weight"]
    layers = res["report"]["layers"]
    n1, n2 = 300 * 784, 100 * 300
    pruned = (layers["fc1"]["weight_sparsity"] * n1 + layers["fc2"]["weight_sparsity"] * n2)
    assert round(pruned) == round(0.8 * (n1 + n2))
    assert layers["fc3"]["weight_sparsity"] == 0.0
    ck = load_checkpoint(out_path)
    assert set(ck.masks) == {"fc1.weight", "fc2.weight"}
    code, out, _ = run(capsys, "report", str(out_path), "--json")
    assert json.loads(out)["layers"]["fc1"] == layers["fc1"]
    code, out, _ = run(capsys, "report", str(out_path))
    assert "CSR compression" in out and "fc1" in out


@pytest.mark.parametrize("argv, needle", [
    (["--sparsity", "1.5"], "amount"),
    (["--granularity", "nm", "--n", "4", "--m", "4"], "n_pruned"),
    (["--granularity", "kernel"], "no layer"),
    (["--layers", "conv9"], "unknown layer"),
    (["--criterion", "lp"], "p:"),
])
def test_prune_bad_arguments_exit_2_with_a_message(trained, capsys, argv, needle):
    code, _, err = run(capsys, "prune", str(trained), "--finetune-epochs", "0", *argv)
    assert code == 2
    assert needle in err


def test_missing_and_corrupt_checkpoints(tmp_path, capsys):
    code, _, err = run(capsys, "eval", str(tmp_path / "none.npz"))
    assert code == 2 and "none.npz" in err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    code, _, err = run(capsys, "report", str(bad))
    assert code == 2 and "bad.npz" in err


def test_datasets_json(capsys):
    code, out, _ = run(capsys, "datasets", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["fashion-mnist-small"]["found"] and rows["fashion-mnist-small"]["n_train"] == 6000


def test_python_dash_m_entry_point():
    res = subprocess.run([sys.executable, "-m", "tinyprune", "--help"], capture_output=True,
                         text=True, check=True)
    for cmd in ("train", "eval", "prune", "report", "datasets"):
        assert cmd in res.stdout


def test_pruned_weights_stay_zero_after_cli_finetune(trained, tmp_path, capsys):
    out_path = tmp_path / "e.npz"
    run(capsys, "prune", str(trained), "--sparsity", "0.9", "--criterion", "magnitude",
        "--finetune-epochs", "1", "--out", str(out_path), "--no-progress")
    ck = load_checkpoint(out_path)
    for name, mask in ck.masks.items():
        assert np.all(ck.model.params[name][~mask] == 0.0)
        assert mask.mean() == pytest.approx(0.1, abs=1e-3)
