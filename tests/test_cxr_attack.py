"""The stronger attackers and matched controls of ``medveil cxr attack``, on phantoms (seconds, no wall clock)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from medveil.cli import app  # noqa: E402
from medveil.cxr import attack as A  # noqa: E402
from medveil.cxr import controls as C  # noqa: E402
from medveil.cxr import data as D  # noqa: E402
from medveil.cxr import metrics as M  # noqa: E402
from medveil.cxr import registration as R  # noqa: E402
from medveil.cxr import warp as W  # noqa: E402
from medveil.cxr.attackers import MetricBudget, augment, pair_similarity, train_metric_attacker  # noqa: E402

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_phase_randomised_field_keeps_spectrum_and_mean_displacement_but_not_the_field():
    g = torch.Generator().manual_seed(0)
    raw = W.smooth(torch.randn(3, 2, 48, 48, generator=g), 3.0)
    disp = W.displacement(5 * raw, 0.05, 2.0)
    out = C.phase_randomised(disp, torch.Generator().manual_seed(1))
    mag = lambda d: d.pow(2).sum(1).sqrt().mean((1, 2))  # noqa: E731
    assert torch.allclose(mag(out), mag(disp), rtol=1e-4)
    # the same power spectrum up to the one global rescale per image
    ratio = torch.fft.rfft2(out.double()).abs() / torch.fft.rfft2(disp.double()).abs().clamp(min=1e-12)
    per_image = ratio.flatten(1).median(1).values
    assert torch.allclose(ratio[..., 1:5, 1:5], per_image[:, None, None, None].expand(3, 2, 4, 4), rtol=1e-3)
    assert np.corrcoef(out.flatten().numpy(), disp.flatten().numpy())[0, 1] < 0.5  # no longer the trained field
    big = C.phase_randomised(disp, torch.Generator().manual_seed(1), scale=4.0)
    assert torch.allclose(mag(big), 4 * mag(disp), rtol=1e-4)
    bounded = C.phase_randomised(disp, torch.Generator().manual_seed(1), scale=4.0, bound=0.05)
    assert bounded.abs().max() <= 0.05 + 1e-7


def test_similarity_measures():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 1, 32, 32, generator=g)
    mask = torch.ones_like(a)
    assert torch.allclose(R.masked_ncc(a, a, mask), torch.ones(2), atol=1e-5)
    assert torch.allclose(R.masked_ncc(a, 1 - a, mask), -torch.ones(2), atol=1e-5)
    noise = torch.rand(2, 1, 32, 32, generator=g)
    assert (R.mutual_information(a, a, mask) > R.mutual_information(a, noise, mask) + 0.5).all()


def test_registration_undoes_a_pose_change_and_tells_patients_apart():
    ds = D.make_phantoms(n_patients=12, images_per_patient=3, size=64, seed=2)
    masks = ds.masks
    pairs = D.sample_pairs(np.arange(len(ds)), ds.patients, ds.sources, np.random.default_rng(0), cap=4)
    cfg = R.RegistrationConfig.tiny()
    scores = R.register_and_score(ds.images[pairs[:, 0]], ds.images[pairs[:, 1]], masks[pairs[:, 1]], cfg)
    assert set(scores) == set(R.SCORES) and all(len(v) == len(pairs) for v in scores.values())
    assert M.auc(pairs[:, 2], scores[R.PRIMARY]) > 0.75  # about 0.9 with these seeds; chance is 0.5
    # an image against a shifted copy of itself: the affine step brings it back
    x = torch.from_numpy(ds.images[:2])
    theta = torch.tensor([[[1.0, 0, 0.08], [0, 1.0, -0.05]]]).repeat(2, 1, 1)
    moved = torch.nn.functional.grid_sample(x, torch.nn.functional.affine_grid(theta, list(x.shape),
                                                                               align_corners=False),
                                            padding_mode="border", align_corners=False).numpy()
    before = R.masked_ncc(torch.from_numpy(moved), x, torch.from_numpy(masks[:2])).numpy()
    after = R.register_and_score(moved, ds.images[:2], masks[:2], cfg)["ncc_affine"]
    assert (after > before + 0.05).all() and (after > 0.9).all()


def test_metric_attacker_on_phantoms_and_augmentation_keeps_range():
    rng = np.random.default_rng(0)
    x = torch.rand(4, 1, 32, 32)
    y = augment(x, rng)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 and not torch.equal(x, y)
    ds = D.make_phantoms(n_patients=40, images_per_patient=3, size=32, seed=1)
    split = D.split_indices(ds.patients, ds.sources, 0)
    val = D.sample_pairs(split["val"], ds.patients, ds.sources, np.random.default_rng(1), 6)
    test = D.sample_pairs(split["test"], ds.patients, ds.sources, np.random.default_rng(2), 6)
    model = train_metric_attacker(ds.images, ds.images, ds.patients, ds.sources, split["train"], val,
                                  MetricBudget(epochs=6, batch=16, widths=(8, 16, 32), embed=32), seed=0)
    s = pair_similarity(model, ds.images, ds.images, test)
    assert s.shape == (len(test),) and np.all(np.abs(s) <= 1 + 1e-5)
    assert M.auc(test[:, 2], s) > 0.6  # about 0.75 with these seeds; chance is 0.5


def _fake_runs(aucs_shift: float, n_runs: int = 4, seed: int = 0) -> dict[int, list[dict]]:
    rng = np.random.default_rng(seed)
    runs = {}
    for r in range(n_runs):
        y = np.tile([1, 0], 60)
        s = y * (1.0 + aucs_shift) + rng.normal(0, 1, len(y))
        runs[r] = [{"pairs": np.c_[np.zeros((len(y), 2), int), y].tolist(), "scores": s.tolist(),
                    "anchor_patient": np.repeat(np.arange(30), 4).astype(str).tolist(),
                    "hannover": (np.arange(len(y)) % 3 == 0).tolist(), "auc": M.auc(y, s)}]
    return runs


def test_two_level_bootstrap_contains_the_mean_and_a_paired_difference_to_itself_is_zero():
    runs = _fake_runs(0.0)
    boots = A.two_level_bootstrap(runs, 200)
    lo, hi = M.ci(boots)
    mean = np.mean(list(A._run_aucs(runs).values()))
    assert lo < mean < hi
    same = A.two_level_bootstrap(runs, 50, baseline=runs)
    assert np.allclose(same, 0)
    stronger = A.two_level_bootstrap(_fake_runs(1.0, seed=1), 200, baseline=runs)
    assert M.ci(stronger)[0] > 0


@pytest.mark.slow  # cxr training and evaluation
def test_attack_command_on_phantoms_writes_both_tables(tmp_path):
    out = tmp_path / "cxr-attack.md"
    out.write_text("# Attack\n\nhand-written text\n")
    result = runner.invoke(app, ["cxr", "attack", "--phantom", "--size", "32", "--runs", "0",
                                 "--defences", "prichexy,matched,matched_x4,blur", "--budget", "tiny",
                                 "--attacker-seeds", "2", "--work", str(tmp_path / "work"), "--out", str(out),
                                 "--bootstrap", "30", "--quiet"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "hand-written text" in text and text.count("cxr-attack:begin") == 1
    assert "Registration attacker" in text and "Learned attacker" in text
    tables = json.loads(out.with_suffix(".json").read_text())["tables"]
    rows = {r["defence"]: r for r in tables["registration"]}
    assert set(rows) == {"none", "prichexy", "matched", "matched_x4", "blur"}
    assert rows["none"]["ssim"] == pytest.approx(1.0)
    # the matched control moves pixels as much as the trained field, on average, and x4 four times as much
    assert rows["matched"]["disp_mean_px"] == pytest.approx(rows["prichexy"]["disp_mean_px"], rel=0.1)
    assert rows["matched_x4"]["disp_mean_px"] == pytest.approx(4 * rows["prichexy"]["disp_mean_px"], rel=0.1)
    metric = {r["defence"]: r for r in tables["metric"]}
    assert metric["none"]["attacker_seeds"] == 2 and metric["none"]["attacker_seed_std"] is not None
    assert "delta_auc_ci" in metric["prichexy"]
    assert out.with_suffix(".png").stat().st_size > 1000
    # progress hears every defence of the run; with everything cached, each is "cached"
    from medveil.cxr import train as T

    outcomes: list[str] = []
    A.attack_run(D.make_phantoms(n_patients=60, images_per_patient=4, size=32, seed=0), 0,
                 [A.BY_NAME[name] for name in ("none", "prichexy", "matched", "matched_x4", "blur")],
                 ["registration", "metric"], T.Budget.tiny(), tmp_path / "work", metric_budget=MetricBudget.tiny(),
                 attacker_seeds=2, reg_config=R.RegistrationConfig.tiny(), on_defence=outcomes.append)
    assert outcomes == ["cached"] * 5
    # resumable: a second call with everything cached only aggregates
    again = runner.invoke(app, ["cxr", "attack", "--phantom", "--size", "32", "--runs", "0", "--defences",
                                "prichexy,matched,matched_x4,blur", "--budget", "tiny", "--work",
                                str(tmp_path / "work"), "--out", str(out), "--bootstrap", "30", "--quiet"])
    assert again.exit_code == 0, again.output
