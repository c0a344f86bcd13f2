"""Backdoor detection: which training rows carry a trigger, and which inputs set one off?

A backdoored classifier predicts the attacker's target class whenever a trigger (a patch, a
pattern) is present; it learns this from poisoned training rows, triggered inputs relabelled to
the target. :func:`detect_backdoor` screens inputs with one of three methods (higher score = more
suspicious); :func:`detection_auroc` measures it against known poisoned rows.

- ``"spectral"`` (Tran, Li & Madry, 2018, "Spectral Signatures in Backdoor Attacks"): per class,
  the top right singular vector ``v`` of the mean-centred representations; score = projection on
  ``v``; the top ``1.5 * poison_rate`` of every class is flagged, clean or not. The paper squares
  the projection from the mean; here rows are projected from the class's coordinate-wise median,
  on the side the mean lies (the poison is the minority, so it pulls the mean off the median
  towards itself): when poison nears half a class the mean falls between clean and poisoned rows,
  which then project about equally far, and squaring also ranks the clean rows of the far tail
  high (planted digits of the tests, poison 49% of class 0: AUROC at the penultimate layer 0.77
  squared from the mean, 0.87 squared from the median, 0.92 one-sided; at the conv features 0.86,
  0.98, 0.98). Scores are not rescaled per class: all rows share one feature space.
- ``"activation_clustering"`` (Chen et al., 2018, "Detecting Backdoor Attacks on Deep Neural
  Networks by Activation Clustering"): per class, 10 principal components split by 2-means; a
  class is judged poisoned when its silhouette is >= 0.40, and its smaller cluster is flagged.
  The paper's relative-size rule (smaller cluster <= 0.35) is reported, not used: clean digit
  classes split that way too (1s and 9s, by writing style) and half-poisoned classes do not. The
  paper reduces by ICA, and k-means on all ICA components is k-means on whitened principal
  components; whitening inflated noise directions (planted class: silhouette 0.44 -> 0.15), so
  none here. Score = ``max(silhouette, 0) * distance to the larger cluster's centre`` (in units
  of its median distance). The verdict depends on the layer: on the planted digits, clean
  classes split as clearly as the poisoned one at the penultimate layer (silhouettes up to 0.47),
  while at the conv features the poisoned class reaches 0.42-0.52 and clean ones at most 0.36.
- ``"strip"`` (Gao et al., 2019, "STRIP: A Defence Against Trojan Attacks on Deep Neural
  Networks"): each image is superimposed on ``n_overlay`` random clean images; a trigger survives
  and keeps the prediction fixed, so a low mean prediction entropy (bits) means trojaned; score =
  minus that entropy. ``blend="mean"`` averages the images (0.5 each, as TrojanZoo), halving the
  trigger's contrast too; ``"add"`` sums them clipped to the input range (Gao et al.'s code),
  keeping a bright trigger whole but washing out a dark one (planted digits: the model fires on
  a half-contrast patch for ~20% of inputs; AUROC 0.83 "mean", 1.00 "add"). Flagged below a
  threshold rejecting 1% of clean inputs under a normal fit to ``clean_x``'s entropies (as in
  the paper), else a robust fit (median, MAD) to the screened inputs', assuming most are clean.

Representations: the output of ``layer`` (a name in ``model.named_modules()``), by default the
input of the first ``nn.Linear`` after the last convolution (the flattened convolutional features),
or of the last ``nn.Linear`` (the penultimate activations) in a network without convolutions. A
trigger is a pixel pattern, and it shows more clearly before the dense layers mix it with the
class: on the planted digits of the tests (two CNN widths) spectral AUROC is 0.98 at the conv
features against 0.87-0.92 at the penultimate layer, and activation clustering's verdict is right
there only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stalwart._stats import wilson_interval
from stalwart._validation import (
    check_choice,
    check_image_layout,
    check_labels,
    check_lengths,
    check_param,
    check_positive,
    check_seed,
)
from stalwart.errors import InputError, ModelError

__all__ = ["detect_backdoor", "detection_auroc", "BackdoorResult", "ClassReport", "BACKDOOR_METHODS",
           "STRIP_BLENDS"]

#: the methods :func:`detect_backdoor` runs
BACKDOOR_METHODS = ("spectral", "activation_clustering", "strip")
#: how STRIP superimposes two images
STRIP_BLENDS = ("mean", "add")

_OWNER = "detect_backdoor"
_FLAG_FACTOR = 1.5  # Tran et al. remove 1.5 x the assumed number of poisoned rows per class
_DEFAULT_RATE = 0.05  # spectral budget when no poison_rate is given
_AC_DIMS = 10  # Chen et al. reduce to 10 components
_AC_SILHOUETTE = 0.40  # a 2-means split at least this clear marks a class as poisoned
_AC_MIN_ROWS = 10
_STRIP_FRR = 0.01  # Gao et al.: threshold at 1% false rejections of clean inputs
_SILHOUETTE_ROWS = 2000  # silhouette is O(n^2): estimated on a sample of this many rows


@dataclass(frozen=True)
class ClassReport:
    """One class (of ``y``; for STRIP without labels, of the prediction). ``suspicious``,
    ``cluster_sizes`` (smaller first) and ``silhouette``: activation clustering's verdict and split
    (None for the other methods, which judge rows only); ``note``: why a class was skipped."""

    label: Any
    n: int
    n_flagged: int
    suspicious: bool | None = None
    cluster_sizes: tuple[int, int] | None = None
    silhouette: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        label = self.label.item() if isinstance(self.label, np.generic) else self.label
        return {"label": label, "n": self.n, "n_flagged": self.n_flagged, "suspicious": self.suspicious,
                "cluster_sizes": None if self.cluster_sizes is None else list(self.cluster_sizes),
                "silhouette": self.silhouette, "note": self.note}


@dataclass(frozen=True, eq=False)
class BackdoorResult:
    """What one backdoor detector found in the screened inputs.

    Attributes
    ----------
    method : one of :data:`BACKDOOR_METHODS`
    scores, flagged : per row, the score (higher = more suspicious) and the method's own verdict
    per_class : one :class:`ClassReport` per class
    threshold : STRIP's entropy threshold (bits; flagged below it), None for the other methods
    notes, params : what the result rests on or leaves out; the settings, to reproduce it
    """

    method: str
    scores: np.ndarray
    flagged: np.ndarray
    per_class: tuple[ClassReport, ...]
    threshold: float | None = None
    notes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    @property
    def suspicious_classes(self) -> list[Any]:
        """Classes activation clustering judged poisoned (empty for the other methods)."""
        return [c.label for c in self.per_class if c.suspicious]

    def auroc(self, is_poisoned: Any) -> float:
        """Detection AUROC of :attr:`scores` against the true poisoned rows (:func:`detection_auroc`)."""
        return detection_auroc(self.scores, is_poisoned)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; the flag rate with a 95% Wilson interval."""
        n = len(self.flagged)
        low, high = wilson_interval(self.n_flagged, n)
        return {"method": self.method, "n": n, "n_flagged": self.n_flagged,
                "flag_rate": {"value": self.n_flagged / n, "low": float(low), "high": float(high)},
                "threshold": self.threshold, "flagged_rows": np.flatnonzero(self.flagged).tolist(),
                "suspicious_classes": [c.to_dict()["label"] for c in self.per_class if c.suspicious],
                "per_class": [c.to_dict() for c in self.per_class], "notes": list(self.notes),
                "params": dict(self.params)}

    def to_frame(self):  # noqa: ANN201 - pandas is imported lazily
        """The per-class table as a DataFrame."""
        import pandas as pd

        return pd.DataFrame([c.to_dict() for c in self.per_class])


