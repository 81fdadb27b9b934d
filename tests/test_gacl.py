"""GACL layer (issue 5 §1, SPEC §5): logits, loss, lambda_g bound, NaN-safety, soft binning."""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from sketchjax.gacl import (
    KINDS,
    GACLClassifier,
    GACLConfig,
    class_cosines,
    cut_points_at,
    gacl_logits,
    gacl_loss,
    lambda_g_lower_bound,
    quality,
    quality_from_norm,
    quality_scores,
    regulariser,
    soft_bin,
)


def _numpy_logits(features, w, labels, cfg):
    f = np.asarray(features, np.float64)
    w = np.asarray(w, np.float64)
    cos = (f / np.linalg.norm(f, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=0, keepdims=True))
    a = np.linalg.norm(f, axis=1)
    q = cfg.l_q + (a - cfg.l_a) * (cfg.u_q - cfg.l_q) / (cfg.u_a - cfg.l_a)
    out = cfg.s * cos
    for i, y in enumerate(labels):
        c, th = cos[i, y], math.acos(cos[i, y])
        out[i, y] = {"scale": (1 - q[i]) * cfg.s * c, "mul": cfg.s * math.cos(q[i] * th),
                     "add": cfg.s * math.cos(th + q[i]), "cos": cfg.s * c - cfg.margin_scale * q[i]}[cfg.kind]
    return out, q


@pytest.fixture
def batch():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    features = jax.nn.relu(jax.random.normal(k1, (6, 8))) * 12.0 + 0.5  # norms ~ 20-60
    w = jax.random.normal(k2, (8, 5))
    labels = jnp.array([0, 1, 2, 3, 4, 1])
    return features, w, labels


