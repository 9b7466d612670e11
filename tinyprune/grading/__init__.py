"""Auto-grading of students' implementations against tinyprune's references.

An assignment (:class:`~.cases.Assignment`, registered in :data:`ASSIGNMENTS`) is a function the
student writes, checked on fixed and seeded generated cases grouped with points. The student's code
runs in a worker process with a per-case time limit (:mod:`.runner`); whatever it does (raise, loop
forever, return the wrong dtype, modify its input) becomes a failed case with a message, and known
mistakes are named by comparing its outputs with known-wrong variants (:mod:`.grader`).

Assignments (module: function the student writes)

* :mod:`.checks_prune`: ``magnitude_mask``, ``lp_channel_scores``, ``nm_mask``,
  ``sensitivity_table``;
* :mod:`.checks_nn`: ``conv2d_im2col``, ``linear_backward``, ``masked_sgd_step``;
* :mod:`.checks_quantize`: ``affine_qparams``, ``affine_quantize``, ``kmeans_assign``,
  ``kmeans_update``;
* :mod:`.checks_lowrank`: ``svd_truncate``;
* :mod:`.checks_distill`: ``kd_loss``.

The catalogue of every assignment (signature, case groups, mistakes) is ``README.md`` next to this
file, written by ``python -m tinyprune.grading.catalogue``.

Entry points: :func:`grade` (a .py or .ipynb file, text / JSON / Gradescope output),
:func:`grade_source`, :func:`~.gradescope.run_autograder`.
"""

from . import (  # noqa: F401 - registers the assignments
    checks_distill,
    checks_lowrank,
    checks_nn,
    checks_prune,
    checks_quantize,
)
from .cases import ASSIGNMENTS, Assignment, Case, CaseGroup, Mistake, get_assignment, register
from .grader import grade_source
from .gradescope import run_autograder, to_gradescope
from .result import CaseResult, Diagnosis, GradeResult, GroupResult
from .submission import grade, grade_file, load_source

__all__ = ["ASSIGNMENTS", "Assignment", "Case", "CaseGroup", "CaseResult", "Diagnosis",
           "GradeResult", "GroupResult", "Mistake", "get_assignment", "grade", "grade_file",
           "grade_source", "load_source", "register", "run_autograder", "to_gradescope"]
