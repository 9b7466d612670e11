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
from .lottery import (
    LotteryResult,
    imp_prune_masks,
    imp_rates,
    lottery_ticket,
    mask_jaccard,
    random_masks_like,
    reset_weights_,
)
from .masked import apply_masks_, check_masks, remove_masks_, set_masks_
from .model_pruning import prune_model
from .nm import is_nm_compliant, nm_group_view, nm_mask, nm_mask_naive
from .nm_storage import NMSparse
from .schedules import (
    AGP,
    Iterative,
    OneShot,
    PruningSchedule,
    agp_sparsity,
    han_threshold_mask,
    iterative_sparsities,
)
from .select import global_masks, n_to_prune, prune_weight, select_mask
from .sensitivity import (
    DEFAULT_RATIOS,
    SensitivityResult,
    apply_ratios,
    format_sensitivity,
    select_threshold,
    sensitivity_scan,
    sensitivity_scan_naive,
    validation_split,
)
from .thinning import removable_units, thin_model

__all__ = [
    "AGP", "DEFAULT_RATIOS", "Iterative", "LotteryResult", "OneShot", "PruningSchedule",
    "SensitivityResult", "agp_sparsity", "apply_ratios", "format_sensitivity", "han_threshold_mask",
    "imp_prune_masks", "imp_rates", "iterative_sparsities", "lottery_ticket", "mask_jaccard",
    "random_masks_like", "reset_weights_", "select_threshold",
    "sensitivity_scan", "sensitivity_scan_naive", "validation_split",
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