@pytest.mark.parametrize("kind", KINDS)
def test_logits_match_a_hand_computation(kind, batch):
    features, w, labels = batch
    for cfg in (GACLConfig(kind), GACLConfig(kind, s=30.0, margin_scale=30.0 if kind == "cos" else 1.0)):
        cos, norm = class_cosines(features, w)
        q = quality_from_norm(norm, cfg)
        expected, q_ref = _numpy_logits(features, w, np.asarray(labels), cfg)
        np.testing.assert_allclose(q, q_ref, rtol=1e-5)
        np.testing.assert_allclose(gacl_logits(cos, q, labels, cfg), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_margin_weight_blends_the_target_logit_from_plain_softmax_to_gacl(kind, batch):
    features, w, labels = batch
    cfg = GACLConfig(kind)
    cos, norm = class_cosines(features, w)
    q = quality_from_norm(norm, cfg)
    full, _ = _numpy_logits(features, w, np.asarray(labels), cfg)
    plain = cfg.s * np.asarray(cos)
    f = jax.jit(lambda r: gacl_logits(cos, q, labels, cfg, r))  # traced weight: one compilation
    np.testing.assert_allclose(f(0.0), plain, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(f(1.0), full, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(f(0.25), 0.25 * full + 0.75 * plain, rtol=1e-4, atol=1e-3)
    assert f._cache_size() == 1
    # the loss is GACL at strength r: blended margin, regulariser weighted r lambda_g
    loss, parts = gacl_loss(cos, norm, labels, cfg, margin_weight=0.25)
    np.testing.assert_allclose(parts["logits"], f(0.25), rtol=1e-6)
    assert float(loss) == pytest.approx(float(jnp.mean(parts["ce"] + 0.25 * cfg.lambda_g * parts["reg"])), rel=1e-6)
    # r = 0: the plain normalised softmax, which does not depend on the norm (q) at all
    g = jax.grad(lambda n: gacl_loss(cos, n, labels, cfg, margin_weight=0.0)[0])(norm)
    assert float(jnp.max(jnp.abs(g))) == 0.0


def test_margin_warmup_ramps_with_the_step():
    from sketchjax.classifier import GACL_HEAD_DEFAULTS, make_gacl_objective

    cfg = GACLConfig("cos", margin_scale=64.0)
    head = {**GACL_HEAD_DEFAULTS, "margin_scale": 64.0, "margin_warmup": 2.0, "soft_binning": False}
    objective = jax.jit(make_gacl_objective(head, cfg, steps_per_epoch=10, num_epochs=8))
    cos = jnp.array([[0.5, 0.1, -0.2], [0.0, 0.3, 0.4]])
    norm, labels = jnp.array([30.0, 55.0]), jnp.array([0, 2])
    for step, r in ((0, 0.0), (5, 0.25), (20, 1.0), (70, 1.0)):
        loss, metrics = objective(cos, norm, labels, step)
        assert float(metrics["margin_weight"]) == pytest.approx(r)
        assert float(loss) == pytest.approx(float(gacl_loss(cos, norm, labels, cfg, margin_weight=r)[0]), rel=1e-6)
    off = make_gacl_objective({**head, "margin_warmup": 0.0}, cfg, 10, 8)
    loss, metrics = off(cos, norm, labels, 0)
    assert "margin_weight" not in metrics and float(loss) == pytest.approx(float(gacl_loss(cos, norm, labels, cfg)[0]))


@pytest.mark.parametrize("kind", KINDS)
def test_loss_gradients_check_against_finite_differences(kind, batch):
    features, w, labels = batch
    cfg = GACLConfig(kind, s=16.0)

    def loss(f, w):
        cos, norm = class_cosines(f, w)
        return gacl_loss(cos, norm, labels, cfg)[0]

    check_grads(loss, (features, w), order=1, modes=("rev",), eps=1e-2, atol=5e-2, rtol=5e-2)


def test_norms_and_cosines_of_huge_features_do_not_overflow():
    """float32 squares overflow from |x| ~ 1.8e19: the norm is computed scaled, the same function
    (value and gradient) at ordinary magnitudes."""
    w = jnp.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    f = jnp.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [0.3, -0.4, 0.0]])
    for scale in (1.0, 1e20, 1e36):
        cos, norm = class_cosines(f * scale, w)
        assert bool(jnp.all(jnp.isfinite(cos))) and bool(jnp.all(jnp.isfinite(norm))), scale
        np.testing.assert_allclose(np.asarray(norm)[[0, 2]] / scale, [5.0, 0.5], rtol=1e-6)
        np.testing.assert_allclose(np.asarray(cos)[[0, 2]], [[0.6, 0.8], [0.6, -0.8]], rtol=1e-6)
    assert float(class_cosines(f, w)[1][1]) == pytest.approx(1e-6)  # a zero feature: sqrt(eps), never 0
    # the gradient of the norm is x / ||x|| (the scale is a constant to autodiff), and 0 at x = 0
    g = jax.grad(lambda x: jnp.sum(class_cosines(x, w)[1]))(f)
    np.testing.assert_allclose(g, [[0.6, 0.8, 0.0], [0.0, 0.0, 0.0], [0.6, -0.8, 0.0]], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_are_finite_at_cos_plus_and_minus_one(kind):
    w = jnp.eye(3) * 2.0
    features = jnp.array([[30.0, 0.0, 0.0], [0.0, 0.0, 40.0], [0.0, 0.0, 0.0]])  # cos = 1, cos = 0 / 1, a zero feature
    labels = jnp.array([0, 2, 1])
    cfg = GACLConfig(kind)

    def loss(f, w, sign):
        cos, norm = class_cosines(f * sign, w)
        return gacl_loss(cos, norm, labels, cfg)[0]

    for sign in (1.0, -1.0):  # -1 gives cos = -1 with the labelled class
        g = jax.grad(loss, argnums=(0, 1))(features, w, sign)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in g), (kind, sign)
        assert bool(jnp.isfinite(loss(features, w, sign)))


@pytest.mark.parametrize("kind", KINDS)
def test_loss_is_convex_in_q_with_minimiser_inside_the_range(kind):
    cfg = GACLConfig(kind)
    rng = np.random.default_rng(1)
    # theta in [0, ~53 deg] (cos >= 0.6) keeps theta + q <= pi/2 for "add"; other classes random
    cos_y = rng.uniform(0.6, 0.999, size=40)
    others = rng.uniform(-0.5, 0.95, size=(40, 9))
    cos = jnp.asarray(np.concatenate([cos_y[:, None], others], axis=1), jnp.float32)
    labels = jnp.zeros(40, jnp.int32)
    span = cfg.u_q - cfg.l_q
    grid = jnp.linspace(cfg.q_floor, cfg.u_q + span, 801)

    def loss_one(q, cos_row):  # one sample's loss at a scalar q
        logits = gacl_logits(cos_row[None], q[None], labels[:1], cfg)
        return -jax.nn.log_softmax(logits, axis=-1)[0, 0] + cfg.lambda_g * regulariser(q, cfg.u_q)

    over_grid = lambda f: jax.vmap(jax.vmap(f, in_axes=(None, 0)), in_axes=(0, None))  # noqa: E731  [G, 40]
    values = np.asarray(over_grid(loss_one)(grid, cos), np.float64)
    # strictly convex: the exact second derivative (not a difference quotient, whose float32
    # rounding would need a tolerance) is positive at every q of the grid for every sample
    second = np.asarray(over_grid(jax.grad(jax.grad(loss_one)))(grid, cos))
    assert np.all(np.isfinite(second)) and second.min() > 0, (kind, second.min())
    q_star = np.asarray(grid)[np.argmin(values, axis=0)]
    assert np.all((q_star > cfg.l_q) & (q_star < cfg.u_q)), (kind, q_star.min(), q_star.max())


def test_lambda_g_bound_follows_the_paper_and_is_enforced():
    # G-11: lambda_g > s l^2 u^2 / (u^2 - l^2) with l = 0.1, u = 0.3, s = 64
    assert lambda_g_lower_bound("scale", 0.1, 0.3, 64) == pytest.approx(64 * 0.01 * 0.09 / 0.08)
    assert lambda_g_lower_bound("mul", 1.1, 1.25, 64) == pytest.approx(64 * math.pi / 2 * 1.21 * 1.5625 / (1.5625 - 1.21))
    assert lambda_g_lower_bound("cos", 0.35, 0.8, 64) == pytest.approx(0.1225 * 0.64 / (0.64 - 0.1225))
    assert lambda_g_lower_bound("cos", 0.35, 0.8, 64, margin_scale=64) == pytest.approx(64 * 0.1225 * 0.64 / 0.5175)
    for kind in KINDS:
        cfg = GACLConfig(kind)
        assert cfg.lambda_g == pytest.approx(2 * cfg.lambda_g_bound)
        with pytest.raises(ValueError, match="must exceed the lower bound"):
            GACLConfig(kind, lambda_g=cfg.lambda_g_bound)
    with pytest.raises(ValueError, match="unknown GACL kind 'arc'"):
        GACLConfig("arc")
    with pytest.raises(ValueError, match="q <= 0 at norm 0"):
        GACLConfig("scale", l_a=50.0)


def test_soft_binning_tends_to_hard_binning_and_compiles_once():
    l_q, u_q = 0.35, 0.8
    q = jnp.asarray(np.random.default_rng(2).uniform(l_q, u_q, size=200), jnp.float32)
    f = jax.jit(soft_bin, static_argnames=("l_q", "u_q", "tau", "max_cuts"))
    for n in (5, 9, 20):
        width = (u_q - l_q) / (n + 1)
        k = np.floor((np.asarray(q) - l_q) / width)
        hard = l_q + (k + 0.5) * width
        far = np.abs((np.asarray(q) - l_q) / width - np.round((np.asarray(q) - l_q) / width)) > 0.05  # not at an edge
        np.testing.assert_allclose(np.asarray(f(q, n, l_q=l_q, u_q=u_q, tau=1e-5))[far], hard[far], atol=1e-4)
        soft = np.asarray(f(q, n, l_q=l_q, u_q=u_q, tau=0.05))
        assert np.abs(soft - hard)[far].mean() > 1e-3  # a warm temperature is measurably soft
    assert f._cache_size() == 2  # n is traced: one compilation per temperature
    g = jax.grad(lambda x: jnp.sum(soft_bin(x, 5, l_q, u_q, tau=1e-3)))(q)
    assert bool(jnp.all(jnp.isfinite(g)))


def test_cut_point_schedule_holds_five_then_rises_to_twenty():
    n = [int(cut_points_at(e, 20)) for e in range(20)]
    assert n[:6] == [5] * 6 and n[-1] == 20 and all(a <= b for a, b in zip(n, n[1:]))
    assert int(jax.jit(cut_points_at, static_argnums=1)(12, 20)) == n[12]  # traceable epoch
    # short runs, as the docstring says (it claimed a 6-epoch run stays at 5; an audit): the ramp
    # lasts at least one epoch, inside the last one here; at most hold_epochs epochs: no ramp
    assert [int(cut_points_at(e, 6)) for e in (4.9, 5.0, 5.5, 5.9)] == [5, 5, 12, 19]
    assert {int(cut_points_at(e, 5)) for e in (0.0, 2.5, 4.9)} == {5}


def test_classifier_reports_quality_prediction_and_trains_the_norm():
    class Encoder(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            return nn.relu(nn.Dense(16)(x))

    model = GACLClassifier(Encoder(), 3)
    x = jax.random.normal(jax.random.PRNGKey(0), (12, 4))
    labels = jnp.arange(12) % 3
    variables = model.init(jax.random.PRNGKey(1), x)
    cfg = GACLConfig("cos")
    q, cos_pred, pred = quality(model.apply, variables, x, cfg)
    cos, norm = model.apply(variables, x)
    np.testing.assert_array_equal(pred, jnp.argmax(cos, -1))
    np.testing.assert_allclose(cos_pred, jnp.max(cos, -1))
    np.testing.assert_allclose(q, quality_from_norm(norm, cfg))
    # the regulariser pulls small norms up (q towards u_q): the gradient of the loss grows the features
    g = jax.grad(lambda v: gacl_loss(*model.apply(v, x), labels, cfg)[0])(variables)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(g))
    step = jax.tree.map(lambda p, d: p - 0.5 * d, variables, g)
    assert float(jnp.mean(model.apply(step, x)[1])) > float(jnp.mean(norm))


# ---- set-level metrics (sketchjax.gacl.metrics) -------------------------------------------

def test_ranks_match_scipy_with_ties_and_mask():
    from scipy.stats import rankdata
    from sketchjax.gacl import ranks

    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=50).astype(np.float32)  # many ties
    mask = rng.random(50) > 0.3
    got = np.asarray(ranks(x, mask))
    np.testing.assert_allclose(got[mask], rankdata(x[mask]), rtol=1e-6)
    assert (got[~mask] == 0).all()


