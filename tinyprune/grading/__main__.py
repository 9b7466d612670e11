"""``python -m tinyprune.grading ASSIGNMENT [--root /autograder] [--filename F]``: Gradescope's
run_autograder entry (:func:`tinyprune.grading.gradescope.main`)."""

from .gradescope import main

if __name__ == "__main__":  # also guards the worker processes, which re-import the main module
    raise SystemExit(main())