def detection_auroc(scores: Any, is_poisoned: Any) -> float:
    """Probability that a poisoned row scores above a clean one, ties counting half (the
    Mann-Whitney U statistic over the number of pairs).

    Examples
    --------
    >>> detection_auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    truth = np.asarray(is_poisoned)
    if truth.ndim != 1 or truth.dtype.kind not in "biu" or not np.isin(truth, (0, 1)).all():
        raise InputError("is_poisoned must be one True/False (or 1/0) per row, saying which rows are "
                         f"poisoned; got {truth.dtype} of shape {truth.shape}.")
    check_lengths("scores", s, "is_poisoned", truth)
    truth = truth.astype(bool)
    if not np.isfinite(s).all():
        raise InputError("scores contain NaN or infinite values; pass the finite scores of a detector.")
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        raise InputError(f"is_poisoned marks {n_pos} poisoned and {n_neg} clean rows; the AUROC needs both.")
    from scipy.stats import rankdata

    ranks = rankdata(s)  # average ranks: a tie counts half
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# -- the entry point ---------------------------------------------------------------------------------
def detect_backdoor(model: Any, x: Any, y: Any = None, *, method: str = "spectral", layer: Any = None,
                    poison_rate: float | None = None, seed: int = 0, n_overlay: int = 16,
                    clean_x: Any = None, blend: str = "mean") -> BackdoorResult:
    """Screen ``x`` for backdoor-poisoned rows (or trojaned inputs) of a torch classifier.

    Parameters
    ----------
    model : a ``torch.nn.Module`` classifier (put in eval mode), or :func:`stalwart.wrap` of one
    x : the inputs to screen, (n, ...); for ``"strip"`` images, N x C x H x W
    y : their labels as trained on (poisoned rows carry the target label); needed by
        ``"spectral"`` and ``"activation_clustering"``, which work per class
    method : ``"spectral"``, ``"activation_clustering"`` or ``"strip"`` (module docstring)
    layer : a submodule (or its name in ``model.named_modules()``) whose output is the
        representation; default: the conv features, or the penultimate activations of a network
        without convolutions (module docstring). Not used by ``"strip"``.
    poison_rate : ``"spectral"`` only: the largest share of a class that may be poisoned, in
        (0, 0.5]; the top ``1.5 * poison_rate`` of each class is flagged (default budget: 0.05)
    seed : every random choice (overlays, k-means starts, large-matrix SVD) derives from it
    n_overlay : ``"strip"`` only: clean images blended with each input
    clean_x : ``"strip"`` only: held-out clean images to blend with and to set the threshold on
        (default: blend with other rows of ``x``, threshold from ``x`` itself)
    blend : ``"strip"`` only: ``"mean"`` (0.5 each) or ``"add"`` (sum clipped to the model's
        declared input bounds, else to the range of the images)

    Returns
    -------
    BackdoorResult

    Raises
    ------
    ModelError
        Not a torch module (membership inference and model extraction still apply to it), or a
        ``layer`` that gives no single representation per input.
    ConfigError
        Unknown ``method`` or ``blend``, ``poison_rate`` outside (0, 0.5], bad ``n_overlay``, ``seed``.
    InputError
        Empty, non-finite or wrongly shaped ``x`` (or ``clean_x``), missing or mismatched ``y``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> x = np.random.default_rng(0).normal(size=(60, 4))
    >>> res = detect_backdoor(net, x, (x[:, 0] > 0).astype(int), poison_rate=0.1)
    >>> [(int(c.label), c.n, c.n_flagged) for c in res.per_class]   # ceil(1.5 * 0.1 * n) per class
    [(0, 33, 5), (1, 27, 5)]
    """
    check_choice(_OWNER, "method", method, BACKDOOR_METHODS)
    if poison_rate is not None:
        check_param(_OWNER, "poison_rate", poison_rate, isinstance(poison_rate, (int, float, np.integer, np.floating))
                    and not isinstance(poison_rate, bool) and 0 < poison_rate <= 0.5,
                    "None or the share of a class that may be poisoned, in (0, 0.5]")
    check_seed(_OWNER, seed)
    check_positive(_OWNER, "n_overlay", n_overlay, integer=True)
    check_choice(_OWNER, "blend", blend, STRIP_BLENDS)
    net = _torch_model(model)
    arr = _inputs(x, "x")
    params: dict[str, Any] = {"method": method, "seed": int(seed)}
    notes: list[str] = []
    labels = None
    if y is not None:
        labels = check_labels(y if not hasattr(y, "detach") else y.detach().cpu().numpy(), None, "y")
        check_lengths("x", arr, "y", labels)
    if method == "strip":
        if layer is not None or poison_rate is not None:
            notes.append("STRIP reads the model's predictions only: layer and poison_rate were not used.")
        params.update(n_overlay=int(n_overlay), blend=blend)
        return _strip(net, arr, labels, clean_x, int(n_overlay), blend, np.random.default_rng(seed), notes, params)
    if labels is None:
        raise InputError(f"method={method!r} works per class and needs the labels the model was trained on: "
                         "y is None. Pass y (poisoned rows keep their poisoned label), or use method='strip'.")
    if clean_x is not None or n_overlay != 16 or blend != "mean":
        notes.append(f"method={method!r} does not blend images: clean_x, n_overlay and blend were not used.")
    from stalwart.shift.ood import FeatureExtractor

    extractor = FeatureExtractor(net, layer, _OWNER, conv_features=True)
    feats = extractor(arr)
    params["layer"] = extractor.path
    notes.append(f"representations: the {'input' if extractor.take_input else 'output'} of layer "
                 f"{extractor.path!r} ({feats.shape[1]} values per row).")
    if method == "spectral":
        rate = _DEFAULT_RATE if poison_rate is None else float(poison_rate)
        params["poison_rate"] = None if poison_rate is None else rate
        if poison_rate is None:
            notes.append(f"poison_rate not given: flagged the top {_FLAG_FACTOR * rate:.1%} of each class (the "
                         f"budget for poison_rate={rate}). Spectral signatures flag their budget in every class, "
                         "clean or not: rank by the scores, or give the rate.")
        return _spectral(feats, labels, rate, seed, notes, params)
    if poison_rate is not None:
        notes.append("activation clustering sizes its clusters itself: poison_rate was not used.")
    return _activation_clustering(feats, labels, seed, notes, params)


# -- inputs ------------------------------------------------------------------------------------------
def _torch_model(model: Any) -> Any:
    import torch

    from stalwart.models import wrap
    from stalwart.models.torch import TorchModel

    if isinstance(model, (TorchModel, torch.nn.Module)):
        return wrap(model)  # a TorchModel comes back as is
    name = getattr(model, "name", None) if hasattr(model, "predict_proba") and hasattr(model, "task") else None
    raise ModelError(f"{_OWNER} reads a network's layer activations or blends images through it, so it needs a "
                     f"torch.nn.Module (or stalwart.wrap of one); got {name or type(model).__name__}. For other "
                     "models the membership-inference and model-extraction probes of stalwart.security still "
                     "apply: they need only predictions.")


def _inputs(x: Any, name: str) -> np.ndarray:
    from stalwart.shift._inputs import as_array

    if x is None:
        raise InputError(f"{name} is None; pass the inputs as an array or tensor (n_samples, ...).")
    return as_array(x, name)


def _groups(labels: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    values, inverse = np.unique(labels, return_inverse=True)
    return [(v, np.flatnonzero(inverse == k)) for k, v in enumerate(values)]


def _components(centred: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The top ``k`` right singular vectors (rows) of a centred matrix."""
    if min(centred.shape) <= 1000:
        return np.linalg.svd(centred, full_matrices=False)[2][:k]
    from sklearn.utils.extmath import randomized_svd

    return randomized_svd(centred, k, n_iter=7, random_state=seed)[2]