def test_spearman_plcc_auc_agree_with_scipy_and_sklearn_formulas():
    from scipy.stats import pearsonr, spearmanr
    from sketchjax.gacl import plcc, roc_auc, spearman

    rng = np.random.default_rng(1)
    a = rng.normal(size=300).astype(np.float32)
    b = (a + rng.normal(size=300)).round(1).astype(np.float32)
    np.testing.assert_allclose(float(spearman(a, b)), spearmanr(a, b).statistic, atol=1e-5)
    np.testing.assert_allclose(float(plcc(a, b)), pearsonr(a, b).statistic, atol=1e-5)
    labels = b > 0.3
    # AUC by its definition: P(score_pos > score_neg) + 0.5 P(tie), over all pairs
    sp, sn = a[labels], a[~labels]
    expect = np.mean((sp[:, None] > sn[None, :]) + 0.5 * (sp[:, None] == sn[None, :]))
    np.testing.assert_allclose(float(roc_auc(a, labels)), expect, atol=1e-6)
    assert np.isnan(float(roc_auc(a, np.ones(300, bool))))  # one class only
    # heavily imbalanced (10^5 positives, 100 negatives): exact to float32 (was off by ~5e-5);
    # the reference counts, for each negative, the positives above it and tied with it
    big = rng.normal(size=100_000).astype(np.float32)
    neg = rng.normal(-0.3, 1.0, size=100).astype(np.float32)
    sorted_pos = np.sort(big)
    above = len(big) - np.searchsorted(sorted_pos, neg, side="right")
    ties = np.searchsorted(sorted_pos, neg, side="right") - np.searchsorted(sorted_pos, neg, side="left")
    exact = (above.sum() + 0.5 * ties.sum()) / (len(big) * len(neg))
    scores = np.concatenate([big, neg])
    is_pos = np.r_[np.ones(len(big), bool), np.zeros(len(neg), bool)]
    np.testing.assert_allclose(float(roc_auc(scores, is_pos)), exact, atol=2e-6)
    np.testing.assert_allclose(float(roc_auc(-scores, ~is_pos)), exact, atol=2e-6)  # the mirror case
    assert np.isnan(float(spearman(a, np.ones(300))))  # constant side


def test_stratified_auc_counts_only_pairs_within_a_stratum():
    from sketchjax.gacl import roc_auc, stratified_auc

    rng = np.random.default_rng(2)
    scores = rng.normal(size=200).astype(np.float32).round(1)
    positive = rng.random(200) < 0.3
    strata = rng.integers(0, 4, size=200)
    sp, sn = scores[positive], scores[~positive]
    same = strata[positive][:, None] == strata[~positive][None, :]
    wins = (sp[:, None] > sn[None, :]) + 0.5 * (sp[:, None] == sn[None, :])
    expect = wins[same].mean()  # by definition: over the (pos, neg) pairs of one stratum
    np.testing.assert_allclose(float(stratified_auc(scores, positive, strata, 4)), expect, atol=1e-6)
    # one stratum: the plain AUC
    np.testing.assert_allclose(float(stratified_auc(scores, positive, np.zeros(200, int), 1)),
                               float(roc_auc(scores, positive)), atol=1e-6)
    # a score that is the stratum itself knows nothing within a stratum
    assert float(stratified_auc(strata.astype(np.float32), positive, strata, 4)) == 0.5
    assert np.isnan(float(stratified_auc(scores, positive, np.where(positive, 0, 1), 2)))  # no mixed stratum
    # a NaN score is NaN, as for roc_auc, also in a stratum of one class (it used to be left out)
    lone = np.append(strata, 4)
    with_nan = np.append(scores, np.nan).astype(np.float32)
    assert np.isnan(float(stratified_auc(with_nan, np.append(positive, True), lone, 5)))
    assert np.isnan(float(roc_auc(with_nan, np.append(positive, True))))


