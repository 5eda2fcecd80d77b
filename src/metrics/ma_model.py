"""Ma et al.'s no-reference SR quality score, part 2: the random forests, the model file and ``ma_score``
(features: ``src.metrics.ma_features``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from src.metrics.ma_features import ma_features

MA_MODEL_HELP = (
    "Ma et al.'s score needs the trained model of the official release: `model.mat` from "
    "https://github.com/chaoma99/sr-metric (the file `quality_predict.m` loads; the PIRM 2018 code expects it in "
    "`utils/sr-metric/`). It holds a MATLAB struct `model` with `rf` (1x3 cell of randomforest-matlab regression "
    "forests: lDau, rDau, nodestatus, upper, avnode, mbest, ntree, coef) and `linear` (4x1). It is not shipped "
    "with srsuite: `python -m src.download names=[ma]` puts it in $SR_WEIGHTS/ma/model.mat (default "
    "~/.cache/srsuite/ma/model.mat); pass that path (`metrics.ma_model`, `ma_model_path`)."
)


# --- Ma et al.: random forests and the model file -----------------------------------------------------------
_NODE_TERMINAL = -1


@dataclass(frozen=True)
class RegressionForest:
    """A randomforest-matlab regression forest (``regRF_train`` output), arrays (nrnodes, ntree)."""

    l_dau: np.ndarray
    r_dau: np.ndarray
    nodestatus: np.ndarray
    upper: np.ndarray
    avnode: np.ndarray
    mbest: np.ndarray
    ntree: int
    coef: np.ndarray

    def predict(self, x: np.ndarray) -> float:
        """``regRF_predict(x, model)`` for one feature vector: mean over trees of the reached leaf's value.

        Each tree starts at node 1 and goes to ``lDau`` when ``x(mbest) <= upper`` else to ``rDau`` until a
        node with status -1 (terminal); a non-zero ``coef`` applies the bias correction ``coef(1) + coef(2) y``.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        trees = np.arange(self.ntree)
        k = np.zeros(self.ntree, dtype=np.int64)
        for _ in range(self.l_dau.shape[0] + 1):
            active = self.nodestatus[k, trees] != _NODE_TERMINAL
            if not active.any():
                break
            var = self.mbest[k, trees] - 1
            used = var[active]
            if (used < 0).any() or (used >= x.size).any():
                raise ValueError(f"forest splits on feature {int(used.max()) + 1}, but x has {x.size} values")
            left = x[np.clip(var, 0, x.size - 1)] <= self.upper[k, trees]
            nxt = np.where(left, self.l_dau[k, trees], self.r_dau[k, trees]) - 1
            k = np.where(active, nxt, k)
        else:
            raise ValueError("random forest traversal did not reach terminal nodes (corrupt model?)")
        y = float(self.avnode[k, trees].sum() / self.ntree)
        if np.any(self.coef != 0):
            y = float(self.coef[0] + self.coef[1] * y)
        return y


@dataclass(frozen=True)
class MaModel:
    """Ma et al.'s trained model: three forests (DCT, GSM, SVD features) and the linear weights (4,)."""

    forests: tuple[RegressionForest, RegressionForest, RegressionForest]
    linear: np.ndarray

    def predict(self, f1: np.ndarray, f2: np.ndarray, f3: np.ndarray) -> float:
        """``[1 s1 s2 s3] * model.linear`` with ``s_i`` the forests' predictions."""
        s = [forest.predict(f) for forest, f in zip(self.forests, (f1, f2, f3))]
        return float(np.dot(np.array([1.0, *s]), self.linear))


def _unwrap(x: object) -> object:
    """Strip the 1x1 wrappers ``scipy.io.loadmat`` puts around MATLAB cells and structs."""
    while isinstance(x, np.ndarray) and x.size == 1 and (x.dtype == object or x.dtype.names is not None):
        x = x.reshape(-1)[0]
    return x


def _mat_field(struct: object, name: str) -> np.ndarray:
    struct = _unwrap(struct)
    names = getattr(getattr(struct, "dtype", None), "names", None)
    if names is None or name not in names:
        raise KeyError(name)
    return _unwrap(struct[name])  # type: ignore[index]


def _as_numeric(a: object) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind in "US":  # a MATLAB char array (some randomforest-matlab builds store nodestatus as char)
        return np.array([[ord(c) for c in row] for row in np.atleast_1d(a)], dtype=np.int64)
    return a


