"""README's commands stay true: CI runs README's test command verbatim, and every tinyprune
command line in README parses."""

import re
import shlex
from pathlib import Path

import pytest

from tinyprune.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    blocks = _bash_blocks(readme)
    test_cmd = next(b.strip() for b in blocks if "pytest" in b)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in [line.strip() for line in ci]


def test_readme_main_command_parses():
    readme = (ROOT / "README.md").read_text()
    main_cmd = next(b.strip() for b in _bash_blocks(readme) if "tinyprune pipeline" in b)
    parser = build_parser()
    parts = [p.strip() for p in main_cmd.split("&&")]
    tiny = [p for p in parts if p.startswith("tinyprune ")]
    assert [shlex.split(p)[1] for p in tiny] == ["pipeline"]
    for p in tiny:
        parser.parse_args(shlex.split(p)[1:])


@pytest.mark.parametrize("line", [
    "tinyprune eval model.npz --json",
    "tinyprune prune model.npz --granularity nm --n-pruned 2 --m 4",
    "tinyprune prune model.npz --global --exclude conv1,fc2",
    "tinyprune datasets --json",
    "tinyprune pipeline --model lenet5 --out model.tpz --index-bits 8,5 --epochs 8",
    "tinyprune pipeline --out model.tpz --index-bits auto",
])
def test_documented_variants_parse(line):
    build_parser().parse_args(shlex.split(line)[1:])


def test_readme_library_example_runs(capsys):
    readme = (ROOT / "README.md").read_text()
    snippet = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[0]
    snippet = snippet.replace("rng=0)", "rng=0, progress=False)").replace(
        "rng=1)", "rng=1, progress=False)")
    namespace = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    model, data = namespace["model"], namespace["data"]
    acc = namespace["evaluate"](model, data.x_test, data.y_test)["accuracy"]
    assert acc > 0.75
    for name, mask in model.masks.items():
        assert mask.mean() == pytest.approx(0.1, abs=1e-3)
        assert (model.params[name][~mask] == 0).all()
    assert "CSR compression" in out