def test_pair_agreement_counts_ties_half():
    from sketchjax.gacl import pair_agreement

    assert float(pair_agreement(jnp.array([2.0, 1.0, 3.0, 0.0]), jnp.array([1.0, 1.0, 4.0, 0.0]))) == 0.5
    assert float(pair_agreement(jnp.array([2.0, 1.0]), jnp.array([1.0, 5.0]), jnp.array([True, False]))) == 1.0
    # a NaN or infinite score among the pairs used makes the fraction undefined, not a loss
    assert np.isnan(float(pair_agreement(jnp.array([1.0, jnp.nan]), jnp.array([0.0, 0.0]))))
    assert np.isnan(float(pair_agreement(jnp.array([1.0, 2.0]), jnp.array([0.0, jnp.inf]))))
    assert float(pair_agreement(jnp.array([1.0, jnp.nan]), jnp.array([0.0, 0.0]), jnp.array([True, False]))) == 1.0


def test_soft_bin_tau_width_keeps_gradients_inside_bins():
    l_q, u_q = 0.35, 0.8
    mid = jnp.array([l_q + 0.5 * (u_q - l_q) / 6])  # middle of the first of 6 bins (5 cuts)
    flat = jax.grad(lambda x: jnp.sum(soft_bin(x, 5, l_q, u_q)))(mid)  # the absolute default 0.1/64
    damped = jax.grad(lambda x: jnp.sum(soft_bin(x, 5, l_q, u_q, tau_width=0.125)))(mid)
    assert abs(float(flat[0])) < 1e-6
    # as documented: exp(-1 / (2 tau_width)) / tau_width from each neighbouring cut point; the
    # first bin has one (l_q is not a cut point), an inner bin two
    np.testing.assert_allclose(float(damped[0]), math.exp(-4) / 0.125, rtol=0.1)
    inner = jnp.array([l_q + 1.5 * (u_q - l_q) / 6])
    g_inner = jax.grad(lambda x: jnp.sum(soft_bin(x, 5, l_q, u_q, tau_width=0.125)))(inner)
    np.testing.assert_allclose(float(g_inner[0]), 2 * math.exp(-4) / 0.125, rtol=0.1)
    cut = jnp.array([l_q + (u_q - l_q) / 6])
    at_cut = jax.grad(lambda x: jnp.sum(soft_bin(x, 5, l_q, u_q, tau_width=0.125)))(cut)
    assert 1.5 < float(at_cut[0]) < 2.5  # ~1 / (4 * 0.125)
    # the same shape with 20 cut points (temperature follows the width)
    mid20 = jnp.array([l_q + 0.5 * (u_q - l_q) / 21])
    g20 = jax.grad(lambda x: jnp.sum(soft_bin(x, 20, l_q, u_q, tau_width=0.125)))(mid20)
    np.testing.assert_allclose(float(g20[0]), float(damped[0]), rtol=0.05)


def test_loss_weights_temperature_and_cut_count_as_documented(batch):
    features, w, labels = batch
    cos, norm = class_cosines(features, w)
    cfg = GACLConfig(kind="cos")
    per_example = gacl_loss(cos, norm, labels, cfg)[1]
    full = per_example["ce"] + cfg.lambda_g * per_example["reg"]
    small = jnp.array([0.25, 0.25, 0.0, 0.0, 0.0, 0.0])  # weights summing to less than 1
    np.testing.assert_allclose(gacl_loss(cos, norm, labels, cfg, weights=small)[0], jnp.mean(full[:2]), rtol=1e-6)
    assert float(gacl_loss(cos, norm, labels, cfg, weights=jnp.zeros(6))[0]) == 0.0
    # a traced temperature (annealed inside a jitted step) and a vmapped one
    q = jnp.linspace(0.35, 0.8, 7)
    eager = soft_bin(q, 5, 0.35, 0.8, tau=0.01)
    np.testing.assert_allclose(jax.jit(lambda t: soft_bin(q, 5, 0.35, 0.8, tau=t))(0.01), eager, rtol=1e-6)
    widths = jax.vmap(lambda t: gacl_loss(cos, norm, labels, cfg, n_cuts=5, tau_width=t)[0])(jnp.array([0.1, 0.3]))
    assert widths.shape == (2,) and bool(jnp.all(jnp.isfinite(widths)))
    with pytest.raises(ValueError, match="whole number"):
        soft_bin(q, 5.5, 0.35, 0.8)
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        soft_bin(q, 5, 0.35, 0.8, tau=float("nan"))


