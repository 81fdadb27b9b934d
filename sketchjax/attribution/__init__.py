"""Stroke-level explainability (SPEC §3): SLA, P-SLA, baselines, faithfulness metrics, figures.

Quick use with the pre-trained DoodleNet::

    from functools import partial
    from sketchjax.attribution import class_score, sla, psla
    from sketchjax.models.doodlenet import DoodleNet, doodlenet_recipe, load_doodlenet

    model, variables, names = load_doodlenet()
    recipe = doodlenet_recipe(canvas=128, width=7)
    logit = class_score(partial(model.apply, variables))           # F(images, classes) -> [B]
    S = recipe.stroke_rasters(xy, pen, valid, max_strokes=K)       # [B, K, 128, 128]
    stroke_attr = sla(logit, S, classes, finish=recipe.finish)      # .strokes: [B, K]
    point_attr = psla(logit, recipe.distance, xy, pen, valid, classes, max_strokes=K)

See :mod:`sketchjax.attribution.core` for the methods, :mod:`~sketchjax.attribution.metrics`
for deletion / insertion AUC and rank agreement, :mod:`~sketchjax.attribution.plot` for figures.
"""
from sketchjax.attribution.core import (
    PointAttribution,
    ScoreFn,
    StrokeAttribution,
    class_score,
    cosine_score,
    drawing_strokes,
    integrated_gradients,
    occlusion,
    occlusion_sketch,
    point_to_stroke,
    present_strokes,
    psla,
    random_attribution,
    sla,
    sla_sketch,
    smoothgrad,
)
from sketchjax.attribution.metrics import (
    curve_auc,
    deletion_curve,
    drawing_order_correlation,
    mean_ci,
    rank_correlation,
    stroke_order,
)

__all__ = [
    "ScoreFn",
    "StrokeAttribution",
    "PointAttribution",
    "class_score",
    "cosine_score",
    "present_strokes",
    "drawing_strokes",
    "sla",
    "occlusion",
    "sla_sketch",
    "occlusion_sketch",
    "integrated_gradients",
    "random_attribution",
    "psla",
    "smoothgrad",
    "point_to_stroke",
    "stroke_order",
    "deletion_curve",
    "curve_auc",
    "rank_correlation",
    "drawing_order_correlation",
    "mean_ci",
]
