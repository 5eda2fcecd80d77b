"""PIRM RMSE, MS-SSIM, Perceptual Index, Ma et al.'s score (features + model loader) and LPIPS (offline)."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import scipy.fft
import scipy.io
import torch

from src.degradations.resize import imresize
from src.metrics.ma_features import build_sf_pyramid, ma_features
from src.metrics.ma_model import MaModel, load_ma_model, ma_score
from src.metrics.ms_ssim import ms_ssim
from src.metrics.niqe import niqe
from src.metrics.perceptual_index import perceptual_index, perceptual_index_or_reason, perceptual_scores
from src.metrics.rmse import rmse_y

pim = importlib.import_module("src.metrics.ma_features")  # the module (``src.metrics.lpips`` etc. are
lpips_mod = importlib.import_module("src.metrics.lpips")  # shadowed by the functions of the same name)


def _pink_noise(n: int = 144, seed: int = 0, channels: int = 3) -> torch.Tensor:
    """(C, n, n) 1/f noise in [0, 1] (natural-image-like spectrum), float32."""
    g = torch.Generator().manual_seed(seed)
    fy, fx = torch.fft.fftfreq(n).unsqueeze(1), torch.fft.fftfreq(n).unsqueeze(0)
    f = torch.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    out = []
    for _ in range(channels):
        x = torch.fft.ifft2(torch.fft.fft2(torch.randn(n, n, generator=g, dtype=torch.float64)) / f).real
        out.append(((x - x.mean()) / x.std() * 0.18 + 0.5).clamp(0, 1))
    return torch.stack(out).float()


# --- RMSE ---------------------------------------------------------------------------------------------------
def _hand_y(img: torch.Tensor) -> np.ndarray:
    """uint8 quantization then MATLAB rgb2ycbcr Y of a uint8 image, numpy.

    MATLAB: ``T = (1/255) * [65.481 128.553 24.966]``, ``imlincomb(T(1), R, T(2), G, T(3), B, 16)`` accumulated
    in double in that order, rounded half away from zero (the order matters: Y can be exactly x.5).
    """
    rgb = np.floor(np.clip(img.double().numpy(), 0, 1) * 255.0 + 0.5)
    t = [(1.0 / 255.0) * c for c in (65.481, 128.553, 24.966)]
    y = t[0] * rgb[0] + t[1] * rgb[1] + t[2] * rgb[2] + 16.0
    return np.floor(y + 0.5)


def test_rmse_matches_hand_computation():
    g = torch.Generator().manual_seed(0)
    hrs = [torch.rand(3, 20, 24, generator=g) for _ in range(3)]
    srs = [(hr + 0.05 * torch.randn(hr.shape, generator=g)).clamp(0, 1) for hr in hrs]
    mses = [np.mean((_hand_y(s)[4:-4, 4:-4] - _hand_y(h)[4:-4, 4:-4]) ** 2) for s, h in zip(srs, hrs)]
    expected = math.sqrt(np.mean(mses))  # PIRM: sqrt of the mean MSE, not the mean of per-image RMSEs
    assert rmse_y(srs, hrs) == pytest.approx(expected, rel=1e-12)
    assert rmse_y(torch.stack(srs), torch.stack(hrs), crop_border=4) == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(np.mean(np.sqrt(mses)), rel=1e-6)
    assert rmse_y(srs[0], srs[0]) == 0.0
    with pytest.raises(ValueError):
        rmse_y(srs, hrs[:2])


# --- MS-SSIM ------------------------------------------------------------------------------------------------
def test_ms_ssim_identical_is_one():
    img = _pink_noise(200)
    assert ms_ssim(img, img, crop_border=4) == pytest.approx(1.0, abs=1e-12)


def test_ms_ssim_equals_torchmetrics_on_known_pair():
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm_msssim

    hr = _pink_noise(200, seed=1)
    sr = imresize(imresize(hr, scale=0.5), scale=2.0).clamp(0, 1)
    value = ms_ssim(sr, hr, crop_border=2)
    ys, yh = (torch.from_numpy(_hand_y(x)[2:-2, 2:-2])[None, None] for x in (sr, hr))
    expected = tm_msssim(ys, yh, data_range=255.0)
    assert value == pytest.approx(float(expected), rel=1e-12)
    assert 0.5 < value < 1.0


def test_ms_ssim_too_small_names_needed_size():
    img = _pink_noise(180)
    with pytest.raises(ValueError, match="176x176"):
        ms_ssim(img, img, crop_border=4)  # 172x172 left
    assert ms_ssim(img, img, crop_border=2) == pytest.approx(1.0)


# --- Perceptual Index ---------------------------------------------------------------------------------------
def test_pi_formula():
    assert perceptual_index(6.0, 4.0) == pytest.approx(4.0)
    assert perceptual_index(ma_mean=8.5, niqe_mean=2.5) == pytest.approx(((10 - 8.5) + 2.5) / 2)
    with pytest.raises(ValueError):
        perceptual_index(float("nan"), 3.0)


def test_pi_is_na_without_ma():
    pi, reason = perceptual_index_or_reason(None, 4.2)
    assert pi is None and "n/a" in reason and "model.mat" in reason
    assert perceptual_index_or_reason(None, 4.2, "no model")[1] == "no model"
    assert perceptual_index_or_reason(7.0, 4.0) == (pytest.approx(3.5), None)


def test_perceptual_scores_without_model():
    imgs = [_pink_noise(112, seed=s) for s in range(2)]
    scores = perceptual_scores(imgs, ma_model_path=None, crop_border=4)
    assert scores.pi is None and scores.ma is None and "model.mat" in scores.reason
    assert scores.niqe == pytest.approx(np.mean([niqe(im, 4) for im in imgs]))
    missing = perceptual_scores(imgs, ma_model_path="/nonexistent/model.mat")
    assert missing.pi is None and "/nonexistent/model.mat" in missing.reason


# --- Ma et al.: model file ----------------------------------------------------------------------------------
def _forest(coef=(0.0, 0.0)) -> dict:
    """Two hand-made trees in randomforest-matlab layout (nrnodes x ntree, 1-based node/feature indices).

    tree 1: x2 <= 0.5 ? 1 : 3            tree 2: x1 <= -1 ? 10 : (x3 <= 2 ? 20 : 30)
    """
    return {
        "lDau": np.array([[2, 2], [0, 0], [0, 4], [0, 0], [0, 0]], dtype=np.int32),
        "rDau": np.array([[3, 3], [0, 0], [0, 5], [0, 0], [0, 0]], dtype=np.int32),
        "nodestatus": np.array([[-3, -3], [-1, -1], [-1, -3], [0, -1], [0, -1]], dtype=np.int8),
        "nrnodes": np.array([[5]], dtype=np.int32),
        "upper": np.array([[0.5, -1.0], [0, 0], [0, 2.0], [0, 0], [0, 0]]),
        "avnode": np.array([[0, 0], [1.0, 10.0], [3.0, 0], [0, 20.0], [0, 30.0]]),
        "mbest": np.array([[2, 1], [0, 0], [0, 3], [0, 0], [0, 0]], dtype=np.int32),
        "ndtree": np.array([[3, 5]], dtype=np.int32),
        "ntree": np.array([[2.0]]),
        "coef": np.array([list(coef)]),
    }


def _tree_mean(x) -> float:
    t1 = 1.0 if x[1] <= 0.5 else 3.0
    t2 = 10.0 if x[0] <= -1 else (20.0 if x[2] <= 2 else 30.0)
    return (t1 + t2) / 2


@pytest.fixture()
def fake_ma_model(tmp_path):
    rf = np.empty((1, 3), dtype=object)
    rf[0, 0], rf[0, 1], rf[0, 2] = _forest(), _forest(), _forest(coef=(1.0, 2.0))
    path = tmp_path / "model.mat"
    scipy.io.savemat(str(path), {"model": {"rf": rf, "linear": np.array([[0.5], [1.0], [2.0], [-1.0]])}})
    return path


def test_ma_model_loader_and_forest_prediction(fake_ma_model):
    model = load_ma_model(fake_ma_model)
    assert isinstance(model, MaModel) and len(model.forests) == 3
    f1, f2, f3 = np.array([0.0, 0.2, 5.0]), np.array([-2.0, 0.5, 0.0]), np.array([3.0, 9.0, 2.0])
    s1, s2, s3 = _tree_mean(f1), _tree_mean(f2), 1.0 + 2.0 * _tree_mean(f3)  # forest 3: bias correction
    assert (s1, s2, s3) == (15.5, 5.5, 1.0 + 2.0 * 11.5)
    assert model.predict(f1, f2, f3) == pytest.approx(0.5 + s1 + 2.0 * s2 - s3)
    with pytest.raises(ValueError, match="feature 3"):
        model.forests[0].predict(np.array([0.0, 9.0]))  # the forest splits on x3, which is missing


def test_ma_score_end_to_end_with_model(fake_ma_model):
    img = _pink_noise(128)
    feats = ma_features(img)
    model = load_ma_model(fake_ma_model)
    assert ma_score(img, fake_ma_model) == pytest.approx(model.predict(*feats))
    scores = perceptual_scores([img], ma_model_path=fake_ma_model, crop_border=4)
    ma4 = ma_score(img, fake_ma_model, crop_border=4)
    assert scores.ma == pytest.approx(ma4) and scores.reason is None
    assert scores.pi == pytest.approx(((10 - ma4) + niqe(img, 4)) / 2)


def test_ma_score_without_model_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.mat") as info:
        ma_score(_pink_noise(128), tmp_path / "model.mat")
    assert "chaoma99/sr-metric" in str(info.value)


def test_ma_model_v73_file_is_explained(tmp_path):
    path = tmp_path / "model.mat"
    path.write_bytes(
        b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: x HDF5 schema 1.00 .".ljust(512) + b"\x89HDF"
    )
    with pytest.raises(NotImplementedError, match="-v7"):
        load_ma_model(path)


# --- Ma et al.: features ------------------------------------------------------------------------------------
def test_ma_features_shapes_and_ranges():
    f1, f2, f3 = ma_features(_pink_noise(128))
    assert f1.shape == (18,) and f2.shape == (45,) and f3.shape == (75,)
    assert np.isfinite(f1).all() and np.isfinite(f2).all() and np.isfinite(f3).all()
    shapes = f1.reshape(3, 6)[:, :2]  # GGD shape (lowest 10 %, all) per scale: inside the table 0.03..10
    assert ((shapes >= 0.03) & (shapes <= 10)).all()
    assert ((f2[:18] >= 0.03) & (f2[:18] <= 10)).all()
    assert (np.abs(f2[18:]) <= 1.0 + 1e-9).all()  # SSIM contrast-structure terms
    for sv in f3.reshape(3, 25):
        assert (np.diff(sv) <= 1e-9).all() and sv[-1] >= 0  # singular values, descending
    gray = _pink_noise(128, channels=1)
    for a, b in zip(ma_features(gray), ma_features(gray.expand(3, -1, -1))):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="25 5x5 blocks"):
        ma_features(_pink_noise(64))


def test_dct_matrix_is_matlab_dct2():
    x = np.random.default_rng(0).standard_normal((7, 7))
    d = pim._dct_matrix(7).numpy()
    np.testing.assert_allclose(d @ x @ d.T, scipy.fft.dctn(x, type=2, norm="ortho"), atol=1e-12)


def test_ggd_shape_estimate():
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(200_000, generator=g, dtype=torch.float64)
    laplace = torch.distributions.Laplace(0.0, 1.0).sample((200_000,)).double()
    assert float(pim._gama_gen_gauss(gauss)) == pytest.approx(2.0, abs=0.05)
    assert float(pim._gama_gen_gauss(laplace)) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("size", [(64, 64), (67, 90), (45, 45)])
def test_steerable_pyramid_is_a_tight_frame(size):
    im = torch.rand(size, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 255
    bands = build_sf_pyramid(im, 2, 5)
    assert len(bands) == 14 and bands[0].shape == size and bands[7].shape == tuple((s + 1) // 2 for s in size)
    n = im.numel()
    energy = sum(float((b**2).sum()) * b.numel() / n for b in bands)  # Parseval, per-band grid size
    assert energy == pytest.approx(float((im**2).sum()), rel=1e-5)


def test_steerable_pyramid_orientation_order():
    yy, xx = torch.meshgrid(torch.arange(128.0).double(), torch.arange(128.0).double(), indexing="ij")
    for k in range(6):  # band k is tuned to a gradient direction k * 30 degrees
        th = math.pi * k / 6
        im = torch.cos(2 * math.pi * 0.25 * (xx * math.cos(th) + yy * math.sin(th)))
        energies = [float((b**2).sum()) for b in build_sf_pyramid(im, 2, 5)[1:7]]
        assert int(np.argmax(energies)) == k


def test_point_op_matches_mex_semantics():
    lut = torch.tensor([0.0, 1.0, 4.0, 9.0], dtype=torch.float64)
    x = torch.tensor([-2.0, -0.5, 0.0, 1.5, 3.0, 4.5], dtype=torch.float64)
    # origin 0, increment 1: linear interpolation, end segments extended (index clamped to 0..lutsize-2)
    expected = torch.tensor([-2.0, -0.5, 0.0, 2.5, 9.0, 16.5], dtype=torch.float64)
    assert torch.allclose(pim._point_op(x, lut, 0.0, 1.0), expected)


# --- LPIPS --------------------------------------------------------------------------------------------------
def test_lpips_missing_backbone_names_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    a = torch.rand(3, 32, 32)
    with pytest.raises(FileNotFoundError) as info:
        lpips_mod.lpips(a, a, net="alex")
    msg = str(info.value)
    assert "alexnet-owt-7be5be79.pth" in msg and str(tmp_path / "hub" / "checkpoints") in msg
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in msg
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        lpips_mod.build_lpips("vgg")
    with pytest.raises(FileNotFoundError, match="my_alexnet.pth"):
        lpips_mod.build_lpips("alex", backbone_path=tmp_path / "my_alexnet.pth")
    files = lpips_mod.lpips_weight_files("alex")
    assert files["linear"].is_file()  # the LPIPS linear layers ship inside the torchmetrics wheel


def test_lpips_random_backbone_opt_in():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 48, 48, generator=g)
    b = (a + 0.2 * torch.randn(3, 48, 48, generator=g)).clamp(0, 1)
    assert lpips_mod.lpips(a, a, weights="random") == 0.0
    d = lpips_mod.lpips(a, b, weights="random")
    assert d > 0 and d == lpips_mod.lpips(a, b, weights="random")
    assert lpips_mod.lpips(a[:1], b[:1], weights="random") == lpips_mod.lpips(
        a[:1].expand(3, -1, -1), b[:1].expand(3, -1, -1), weights="random"
    )


def test_lpips_local_backbone_equals_torchmetrics(tmp_path, monkeypatch):
    """A (fake, tiny) backbone in $TORCH_HOME: our network equals torchmetrics' metric built from it."""
    import torchvision
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    g = torch.Generator().manual_seed(0)
    state = {}
    for k, v in torchvision.models.alexnet(weights=None).state_dict().items():
        if k.startswith("features") and v.ndim == 4:  # per-output-channel values, stored as stride-0 views
            state[k] = (0.05 * torch.randn(v.shape[0], 1, 1, 1, generator=g)).expand(v.shape)
        else:
            state[k] = torch.full((1,), 0.01).expand(v.shape)
    ckpt = tmp_path / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(state, ckpt)

    a = torch.rand(3, 64, 64, generator=g)
    b = (a + 0.1 * torch.randn(3, 64, 64, generator=g)).clamp(0, 1)
    ours = lpips_mod.lpips(a, b, net="alex")
    metric = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)  # reads the same file
    qa, qb = (torch.floor(x.clamp(0, 1) * 255 + 0.5) / 255 for x in (a, b))
    assert ours == pytest.approx(float(metric(qa[None], qb[None])), rel=1e-6)
    assert ours > 0
