"""medveil.cxr: the deformation operator, pair sampling, DP-Pix, metrics, phantoms and a short attacker training."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medveil.cxr import controls as C  # noqa: E402
from medveil.cxr import data as D  # noqa: E402
from medveil.cxr import metrics as M  # noqa: E402
from medveil.cxr import warp as W  # noqa: E402
from medveil.cxr.models import Anonymiser, Classifier, DirectGenerator, SiameseNet, UNet  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------- warp

def test_mu_zero_is_exactly_the_identity():
    """The displacement is exactly zero, so the grid is exactly the identity grid; what is left is grid_sample's
    float32 arithmetic (~1e-5), far below one grey level: an 8-bit image comes back bit for bit."""
    torch.manual_seed(0)
    x = torch.randint(0, 256, (3, 1, 32, 40)).float() / 255
    raw = 10 * torch.randn(3, 2, 32, 40)
    assert torch.equal(W.displacement(raw, 0.0, 2.0), torch.zeros_like(raw))
    out = W.warp(x, raw, 0.0, 2.0)
    assert (out - x).abs().max() < 1e-4
    assert torch.equal(torch.round(out * 255), torch.round(x * 255))
    gen = Anonymiser(mu=0.0, sigma=2.0, base=4)
    assert torch.equal(torch.round(gen(x[:, :, :32, :32]) * 255), torch.round(x[:, :, :32, :32] * 255))


def test_original_whole_grid_smoothing_is_not_the_identity_at_the_border():
    x = torch.rand(1, 1, 32, 32)
    out = W.warp(x, torch.zeros(1, 2, 32, 32), 0.0, 2.0, smooth_whole_grid=True)
    inner = (slice(None), slice(None), slice(8, 24), slice(8, 24))
    assert torch.allclose(out[inner], x[inner], atol=1e-5)  # zero padding only shrinks the grid near the border
    assert (out[..., :2, :] - x[..., :2, :]).abs().max() > 0.01


def test_displacement_is_bounded_by_mu_and_reported_in_pixels():
    torch.manual_seed(1)
    mu, size = 0.02, 64
    raw = 100 * torch.randn(2, 2, size, size)
    d = W.displacement(raw, mu, 2.0)
    assert d.abs().max() <= mu + 1e-7
    mean_px, max_px = W.measured_displacement_px(raw, mu, 2.0)
    assert 0 < mean_px <= max_px <= np.sqrt(2) * W.max_pixel_displacement(mu, size) + 1e-5
    assert W.max_pixel_displacement(mu, size) == pytest.approx(mu * 31.5)
    # a saturated constant field moves a horizontal ramp by exactly mu * (W - 1) / 2 pixels
    ramp = torch.arange(size, dtype=torch.float32).expand(1, 1, size, size).clone()
    field = torch.zeros(1, 2, size, size)
    field[:, 0] = 50.0  # tanh -> 1
    out = W.warp(ramp, field, mu, 2.0)
    shift = (ramp - out)[..., 10:-10, 10:-10]
    assert torch.allclose(shift, torch.full_like(shift, W.max_pixel_displacement(mu, size)), atol=1e-3)


def test_gradients_reach_every_anonymiser_parameter():
    torch.manual_seed(2)
    gen = Anonymiser(mu=0.05, sigma=1.0, base=4)
    x = torch.rand(2, 1, 32, 32)
    target = torch.roll(x, 1, -1)
    ((gen(x) - target) ** 2).mean().backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_model_shapes():
    x = torch.rand(2, 1, 32, 32)
    snn = SiameseNet((8, 16, 32))
    assert snn.embedding(x).shape == (2, 128) and 0 <= float(snn.embedding(x).min()) <= 1
    assert snn(x, x).shape == (2,)
    assert Classifier(3, (8, 16))(x).shape == (2, 3)
    assert UNet(1, 1, 4)(x).shape == (2, 1, 32, 32)
    assert torch.equal(DirectGenerator(4)(x), x)  # zero-initialised residual


# ------------------------------------------------------------------------------------------------ data

def _toy_index():
    patients = np.array(["a"] * 6 + ["b"] * 2 + ["c"] * 3 + ["d"] * 1 + ["e"] * 2 + ["f"] * 3 + ["g"] * 2)
    sources = np.array(["s1"] * 6 + ["s1"] * 2 + ["s2"] * 3 + ["s2"] + ["s1"] * 2 + ["s2"] * 3 + ["s2"] * 2)
    return patients, sources


def test_pairs_are_balanced_within_source_capped_and_inside_the_split():
    patients, sources = _toy_index()
    idx = np.arange(len(patients))
    pairs = D.sample_pairs(idx, patients, sources, np.random.default_rng(0), cap=4)
    pos, neg = pairs[pairs[:, 2] == 1], pairs[pairs[:, 2] == 0]
    assert len(pos) == len(neg) > 0
    assert np.array_equal(pos[:, 0], neg[:, 0])  # each negative reuses a positive's anchor
    assert all(patients[i] == patients[j] and i != j for i, j, _ in pos)
    assert all(patients[i] != patients[j] and sources[i] == sources[j] for i, j, _ in neg)
    assert set(neg[:, 1].tolist()) <= set(pos[:, 1].tolist())  # partners: same pool for both labels
    counts = {p: int((patients[pos[:, 0]] == p).sum()) for p in set(patients)}
    assert counts["a"] == 4 and counts["b"] == 2 and counts["d"] == 0
    sub = np.array([0, 1, 2, 6, 7, 12, 13])
    sub_pairs = D.sample_pairs(sub, patients, sources, np.random.default_rng(1), cap=10)
    assert set(sub_pairs[:, :2].ravel()) <= set(sub.tolist())


def test_no_single_image_says_same_or_different():
    """Neither the anchor nor the partner alone predicts the label (the leak of random negative partners)."""
    rng = np.random.default_rng(4)
    counts = rng.choice([1, 1, 1, 2, 3, 8], 200)
    patients = np.repeat([f"p{i}" for i in range(200)], counts)
    sources = np.array(["h" if int(p[1:]) % 2 else "i" for p in patients])
    pairs = D.sample_pairs(np.arange(len(patients)), patients, sources, np.random.default_rng(0), cap=6)
    size = {f"p{i}": int(c) for i, c in enumerate(counts)}
    partner_size = np.array([size[patients[j]] for j in pairs[:, 1]], float)
    assert abs(M.auc(pairs[:, 2], partner_size) - 0.5) < 0.06
    anchor_size = np.array([size[patients[i]] for i in pairs[:, 0]], float)
    assert M.auc(pairs[:, 2], anchor_size) == pytest.approx(0.5)


def test_folds_are_patient_disjoint_and_cover_everything():
    rng = np.random.default_rng(3)
    patients = np.array([f"p{int(v)}" for v in rng.integers(0, 60, 300)])
    sources = np.array(["h" if int(p[1:]) % 3 == 0 else "i" for p in patients])
    for run in range(5):
        s = D.split_indices(patients, sources, run)
        sets = {k: set(patients[v].tolist()) for k, v in s.items()}
        assert not (sets["train"] & sets["val"])
        assert not (sets["train"] & sets["test"])
        assert not (sets["val"] & sets["test"])
        assert sorted(np.concatenate(list(s.values())).tolist()) == list(range(len(patients)))
    tests = [set(patients[D.split_indices(patients, sources, r)["test"]].tolist()) for r in range(5)]
    assert set().union(*tests) == set(patients.tolist()) and sum(map(len, tests)) == len(set(patients.tolist()))


def test_finding_labels():
    assert D.finding_labels("COVID-19").tolist() == [1, 0, 0, 0]
    assert D.finding_labels("COVID-19, ARDS").tolist() == [1, 1, 0, 0]
    assert D.finding_labels("Klebsiella").tolist() == [0, 0, 1, 0]
    assert D.finding_labels("No Finding").tolist() == [0, 0, 0, 1]
    assert np.isnan(D.finding_labels("todo")).all()


def test_phantoms_are_deterministic_and_carry_masks():
    a = D.make_phantoms(4, 3, 32, seed=5)
    b = D.make_phantoms(4, 3, 32, seed=5)
    assert np.array_equal(a.images, b.images) and a.images.shape == (12, 1, 32, 32)
    assert a.images.min() >= 0 and a.images.max() <= 1
    assert a.masks.shape == a.images.shape and 0.05 < a.masks.mean() < 0.6
    assert len(set(a.patients.tolist())) == 4


# ---------------------------------------------------------------------------------------------- DP-Pix

def test_dp_pix_scale_follows_fan_2018():
    assert C.laplace_scale(4, 0.1, 1, max_value=255) == pytest.approx(255 / (16 * 0.1))
    assert C.laplace_scale(8, 1.0, 1) == pytest.approx(1 / 64)


def test_dp_pix_is_cell_means_plus_one_laplace_draw_per_cell():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    means = x.reshape(2, 1, 16, 4, 16, 4).mean((3, 5))
    exact = C.dp_pix(x, 4, 1e12, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(exact, means.repeat_interleave(4, 2).repeat_interleave(4, 3), atol=1e-6)
    noisy = C.dp_pix(x, 4, 0.5, generator=torch.Generator().manual_seed(1), clip=False)
    cells = noisy.reshape(2, 1, 16, 4, 16, 4)
    assert torch.equal(cells.amax((3, 5)), cells.amin((3, 5)))  # one value per cell
    noise = (cells[:, :, :, 0, :, 0] - means).ravel()
    s = C.laplace_scale(4, 0.5)
    assert float(noise.abs().mean()) == pytest.approx(s, rel=0.15)  # E|Laplace(0, s)| = s
    assert float(noise.mean()) == pytest.approx(0, abs=0.25 * s)


def test_dp_pix_partial_cells_and_clipping():
    x = torch.rand(1, 1, 10, 10)
    out = C.dp_pix(x, 4, 0.01)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


# --------------------------------------------------------------------------------------------- metrics

def test_auc_matches_pairwise_definition_with_ties():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.5, 0.5, 0.9, 0.2, 0.3])
    assert M.auc(y, s) == pytest.approx(7.5 / 9)
    assert np.isnan(M.auc(np.ones(3), np.arange(3)))


def test_bootstrap_by_patient_and_other_metrics():
    rng = np.random.default_rng(0)
    y = np.tile([1, 0], 100)
    s = y + rng.normal(0, 1.0, 200)
    groups = np.repeat(np.arange(20), 10)
    boots = M.bootstrap_auc_by_patient(y, s, groups, 200)
    lo, hi = M.ci(boots)
    assert lo < M.auc(y, s) < hi and hi - lo < 0.3
    m = np.zeros((2, 1, 8, 8))
    m[:, :, 2:6, 2:6] = 1
    assert M.dice(m, m) == 1.0 and M.dice(m, np.zeros_like(m)) == 0.0
    img = rng.random((2, 1, 32, 32))
    assert M.ssim(img, img) == pytest.approx(1.0) and M.ssim(img, rng.random(img.shape)) < 0.2
    assert M.psnr(img, img + 0.1) == pytest.approx(20.0, abs=1e-6)
    labels = np.array([[1, np.nan], [0, 1], [1, 0], [0, 1]], dtype=float)
    scores = np.array([[0.9, 0], [0.1, 0], [0.8, 0], [0.2, 0]])
    assert M.mean_label_auc(labels, scores, min_pos=1) == pytest.approx(0.75)  # (1 + 0.5) / 2


# ----------------------------------------------------------------------------- a short attacker training

@pytest.mark.slow  # cxr training
def test_phantom_attacker_learns_identity_on_a_cpu():
    from medveil.cxr import train as T

    ds = D.make_phantoms(n_patients=60, images_per_patient=3, size=48, seed=0)
    split = D.split_indices(ds.patients, ds.sources, 0)
    budget = T.Budget(snn_epochs=6, batch=16, widths=(8, 16, 32))
    val_pairs = D.sample_pairs(split["val"], ds.patients, ds.sources, np.random.default_rng(1), 12)
    test_pairs = D.sample_pairs(split["test"], ds.patients, ds.sources, np.random.default_rng(2), 12)
    epochs: list[int] = []
    snn = T.train_attacker(ds.images, ds, split["train"], ds.images, ds.images, val_pairs, budget, seed=0,
                           on_epoch=lambda: epochs.append(1))
    assert len(epochs) == budget.snn_epochs  # progress hears every epoch
    auc = M.auc(test_pairs[:, 2], T.pair_scores(snn, ds.images, ds.images, test_pairs))
    assert auc > 0.65  # about 0.76 with these seeds (0.72-0.80 over phantom seeds); chance is 0.5