# -- spectral signatures -----------------------------------------------------------------------------
def _spectral(feats: np.ndarray, labels: np.ndarray, rate: float, seed: int, notes: list[str],
              params: dict[str, Any]) -> BackdoorResult:
    scores, flagged, table = np.zeros(len(feats)), np.zeros(len(feats), dtype=bool), []
    for label, idx in _groups(labels):
        if len(idx) < 2:
            table.append(ClassReport(label, len(idx), 0, note="one row: no direction to project on"))
            continue
        f = feats[idx]
        mean, median = f.mean(axis=0), np.median(f, axis=0)
        v = _components(f - mean, 1, seed)[0]
        # poison is the minority, so it pulls the mean off the median towards itself: score the side it is on
        s = (f - median) @ v * (-1.0 if (mean - median) @ v < 0 else 1.0)
        scores[idx] = s
        k = min(len(idx), math.ceil(round(_FLAG_FACTOR * rate * len(idx), 9)))  # 1.5 * 0.05 * 120 is 9, not 10
        flagged[idx[np.argsort(-s, kind="stable")[:k]]] = True
        table.append(ClassReport(label, len(idx), k))
    return BackdoorResult("spectral", scores, flagged, tuple(table), None, tuple(notes), params)


# -- activation clustering ---------------------------------------------------------------------------
def _activation_clustering(feats: np.ndarray, labels: np.ndarray, seed: int, notes: list[str],
                           params: dict[str, Any]) -> BackdoorResult:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    params["silhouette_threshold"] = _AC_SILHOUETTE
    scores, flagged, table = np.zeros(len(feats)), np.zeros(len(feats), dtype=bool), []
    for label, idx in _groups(labels):
        f = feats[idx]
        centred = f - f.mean(axis=0)
        if len(idx) < _AC_MIN_ROWS or np.unique(centred.round(12), axis=0).shape[0] < 3:
            table.append(ClassReport(label, len(idx), 0, False, note=f"fewer than {_AC_MIN_ROWS} rows or 3 "
                                     "distinct representations: not clustered"))
            continue
        z = centred @ _components(centred, min(_AC_DIMS, len(idx) - 1, f.shape[1]), seed).T
        km = KMeans(2, n_init=10, random_state=seed).fit(z)
        sizes = np.bincount(km.labels_, minlength=2)
        small = int(np.argmin(sizes))
        sil = float(silhouette_score(z, km.labels_, sample_size=min(len(idx), _SILHOUETTE_ROWS), random_state=seed))
        dist = np.linalg.norm(z - km.cluster_centers_[1 - small], axis=1)
        scale = np.median(dist[km.labels_ != small])
        scores[idx] = max(sil, 0.0) * dist / (scale if scale > 0 else 1.0)
        suspicious = sil >= _AC_SILHOUETTE
        if suspicious:
            flagged[idx[km.labels_ == small]] = True
        table.append(ClassReport(label, len(idx), int(sizes[small]) if suspicious else 0, bool(suspicious),
                                 (int(sizes[small]), int(sizes[1 - small])), round(sil, 4)))
    return BackdoorResult("activation_clustering", scores, flagged, tuple(table), None, tuple(notes), params)


