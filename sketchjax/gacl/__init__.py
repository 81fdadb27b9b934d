"""GACL: quality scores learned from feature magnitude without quality labels (G §3, SPEC §5).

:mod:`sketchjax.gacl.core` holds the pure functions (the four instantiations, the regulariser
and its ``lambda_g`` bound, NaN-safe angles, soft binning and its schedule);
:mod:`sketchjax.gacl.head` the Flax cosine head and classifier; :mod:`sketchjax.gacl.metrics`
the set-level metrics quality scores are judged by (Spearman/PLCC, ROC AUC, pair agreement).
"""
from sketchjax.gacl.core import (
    KINDS,
    QUALITY_RANGES,
    GACLConfig,
    class_cosines,
    cut_points_at,
    gacl_logits,
    gacl_loss,
    lambda_g_lower_bound,
    quality_from_norm,
    quality_scores,
    regulariser,
    safe_arccos,
    soft_bin,
    target_logit,
)
from sketchjax.gacl.head import CosineHead, GACLClassifier, quality
from sketchjax.gacl.metrics import pair_agreement, plcc, ranks, roc_auc, spearman, stratified_auc

__all__ = [
    "KINDS", "QUALITY_RANGES", "GACLConfig", "class_cosines", "cut_points_at", "gacl_logits", "gacl_loss",
    "lambda_g_lower_bound", "quality_from_norm", "quality_scores", "regulariser", "safe_arccos", "soft_bin",
    "target_logit", "CosineHead", "GACLClassifier", "quality",
    "pair_agreement", "plcc", "ranks", "roc_auc", "spearman", "stratified_auc",
]
