"""``tinyprune grade``: grade a student's .py or .ipynb submission against tinyprune's reference
(:func:`tinyprune.grading.grade`); ``--list`` shows the assignments."""

from __future__ import annotations

import json
import os
import textwrap

from .common import CLIError, positive_float

FORMATS = ("text", "json", "gradescope")
GRADE_DEFAULTS = {"format": "text", "timeout": 2.0, "load_timeout": 20.0}
"""Resolved after parsing; the timeouts are :func:`tinyprune.grading.grade`'s defaults."""


def _assignments():
    from ..grading import ASSIGNMENTS

    return ASSIGNMENTS


def cmd_list(args) -> int:
    for flag, value in (("submission", args.submission), ("--assignment", args.assignment),
                        ("--format", args.format), ("--timeout", args.timeout),
                        ("--load-timeout", args.load_timeout)):
        if value is not None:
            raise CLIError(f"{flag}: --list only lists the assignments; drop --list to grade")
    rows = [{"name": a.name, "function": f"{a.function}({', '.join(a.arg_names)})",
             "points": a.max_score, "groups": [g.name for g in a.groups],
             "mistakes": [m.key for m in a.mistakes], "description": a.description}
            for a in sorted(_assignments().values(), key=lambda a: a.name)]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']} ({r['points']:g} points, groups: {', '.join(r['groups'])})\n"
                  + textwrap.fill(r["description"] or r["function"], width=96,
                                  initial_indent="    ", subsequent_indent="    "))
    return 0


def cmd_grade(args) -> int:
    if args.list:
        return cmd_list(args)
    if args.submission is None:
        raise CLIError("submission: give the student's .py or .ipynb file (or --list)")
    if args.assignment is None:
        raise CLIError("--assignment: required (tinyprune grade --list shows them)")
    assignments = _assignments()
    if args.assignment not in assignments:
        raise CLIError(f"--assignment: expected one of {sorted(assignments)}, got "
                       f"{args.assignment!r}")
    if args.json:
        if args.format not in (None, "json"):
            raise CLIError(f"--json: the same as --format json; got --format {args.format}")
        args.format = "json"
    for name, value in GRADE_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    path = args.submission
    if os.path.splitext(path)[1] not in (".py", ".ipynb"):
        raise CLIError(f"submission: expected a .py or .ipynb file, got {path!r}")
    if not os.path.isfile(path):
        raise CLIError(f"submission: {path!r} does not exist or is not a file")
    from ..grading import grade

    # the student's code runs in worker processes; whatever it does is a graded failure
    print(grade(path, args.assignment, args.format, timeout=args.timeout,
                load_timeout=args.load_timeout))
    return 0


def register(add) -> None:
    """Add the ``grade`` parser."""
    g = add("grade", help="auto-grade a student's submission (.py or .ipynb)",
            description="Run the submission's function on the assignment's fixed and generated "
                        "cases against tinyprune's reference, each case in a worker process "
                        "with a time limit; the feedback names the first failing case and the "
                        "probable mistake. The exit status is 0 whenever grading ran, whatever "
                        "the score (2: bad arguments).")
    g.add_argument("submission", nargs="?", default=None,
                   help="the student's .py file or .ipynb notebook defining the function")
    g.add_argument("--assignment", default=None,
                   help="the assignment's name (tinyprune grade --list shows them)")
    g.add_argument("--format", choices=FORMATS, default=None,
                   help="feedback text, the result as JSON, or Gradescope's results.json "
                        "(default: text)")
    g.add_argument("--timeout", type=positive_float, default=None,
                   help=f"seconds allowed per case (default: {GRADE_DEFAULTS['timeout']:g})")
    g.add_argument("--load-timeout", type=positive_float, default=None,
                   help=f"seconds allowed to run the file's top level, notebook cells included "
                        f"(default: {GRADE_DEFAULTS['load_timeout']:g})")
    g.add_argument("--list", action="store_true",
                   help="list the assignments (name, function, points) and exit")
    g.add_argument("--json", action="store_true",
                   help="machine-readable output (the same as --format json)")
    g.set_defaults(func=cmd_grade)
