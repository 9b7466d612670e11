"""Generate the exercise notebooks from their masters (notebooks/exercises/masters/*.py): the
student notebook, the solved twin (solutions/), the Otter master (otter/) and the nbgrader source
notebook (nbgrader/). ``--check`` writes nothing and exits 1 when a generated notebook is out of
date (tests/test_exercises.py checks the same)."""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinyprune.grading.exercises import outdated, write_all  # noqa: E402

EXERCISES = ROOT / "notebooks" / "exercises"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report outdated notebooks")
    args = parser.parse_args(argv)
    if args.check:
        stale = outdated(EXERCISES)
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if stale else 0
    for path in write_all(EXERCISES):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