# -- STRIP -------------------------------------------------------------------------------------------
def _strip(net: Any, x: np.ndarray, labels: np.ndarray | None, clean_x: Any, n_overlay: int, blend: str,
           rng: np.random.Generator, notes: list[str], params: dict[str, Any]) -> BackdoorResult:
    _images(x, "x")
    clean = None if clean_x is None else _images(_inputs(clean_x, "clean_x"), "clean_x")
    if clean is not None and clean.shape[1:] != x.shape[1:]:
        raise InputError(f"clean_x has images of shape {clean.shape[1:]} but x has {x.shape[1:]}; pass clean images "
                         "of the same size and channels.")
    pool = x if clean is None else clean
    if len(pool) < 2:
        raise InputError(f"{'x' if clean is None else 'clean_x'} holds {len(pool)} image; STRIP blends each input "
                         "with other images, so pass at least 2 (Gao et al. use 100 or more clean ones).")
    bounds = None
    if blend == "add":
        declared = getattr(net, "input_bounds", None)
        bounds = tuple(declared) if declared is not None else (float(min(x.min(), pool.min())),
                                                               float(max(x.max(), pool.max())))
        params["bounds"] = bounds
    entropy = _blend_entropy(net, x, pool, pool is x, n_overlay, bounds, rng)
    if clean is not None:
        ref = _blend_entropy(net, clean, clean, True, n_overlay, bounds, rng)
        centre, spread = float(ref.mean()), float(ref.std(ddof=1)) if len(ref) > 1 else 0.0
        notes.append(f"threshold: a normal fit to the entropies of the {len(clean)} clean_x images, rejecting "
                     f"{_STRIP_FRR:.0%} of clean inputs (Gao et al.).")
    else:
        centre = float(np.median(entropy))
        spread = 1.4826 * float(np.median(np.abs(entropy - centre)))
        notes.append(f"no clean_x: overlays drawn from x itself and the threshold from a robust normal fit "
                     f"(median, MAD) to x's entropies, rejecting {_STRIP_FRR:.0%} of clean inputs; both assume "
                     "most of x is clean. Pass held-out clean images as clean_x.")
    from scipy.stats import norm

    threshold = centre - float(norm.ppf(1 - _STRIP_FRR)) * spread
    flagged = entropy < threshold
    if labels is None:
        probs = net.predict_proba(x)
        classes = net.classes if net.classes is not None else np.arange(probs.shape[1])
        labels = np.asarray(classes)[probs.argmax(axis=1)]
        notes.append("per-class table by the model's predicted class (no y given).")
    table = tuple(ClassReport(label, len(idx), int(flagged[idx].sum())) for label, idx in _groups(labels))
    params["clean_images"] = 0 if clean is None else len(clean)
    return BackdoorResult("strip", -entropy, flagged, table, threshold, tuple(notes), params)


def _images(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim != 4:
        raise InputError(f"method='strip' blends images, so {name} must be N x C x H x W; got shape {x.shape}. "
                         "For tabular or text inputs use method='spectral' or 'activation_clustering'.")
    check_image_layout(x.shape, name)
    return x


def _blend_entropy(net: Any, x: np.ndarray, pool: np.ndarray, same: bool, n_overlay: int,
                   bounds: tuple[float, float] | None, rng: np.random.Generator) -> np.ndarray:
    """Mean prediction entropy (bits) of each input superimposed on random images of ``pool``:
    averaged with them, or (with ``bounds``) added to them and clipped to ``bounds``."""
    picks = rng.integers(0, len(pool) - (1 if same else 0), size=(len(x), n_overlay))
    if same:  # never blend an image with itself: skip over its own index
        picks += picks >= np.arange(len(x))[:, None]
    total = np.zeros(len(x))
    for k in range(n_overlay):  # one batched pass per overlay
        over = pool[picks[:, k]]
        p = net.predict_proba(0.5 * x + 0.5 * over if bounds is None else np.clip(x + over, *bounds))
        total += -(p * np.log2(np.clip(p, 1e-12, 1.0))).sum(axis=1)
    return total / n_overlay
