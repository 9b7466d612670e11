"""Knowledge distillation (technique layer): a small student learns from a large teacher's
softened outputs (Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015).

The lecture's slide "What is knowledge distillation?" (transferring a large model's behaviour to a
smaller one) maps to:

* :mod:`~tinyprune.distill.loss`: soft targets :func:`softmax_with_temperature`, the loss
  ``alpha T^2 KL(q^T || p^T) + (1 - alpha) CE`` as a forward/backward pair
  (:func:`distillation_loss_forward`, :func:`distillation_loss_backward`) and as the ``loss=``
  of ``fit`` (:class:`DistillationLoss`);
* :mod:`~tinyprune.distill.train`: :func:`distill`, one call that trains any student (dense,
  pruned, quantized or factorized) from a teacher, and :func:`compute_teacher_logits`.
"""

from .loss import (
    DistillationLoss,
    check_temperature,
    distillation_loss_backward,
    distillation_loss_forward,
    softmax_with_temperature,
)
from .train import compute_teacher_logits, distill

__all__ = [
    "DistillationLoss",
    "check_temperature",
    "compute_teacher_logits",
    "distill",
    "distillation_loss_backward",
    "distillation_loss_forward",
    "softmax_with_temperature",
]