def test_gacl_settings_out_of_range_are_named(batch):
    """Found by an audit: each of these was accepted and gave a wrong number (a negative or NaN
    lambda_g bound, q_hat outside [l_q, u_q], 0 cut points, a difference of two losses) or a
    JAX broadcasting error naming nothing."""
    features, w, labels = batch
    cos, norm = class_cosines(features, w)
    cfg = GACLConfig(kind="cos")
    q = jnp.linspace(0.35, 0.8, 7)
    for kw in ({"s": -64.0}, {"s": float("nan")}, {"margin_scale": -1.0}):
        with pytest.raises(ValueError, match=rf"lambda_g_lower_bound needs a finite {next(iter(kw))} > 0"):
            lambda_g_lower_bound("cos" if "margin_scale" in kw else "scale", 0.1, 0.3, **kw)
    with pytest.raises(ValueError, match="0 < l_q < u_q < inf"):
        lambda_g_lower_bound("scale", 0.1, float("inf"))
    with pytest.raises(ValueError, match="soft_bin needs finite l_q < u_q"):
        soft_bin(q, 5, 0.35, float("inf"))
    for kw in ({"tau": float("inf")}, {"tau_width": float("inf")}):
        with pytest.raises(ValueError, match="temperature must be finite and > 0"):
            gacl_loss(cos, norm, labels, cfg, n_cuts=5, **kw)
    for epoch in (float("nan"), -1.0):
        with pytest.raises(ValueError, match="cut_points_at: epoch must be a number >= 0"):
            cut_points_at(epoch, 20)
    assert int(cut_points_at(0, 20)) == 5 and int(jax.jit(lambda e: cut_points_at(e, 20))(19.0)) == 20
    with pytest.raises(ValueError, match=r"weights must be >= 0"):
        gacl_loss(cos, norm, labels, cfg, weights=jnp.array([1.0, -1.0, 0.0, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"margin_weight must be a scalar or one per row \(6,\), got shape \(3,\)"):
        gacl_loss(cos, norm, labels, cfg, margin_weight=jnp.full(3, 0.5))
    per_row = gacl_loss(cos, norm, labels, cfg, margin_weight=jnp.full(6, 0.5))[0]
    np.testing.assert_allclose(per_row, gacl_loss(cos, norm, labels, cfg, margin_weight=0.5)[0], rtol=1e-6)
    with pytest.raises(ValueError, match="GACL cos: s must be a number, got True"):  # was taken as s = 1
        GACLConfig(kind="cos", s=True)


def test_metrics_refuse_masks_that_are_not_flags_and_fractional_strata():
    # a mask of 0.5, 2 or NaN counted as True; num_strata=2.5 was accepted
    from sketchjax.gacl.metrics import pair_agreement, plcc, ranks, roc_auc, spearman, stratified_auc

    a, b = jnp.array([1.0, 2.0, 3.0]), jnp.array([2.0, 1.0, 3.0])
    positive, strata = jnp.array([True, False, True]), jnp.array([0, 0, 1])
    for mask in (jnp.array([1.0, 0.5, 1.0]), jnp.array([2, 1, 0]), jnp.array([1.0, jnp.nan, 1.0])):
        for name, call in (("ranks", lambda m: ranks(a, m)), ("plcc", lambda m: plcc(a, b, m)),
                           ("spearman", lambda m: spearman(a, b, m)), ("roc_auc", lambda m: roc_auc(a, positive, m)),
                           ("stratified_auc", lambda m: stratified_auc(a, positive, strata, 2, m)),
                           ("pair_agreement", lambda m: pair_agreement(a, b, m))):
            with pytest.raises(ValueError, match=rf"{name}: mask must be boolean \(or 0/1\)"):
                call(mask)
    assert float(spearman(a, b, jnp.array([1, 0, 1]))) == pytest.approx(1.0)  # 0/1 integers are flags
    with pytest.raises(ValueError, match="stratified_auc: num_strata must be an integer >= 1"):
        stratified_auc(a, positive, strata, 2.5)


def test_metrics_with_ties_masks_and_non_finite_values():
    from sketchjax.gacl import plcc, ranks, roc_auc, spearman

    scores = jnp.array([1.0, 1.0, 2.0, 0.0, jnp.nan, 5.0])
    positive = jnp.array([True, False, True, False, True, False])
    mask = jnp.array([True, True, True, True, False, False])
    # pairs (pos, neg) over the mask: (1 vs 1) tie = 0.5, (1 vs 0) = 1, (2 vs 1) = 1, (2 vs 0) = 1
    assert float(roc_auc(scores, positive, mask)) == pytest.approx(3.5 / 4)
    assert np.isnan(float(roc_auc(scores, positive)))  # a NaN among the entries used
    np.testing.assert_allclose(np.asarray(ranks(jnp.array([3.0, jnp.inf, 1.0, 9.0]), jnp.array([1, 1, 1, 0], bool))),
                               [2.0, 3.0, 1.0, 0.0])  # +inf is a value; the off-mask entry is not ranked
    a = jnp.array([1.0, 2.0, 3.0, jnp.nan])
    b = jnp.array([2.0, 4.0, 7.0, 1.0])
    keep = jnp.array([True, True, True, False])
    assert float(plcc(a, b, keep)) == pytest.approx(float(np.corrcoef([1, 2, 3], [2, 4, 7])[0, 1]), abs=1e-6)
    assert float(spearman(a, b, keep)) == pytest.approx(1.0)
    assert np.isnan(float(spearman(a, b))) and np.isnan(float(plcc(a, b)))


def test_quality_api_vmaps_over_single_examples_and_bad_settings_are_named():
    f = jnp.abs(jax.random.normal(jax.random.PRNGKey(0), (4, 8)))
    w = jax.random.normal(jax.random.PRNGKey(1), (8, 3))
    cos, norm = class_cosines(f, w)
    cos1, norm1 = jax.vmap(lambda x: class_cosines(x, w))(f)  # one unbatched example at a time
    np.testing.assert_allclose(cos1, cos, rtol=1e-6)
    np.testing.assert_allclose(norm1, norm, rtol=1e-6)
    cfg = GACLConfig("cos")
    q, cos_pred, pred = jax.vmap(lambda c, n: quality_scores(c, n, cfg))(cos1, norm1)
    np.testing.assert_allclose(q, quality_scores(cos, norm, cfg)[0], rtol=1e-6)
    # cut counts: a concrete one out of range is refused, a traced one is clipped into range
    q = jnp.array([0.5, 0.79])
    for bad in (0, 21):
        with pytest.raises(ValueError, match=r"n_cuts must be a whole number in \[1, max_cuts=20\]"):
            soft_bin(q, bad, cfg.l_q, cfg.u_q)
    clipped = jax.jit(lambda n: soft_bin(q, n, cfg.l_q, cfg.u_q, tau_width=0.05))(25)
    np.testing.assert_allclose(clipped, soft_bin(q, 20, cfg.l_q, cfg.u_q, tau_width=0.05), rtol=1e-6)
    for kw in ({"s": -64.0}, {"s": float("nan")}, {"margin_scale": -1.0}, {"eps": 0.0}):
        with pytest.raises(ValueError, match=f"{next(iter(kw))} must be a finite number > 0"):
            GACLConfig("cos", **kw)


def test_loss_metrics_and_config_refuse_inputs_that_would_broadcast_or_mislabel():
    """Mismatched lengths used to broadcast (one row's label or weight applied to all) and
    out-of-range labels to wrap or NaN; now each is a named ValueError."""
    from sketchjax.gacl import gacl_logits, gacl_loss, pair_agreement, plcc, roc_auc, soft_bin, spearman, stratified_auc

    cfg = GACLConfig(kind="cos")
    rng = np.random.default_rng(0)
    cos = jnp.asarray(rng.uniform(-1, 1, (4, 3)), jnp.float32)
    norm, labels = jnp.asarray(rng.uniform(12, 80, 4), jnp.float32), np.array([0, 2, 1, 2])
    for kwargs, problem in ((dict(labels=labels[:1]), "labels must have shape"), (dict(norm=norm[:1]), "norm must have shape"),
                            (dict(weights=np.ones(1)), "weights must have shape"),
                            (dict(labels=np.array([0, 2, 1, 3])), r"labels must be integers in \[0, 3\)"),
                            (dict(labels=np.array([0, 2, 1, -1])), r"labels must be integers"),
                            (dict(labels=np.array([0.0, 2.7, 1.0, 2.0])), r"labels must be integers")):
        args = dict(cos=cos, norm=norm, labels=labels) | kwargs
        with pytest.raises(ValueError, match=f"gacl_loss: {problem}"):
            gacl_loss(args["cos"], args["norm"], args["labels"], cfg, weights=kwargs.get("weights"))
    with pytest.raises(ValueError, match="gacl_logits: q must have shape"):
        gacl_logits(cos, norm[:2], labels, cfg)
    a, b = np.arange(5.0), np.array([1.0, 0.0, 3.0, 2.0, 5.0])
    for fn in (plcc, spearman, pair_agreement):
        with pytest.raises(ValueError, match=f"{fn.__name__}: needs 1-D arrays of one length"):
            fn(a, b[:1])
    with pytest.raises(ValueError, match="roc_auc: needs 1-D"):
        roc_auc(a, np.array([True]))
    with pytest.raises(ValueError, match="roc_auc: positive must be boolean"):
        roc_auc(a, np.array([0, 0.3, 1, 1, 0]))
    with pytest.raises(ValueError, match=r"stratified_auc: strata must be integers in \[0, 2\)"):
        stratified_auc(a, a > 2, np.array([0, 1, 2, 0, 1]), 2)
    for bad in (dict(tau=0.0), dict(tau=-1.0), dict(tau_width=0.0), dict(tau_width=float("nan"))):
        with pytest.raises(ValueError, match="soft_bin: the temperature must be finite and > 0"):
            soft_bin(jnp.array([0.5]), 5, cfg.l_q, cfg.u_q, **bad)
    with pytest.raises(ValueError, match="need 0 <= l_a < u_a"):
        GACLConfig(kind="cos", u_a=float("inf"))
    # the checks are shape checks under jit too
    with pytest.raises(ValueError, match="gacl_loss: labels must have shape"):
        jax.jit(lambda c, n, y: gacl_loss(c, n, y, cfg)[0])(cos, norm, labels[:1])


def test_audit_edge_cases_low_precision_angles_empty_sets_and_extreme_scales():
    """Found by an audit (each gave a wrong number or a crash): bfloat16 cosines at 1 gave NaN
    gradients for the `mul` kind (1 - 1e-6 rounds to 1 in bfloat16); the rank metrics raised
    on an empty set instead of NaN; plcc of scores near 1e20 (1e-20) was 0 (NaN)."""
    from sketchjax.gacl import metrics, safe_arccos

    bf = jnp.bfloat16
    assert np.isfinite(float(jax.grad(safe_arccos)(jnp.asarray(1.0, bf))))
    assert safe_arccos(jnp.asarray(0.5, bf)).dtype == bf
    cos, norm = jnp.array([[1.0, 0.0, 0.0]], bf), jnp.array([50.0], bf)
    for kind in ("mul", "add"):
        g = jax.grad(lambda c, kind=kind: gacl_loss(c, norm, jnp.array([0]), GACLConfig(kind=kind))[0])(cos)
        assert np.isfinite(np.asarray(g, np.float32)).all(), kind
    empty = np.zeros(0, np.float32)
    for value in (metrics.spearman(empty, empty), metrics.plcc(empty, empty),
                  metrics.roc_auc(empty, empty.astype(bool)), metrics.pair_agreement(empty, empty)):
        assert np.isnan(float(value))
    a, b = jnp.array([1.0, 2.0, 3.0, 4.5]), jnp.array([2.0, 1.0, 4.0, 5.0])
    want = np.corrcoef(np.asarray(a, np.float64), np.asarray(b, np.float64))[0, 1]
    for scale in (1.0, 1e20, 1e-20):
        np.testing.assert_allclose(float(metrics.plcc(a * scale, b)), want, rtol=1e-5)
    # an empty or reversed quality range: a division by zero, a negative bound, a silent q_hat
    with pytest.raises(ValueError, match="0 < l_q < u_q"):
        lambda_g_lower_bound("cos", 0.8, 0.8)
    with pytest.raises(ValueError, match="soft_bin needs finite l_q < u_q"):
        soft_bin(jnp.array([0.5]), 5, 0.8, 0.35)


def test_low_precision_features_get_a_float32_head_and_the_config_holds_plain_numbers():
    """A bfloat16 backbone's features gave a bfloat16 `q` (a norm near 30 steps by 0.125: `q` took a
    few dozen values) and a loss whose dtype depended on `n_cuts`; a config built from a NumPy /
    JAX scalar was unhashable as a static jit argument, and lambda_g = inf was accepted."""
    rng = np.random.default_rng(0)
    f32 = jnp.asarray(np.abs(rng.normal(3.0, 1.0, (64, 16))), jnp.float32)
    w = jnp.asarray(rng.normal(size=(16, 5)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 5, 64))
    cfg = GACLConfig("cos", l_a=0.0, u_a=30.0)
    cos16, norm16 = class_cosines(f32.astype(jnp.bfloat16), w)
    assert cos16.dtype == norm16.dtype == jnp.float32
    cos, norm = class_cosines(f32.astype(jnp.bfloat16).astype(jnp.float32), w)
    np.testing.assert_allclose(cos16, cos, rtol=1e-6, atol=1e-6)  # the same numbers, widened first
    q = quality_from_norm(norm16.astype(jnp.bfloat16), cfg)
    assert q.dtype == jnp.float32 and len(np.unique(np.asarray(q))) == len(np.unique(np.asarray(norm16.astype(jnp.bfloat16))))
    for n_cuts in (None, 5):
        loss, parts = gacl_loss(cos16, norm16, labels, cfg, n_cuts=n_cuts)
        assert loss.dtype == parts["q"].dtype == parts["q_used"].dtype == jnp.float32, n_cuts
    # numbers of any scalar type become Python floats: the config stays a static argument
    c = GACLConfig("cos", lambda_g=jnp.float32(1.0), s=np.float64(64.0), l_a=np.int64(10))
    assert all(type(getattr(c, k)) is float for k in ("lambda_g", "s", "l_a", "u_q"))
    assert hash(c) == hash(GACLConfig("cos", lambda_g=1.0))
    step = jax.jit(lambda co, n, y, cfg: gacl_loss(co, n, y, cfg)[0], static_argnums=3)
    np.testing.assert_allclose(step(cos, norm, labels, c), gacl_loss(cos, norm, labels, GACLConfig("cos", lambda_g=1.0))[0])
    for bad, match in ((dict(lambda_g=float("inf")), "and be finite"),
                       (dict(u_q=float("inf")), "need 0 < l_q < u_q"),
                       (dict(s="64"), "s must be a number"),
                       (dict(s=[64.0]), "s must be a number")):
        with pytest.raises(ValueError, match=match):
            GACLConfig("cos", **bad)
    # a concrete margin weight outside [0, 1] is refused; a traced one is the caller's schedule
    for r in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"margin_weight must lie in \[0, 1\]"):
            gacl_loss(cos, norm, labels, cfg, margin_weight=r)
    np.testing.assert_allclose(jax.jit(lambda r: gacl_loss(cos, norm, labels, cfg, margin_weight=r)[0])(0.5),
                               gacl_loss(cos, norm, labels, cfg, margin_weight=0.5)[0], rtol=1e-6)


def test_shape_and_schedule_arguments_get_a_value_error():
    """Found by an API audit: mismatched feature/weight sizes raised TypeError/IndexError from
    inside the matmul, cut_points_at(0, -3) was accepted, area_weights(10, 0) divided by zero."""
    from sketchjax.gacl import class_cosines, cut_points_at
    from sketchjax.render.resize import area_weights

    with pytest.raises(ValueError, match=r"class_cosines: need features \[..., D\] and class_weights \[D, C\]"):
        class_cosines(jnp.ones((2, 3)), jnp.ones((4, 5)))
    with pytest.raises(ValueError, match="class_cosines"):
        class_cosines(jnp.ones((2, 3)), jnp.ones(3))
    for args in ((0, -3), (0, 10, 0), (0, 10, 5, 20, -1), (0, 2.5)):
        with pytest.raises(ValueError, match="cut_points_at: .* must be an integer"):
            cut_points_at(*args)
    with pytest.raises(ValueError, match="area_weights: n_out must be an integer >= 1"):
        area_weights(10, 0)


def test_audit_plcc_of_a_constant_side_is_nan_and_correlations_stay_in_range():
    """An audit: the float32 mean of 1,000 copies of 0.1 is off by a rounding error that the
    magnitude scaling blew up to a 'correlation' (-7.5e-9, and plcc(a, a) = 1.0000001);
    spearman refused Python lists that plcc accepts."""
    from sketchjax.gacl import plcc, spearman

    rng = np.random.default_rng(0)
    noise = rng.normal(size=1000)
    jplcc, jspearman = jax.jit(plcc), jax.jit(spearman)  # eager calls of many shapes took ~10 s
    for const, other in ((np.full(1000, 0.1, np.float32), noise), (np.full(7, 0.1), np.arange(7.0))):
        assert np.isnan(float(jplcc(const, other))) and np.isnan(float(jplcc(const, const)))
        assert np.isnan(float(jspearman(const, other)))
    assert np.isnan(float(plcc(np.full(7, 0.1), np.arange(7.0))))  # and eagerly
    rows = jnp.asarray(rng.normal(size=(100, 50)), jnp.float32)
    assert float(jnp.max(jnp.abs(jax.vmap(plcc)(rows, rows)))) <= 1.0
    assert float(plcc([1.0, 2.0], [2.0, 1.0])) == -1.0
    assert np.isnan(float(plcc([1.0, 1.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], np.array([1, 1, 0, 0], bool))))
    assert float(spearman([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])) == pytest.approx(0.5)
    # a mean that is exactly representable keeps the answer of the one-pass formula
    assert float(plcc(np.arange(5.0), np.arange(5.0) ** 2)) == pytest.approx(np.corrcoef(np.arange(5), np.arange(5) ** 2)[0, 1], abs=1e-6)


def test_plcc_gradient_is_finite_where_its_value_is_nan():
    """A PLCC loss over batches averaged with nanmean: a batch whose two sides are both constant
    (value NaN, dropped) gave NaN gradients (d sqrt at 0) that poisoned the whole mean."""
    from jax.test_util import check_grads

    from sketchjax.gacl import plcc

    a = jnp.array([0.1, 0.5, 0.3, 0.9])
    const = jnp.full(4, 2.0)

    def loss(x):
        return jnp.nanmean(jnp.stack([plcc(x, x ** 2), plcc(const + 0.0 * x, const)]))

    assert np.isnan(float(plcc(const, const)))
    g = jax.grad(loss)(a)
    np.testing.assert_allclose(g, jax.grad(lambda x: plcc(x, x ** 2))(a), rtol=1e-6)
    assert np.all(np.isfinite(jax.grad(lambda x: plcc(x, x))(const)))
    check_grads(lambda x: plcc(x, a ** 2), (a,), order=2, modes=["rev"])


def test_audit_replace_derives_the_defaulted_ranges_for_the_new_kind():
    """dataclasses.replace(GACLConfig('scale'), kind='cos') keeps scale's l_q/u_q/lambda_g (it
    copies fields as they stand); GACLConfig.replace, copy.replace's __replace__ and --set derive
    the defaulted ones anew and keep what the caller set, in any order of overrides."""
    import dataclasses
    import pickle

    from sketchjax.apps.pseudo_label import PseudoLabelConfig
    from sketchjax.training.config import apply_overrides, config_to_dict

    moved = GACLConfig("scale").replace(kind="cos")
    assert moved == GACLConfig("cos") and hash(moved) == hash(GACLConfig("cos"))
    assert pickle.loads(pickle.dumps(moved)).replace(kind="add") == GACLConfig("add")
    assert GACLConfig("cos").__replace__(margin_scale=64.0) == GACLConfig("cos", margin_scale=64.0)
    kept = GACLConfig("cos").replace(kind="scale", l_q=0.05)  # the pinned l_q stays, u_q follows the kind
    assert (kept.l_q, kept.u_q) == (0.05, GACLConfig("scale").u_q)
    assert GACLConfig("cos").replace(kind="scale", l_q=0.35, u_q=0.8).l_q == 0.35  # equal to cos's default
    assert GACLConfig("cos", lambda_g=5.0).replace(s=32.0).lambda_g == 5.0
    assert dataclasses.replace(GACLConfig("scale"), kind="add").l_q == GACLConfig("scale").l_q  # as documented
    with pytest.raises(TypeError, match=r"unknown field\(s\) \['foo'\]"):
        GACLConfig().replace(foo=1)
    for overrides in (["gacl.kind=scale", "gacl.l_q=0.15"], ["gacl.l_q=0.15", "gacl.kind=scale"]):
        cfg = apply_overrides(PseudoLabelConfig(), ["gacl.margin_scale=1.0"] + overrides)
        assert cfg.gacl == GACLConfig("scale", l_q=0.15)
    with pytest.raises(ValueError, match=r"GACL scale: need 0 < l_q < u_q, got 0.35, 0.3"):  # a pinned l_q stays
        apply_overrides(PseudoLabelConfig(), ["gacl.l_q=0.35", "gacl.kind=scale"])
    assert "_defaulted" not in config_to_dict(PseudoLabelConfig())["gacl"]
    # otherwise config_to_dict is dataclasses.asdict: nested containers, namedtuples included
    import collections

    Pair = collections.namedtuple("Pair", "a b")
    Holder = dataclasses.make_dataclass("Holder", [("p", Pair, Pair(1, (2, GACLConfig("add")))), ("xs", list, None)])
    holder = Holder(xs=[{"g": GACLConfig("cos")}])
    got = config_to_dict(holder)
    assert type(got["p"]) is Pair and got["p"].b[1] == config_to_dict(PseudoLabelConfig(gacl=GACLConfig("add")))["gacl"]
    assert got["xs"][0]["g"] == {k: v for k, v in dataclasses.asdict(GACLConfig("cos")).items() if k != "_defaulted"}
    with pytest.raises(KeyError, match="no field '_defaulted'"):
        apply_overrides(PseudoLabelConfig(), ["gacl._defaulted=()"])
    with pytest.raises(ValueError, match="GACL cos: l_q must be a number"):  # traced: named, as before
        jax.jit(lambda v: GACLConfig("cos").replace(l_q=v))(0.3)


def test_audit_gacl_loss_passes_its_cut_point_bound_to_soft_bin(batch):
    features, w, labels = batch
    cos, norm = class_cosines(features, w)
    cfg = GACLConfig("cos")
    loss = jax.jit(lambda n, m=20: gacl_loss(cos, norm, labels, cfg, n_cuts=n, max_cuts=m)[0],
                   static_argnums=1)
    assert float(loss(30)) == float(loss(20))  # traced: clipped to the default bound
    assert float(loss(30, 40)) != float(loss(20, 40))
    with pytest.raises(ValueError, match=r"n_cuts must be a whole number in \[1, max_cuts=20\]"):
        gacl_loss(cos, norm, labels, cfg, n_cuts=30)


def test_audit_soft_bin_of_a_diverged_q_weights_inf_and_zero_classes():
    """Found by an audit: q near the padding cut points (1e6, a diverging run) gave the padding
    bins mass, q_hat 1.3 for [0.35, 0.8]; an infinite example weight gave a NaN loss; zero
    classes were a NumPy reduction error and a ZeroDivisionError in the head's init."""
    from sketchjax.gacl import CosineHead

    q = jnp.array([0.5, 3e5, 1e6, 1e7, 1e30])
    q_hat = np.asarray(soft_bin(q, 5, 0.35, 0.8, tau_width=0.35))
    assert (q_hat >= 0.35).all() and (q_hat <= 0.8).all()
    np.testing.assert_allclose(q_hat[1:], q_hat[1])  # all in the top active bin
    below = jnp.linspace(-3.0, 5e3, 257)  # below the cap: the formula as without it
    assert float(jax.grad(lambda v: soft_bin(v, 5, 0.35, 0.8, tau_width=0.35))(0.6)) > 0
    width = 0.45 / 6
    i = jnp.arange(1, 21, dtype=jnp.float32)
    beta = jnp.where(i <= 5, 0.35 + i * width, 1e6)
    logits = (below[:, None] * jnp.arange(1, 22)[None] + jnp.concatenate([jnp.zeros(1), -jnp.cumsum(beta)])[None]) / (0.35 * width)
    want = jnp.sum(jax.nn.softmax(logits, -1) * (0.35 + (jnp.arange(21) + 0.5) * width)[None], -1)
    np.testing.assert_allclose(np.asarray(soft_bin(below, 5, 0.35, 0.8, tau_width=0.35)), np.asarray(want), atol=3e-7)
    cfg = GACLConfig(kind="cos")
    cos, norm = jnp.full((2, 3), 0.1), jnp.full((2,), 50.0)
    for bad in (np.inf, -np.inf, np.nan):
        with pytest.raises(ValueError, match="gacl_loss: weights must be >= 0 and finite"):
            gacl_loss(cos, norm, jnp.array([0, 1]), cfg, weights=jnp.array([1.0, bad]))
    with pytest.raises(ValueError, match=r"quality_scores: need cos \[..., C\] with C >= 1 classes"):
        quality_scores(jnp.zeros((2, 0)), jnp.zeros(2), cfg)
    with pytest.raises(ValueError, match="CosineHead: num_classes must be an integer >= 1"):
        CosineHead(0).init(jax.random.PRNGKey(0), jnp.ones((1, 4)))