def _forest_from_struct(s: object, path: Path, i: int) -> RegressionForest:
    try:
        l_dau = _as_numeric(_mat_field(s, "lDau")).astype(np.int64)
        r_dau = _as_numeric(_mat_field(s, "rDau")).astype(np.int64)
        status = _as_numeric(_mat_field(s, "nodestatus")).astype(np.int64)
        # int8/int16 values stored in an unsigned char class: back to two's complement (-1 = terminal)
        status = np.where(
            status >= 32768, status - 65536, np.where((status > 127) & (status < 256), status - 256, status)
        )
        upper = np.asarray(_mat_field(s, "upper"), dtype=np.float64)
        avnode = np.asarray(_mat_field(s, "avnode"), dtype=np.float64)
        mbest = _as_numeric(_mat_field(s, "mbest")).astype(np.int64)
        ntree = int(np.asarray(_mat_field(s, "ntree")).reshape(-1)[0])
    except KeyError as err:
        raise ValueError(f"{path}: model.rf{{{i + 1}}} lacks the field {err} of a randomforest-matlab forest") from err
    try:
        coef = np.asarray(_mat_field(s, "coef"), dtype=np.float64).reshape(-1)
    except KeyError:
        coef = np.zeros(0)
    if coef.size < 2:
        coef = np.zeros(2)
    arrays = [a.reshape(-1, 1) if a.ndim == 1 else a for a in (l_dau, r_dau, status, upper, avnode, mbest)]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].shape[1] != ntree:
        raise ValueError(
            f"{path}: model.rf{{{i + 1}}} arrays have shapes {sorted(shapes)}, expected (nrnodes, {ntree})"
        )
    return RegressionForest(*arrays, ntree=ntree, coef=coef[:2])


@lru_cache(maxsize=2)
def _load_ma_model_cached(path: str, mtime: float) -> MaModel:
    import scipy.io

    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(128)
    if b"MATLAB 7.3" in head:
        raise NotImplementedError(
            f"{p} is a MATLAB v7.3 (HDF5) file, which scipy cannot read. Re-save it in MATLAB as v7: "
            "`load model.mat; save('model_v7.mat', 'model', '-v7')` and pass that file."
        )
    mat = scipy.io.loadmat(str(p), struct_as_record=True, squeeze_me=False)
    if "model" not in mat:
        raise ValueError(f"{p}: no variable `model` (found {sorted(k for k in mat if not k.startswith('__'))})")
    model = mat["model"]
    try:
        cells = np.asarray(_mat_field(model, "rf"))
        linear = np.asarray(_mat_field(model, "linear"), dtype=np.float64).reshape(-1)
    except KeyError as err:
        raise ValueError(f"{p}: `model` must have the fields `rf` and `linear` (missing {err})") from err
    cells = cells.reshape(-1)
    if cells.size != 3 or linear.size != 4:
        raise ValueError(
            f"{p}: expected 3 forests in model.rf and 4 values in model.linear, got {cells.size}, {linear.size}"
        )
    forests = tuple(_forest_from_struct(c, p, i) for i, c in enumerate(cells))
    return MaModel(forests=forests, linear=linear)  # type: ignore[arg-type]


def load_ma_model(path: str | Path) -> MaModel:
    """Read Ma et al.'s trained ``model.mat`` (MATLAB v5/v7 file; cached per path and modification time).

    Raises:
        FileNotFoundError: the file is missing (the message says which file is needed and where it comes from).
        NotImplementedError: a v7.3 (HDF5) MAT-file (the message says how to re-save it).
        ValueError: the file does not hold the expected struct.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"Ma et al. model file not found: {p}. {MA_MODEL_HELP}")
    return _load_ma_model_cached(str(p.resolve()), p.stat().st_mtime)


def ma_score(img: torch.Tensor, model_path: str | Path, crop_border: int = 0) -> float:
    """Ma et al.'s no-reference SR quality score of one image (higher is better, roughly 0..10).

    Args:
        img: float tensor (3, H, W) RGB or (1, H, W) gray in [0, 1].
        model_path: the official trained ``model.mat`` (see ``MA_MODEL_HELP``); required, there is no default.
        crop_border: pixels shaved from every border first (PIRM 2018 uses 4).
    """
    model = load_ma_model(model_path)  # fail early, before the features
    return model.predict(*ma_features(img, crop_border))
