"""tinyprune/grading/README.md is the current output of ``python -m tinyprune.grading.catalogue``
and lists every assignment with its signature, case groups and mistakes."""

import subprocess
import sys

from tinyprune.grading import ASSIGNMENTS
from tinyprune.grading.catalogue import README_PATH, catalogue, main


def test_committed_catalogue_is_current():
    assert README_PATH.read_text(encoding="utf-8") == catalogue(), \
        "run: python -m tinyprune.grading.catalogue"


def test_catalogue_lists_every_assignment_group_and_mistake():
    text = catalogue()
    for a in ASSIGNMENTS.values():
        assert f"## {a.name}\n" in text
        assert f"def {a.function}({', '.join(a.arg_names)}): ..." in text
        section = text.split(f"## {a.name}\n")[1].split("\n## ")[0]
        for g in a.groups:
            assert f"| {g.name} | {g.points:g} | {len(g.cases())} |" in section
        for m in a.mistakes:
            assert f"- `{m.key}`: {m.message}" in section


def test_module_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "README.md"
    assert main(["--output", str(out), "--check"]) == 1 and not out.exists()
    assert main(["--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == catalogue()
    assert main(["--output", str(out), "--check"]) == 0
    out.write_text("stale\n", encoding="utf-8")
    assert main(["--output", str(out), "--check"]) == 1
    assert "out of date" in capsys.readouterr().out


def test_python_dash_m_runs(tmp_path):
    out = tmp_path / "cat.md"
    proc = subprocess.run([sys.executable, "-m", "tinyprune.grading.catalogue", "--output",
                           str(out)], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == catalogue()
