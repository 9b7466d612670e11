"""Pruning (technique layer): criteria -> scores, granularity -> structural sets, selection ->
boolean masks (True = kept), N:M patterns and their compressed storage."""

from .criteria import (
    CRITERIA,
    cluster_redundancy_scores,
    geometric_median_scores,
    kmeans,
    l1,
    l2,
    lp_norm,
    magnitude,
    random_scores,
)
from .granularity import GRANULARITIES, expand_to_weight, group_reduce, set_shape
from .masked import apply_masks_, check_masks, remove_masks_, set_masks_
from .model_pruning import prune_model
from .nm import is_nm_compliant, nm_group_view, nm_mask, nm_mask_naive
from .nm_storage import NMSparse
from .select import global_masks, n_to_prune, prune_weight, select_mask
from .thinning import removable_units, thin_model

__all__ = [
    "CRITERIA",
    "GRANULARITIES",
    "NMSparse",
    "apply_masks_",
    "check_masks",
    "prune_model",
    "remove_masks_",
    "removable_units",
    "set_masks_",
    "thin_model",
    "cluster_redundancy_scores",
    "expand_to_weight",
    "geometric_median_scores",
    "global_masks",
    "group_reduce",
    "is_nm_compliant",
    "kmeans",
    "l1",
    "l2",
    "lp_norm",
    "magnitude",
    "n_to_prune",
    "nm_group_view",
    "nm_mask",
    "nm_mask_naive",
    "prune_weight",
    "random_scores",
    "select_mask",
    "set_shape",
]
