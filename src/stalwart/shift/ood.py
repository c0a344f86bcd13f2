"""Out-of-distribution scores, their evaluation, and synthetic OOD data.

Every detector is an :class:`~stalwart.shift.base.OODDetector`: ``fit`` on in-distribution data,
``score(x)`` higher for more unusual inputs, ``infer_threshold`` / ``predict`` to flag them.

======================  =================================================  ===================
detector                score                                              needs
======================  =================================================  ===================
``MaxSoftmax``          ``-max_k p_k(x)`` (Hendrycks & Gimpel, 2017)       any classifier
``MaxLogit``            ``-max_k z_k(x)`` (Hendrycks et al., 2022)         logits, else log p
``Energy``              ``-T logsumexp(z(x) / T)`` (Liu et al., 2020)      logits
``Mahalanobis``         ``min_c`` Mahalanobis distance to class means,     features (+ labels)
                        shared covariance (Lee et al., 2018)
``KNNDistance``         distance to the k-th nearest normalised training   features
                        feature (Sun et al., 2022)
``IsolationForestOOD``  minus the isolation-forest normality score         inputs
======================  =================================================  ===================

"Features" are the penultimate activations of a torch model (the input of its last
``nn.Linear``) when a :class:`~stalwart.models.torch.TorchModel` is given, or the output of the
submodule named by ``layer=`` (as in ``model.named_modules()``), else the flattened inputs.
TorchScript models work too: they take no forward hooks, so their forward graph is cut at the
layer instead. :func:`evaluate_ood` reports AUROC, AUPR and FPR at 95% TPR; :func:`make_ood`
builds OOD samples (uniform noise, far-out tabular rows, held-out classes) when a user has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from stalwart._validation import check_array, check_choice, check_lengths, check_param, check_positive
from stalwart.errors import ConfigError, InputError, ModelError
from stalwart.models.torch import is_torch_model
from stalwart.shift._inputs import as_array, batched_logits, classifier, flat_rows
from stalwart.shift.base import OODDetector, register

__all__ = ["MaxSoftmax", "MaxLogit", "Energy", "Mahalanobis", "KNNDistance", "IsolationForestOOD",
           "evaluate_ood", "ood_metrics", "make_ood", "OODSplit", "FeatureExtractor"]

Normalize = Literal["auto", "l2", "standard"] | None


# -- inputs, logits and features --------------------------------------------------------------------


def _fit_shape(det: OODDetector, arr: np.ndarray, learned: bool = False) -> np.ndarray:
    """Remember the per-sample shape ``det`` is fitted on (not for model features: the model
    checks its own inputs, and may take several shapes)."""
    det._sample_shape = None if learned else tuple(arr.shape[1:])
    return arr


def _same_shape(det: OODDetector, arr: np.ndarray, name: str = "x") -> np.ndarray:
    """``arr`` if its samples have the shape ``det`` was fitted on, else an :class:`InputError`."""
    want = getattr(det, "_sample_shape", None)
    got = tuple(arr.shape[1:])
    if want is not None and got != want:
        if len(want) == len(got) == 1:
            raise InputError(f"{name} has {got[0]} features but {type(det).__name__} was fitted on {want[0]}; "
                             "pass the same columns it was fitted on.")
        raise InputError(f"{name} has samples of shape {got} but {type(det).__name__} was fitted on samples of "
                         f"shape {want}; pass data of the shape it was fitted on.")
    return arr


def _logsumexp(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


def _needs_classifier(model: Any) -> str | None:
    if model is None:
        return "needs a model"
    return None if getattr(model, "task", None) == "classification" else "needs a classifier"


class FeatureExtractor:
    """Maps inputs to the feature space a distance-based detector works in.

    For a TorchModel: the input of a linear layer when ``layer`` is None (the last one: the
    penultimate activations; with ``conv_features=True``, in a network with convolutions, the
    first one after them: the flattened convolutional features), else the output of ``layer`` (a submodule or its dotted name, as in
    ``model.named_modules()``). An eager module's activations are captured by a forward hook
    during ``predict_proba``; a TorchScript module takes no hooks, so its forward graph is cut at
    the layer instead (:mod:`stalwart.shift._torchscript`). Otherwise: the flattened inputs.
    """

    def __init__(self, model: Any, layer: Any, owner: str, *, conv_features: bool = False) -> None:
        self.model = None if model is None else classifier(model, owner)
        self.layer = layer
        self.module = None
        self.script = None
        self.path = ""
        self.take_input = False
        from stalwart.models.torch import TorchModel

        if isinstance(self.model, TorchModel):
            from stalwart.shift import _torchscript

            net = self.model.module
            self.path, self.module, self.take_input = self._find_layer(net, layer, owner, conv_features)
            if _torchscript.is_script(net):
                self.script = _torchscript.cut(net, self.path, self.take_input, owner)
                self.module = None
        elif layer is not None:
            raise ModelError(f"{owner}(layer=...) needs a torch model (stalwart TorchModel); got "
                             f"{'no model' if self.model is None else self.model.name}. Leave layer unset "
                             "to work on the inputs.")

    @staticmethod
    def _find_layer(net: Any, layer: Any, owner: str, conv_features: bool) -> tuple[str, Any, bool]:
        """(dotted name, submodule, whether its input rather than its output is the feature)."""
        import torch

        from stalwart.shift._torchscript import module_label

        named = dict(net.named_modules())
        if layer is None:
            # TorchScript submodules are all RecursiveScriptModule; original_name keeps the class
            def kind(m: Any) -> str:
                return type(m).__name__ if not hasattr(m, "original_name") else str(m.original_name)

            order = list(named)
            linears = [n for n, m in named.items() if isinstance(m, torch.nn.Linear) or kind(m) == "Linear"]
            if not linears:
                raise ModelError(f"{owner} found no Linear layer in {module_label(net)} to take penultimate "
                                 "features from; pass layer=<name of a submodule> (CLI: --layer NAME), one of "
                                 f"{_layer_names(named)}.")
            conv_types = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
            convs = [order.index(n) for n, m in named.items()
                     if isinstance(m, conv_types) or kind(m) in ("Conv1d", "Conv2d", "Conv3d")]
            after = [n for n in linears if convs and order.index(n) > max(convs)]
            name = after[0] if conv_features and after else linears[-1]
            return name, named[name], True
        if isinstance(layer, torch.nn.Module):
            name = next((n for n, m in named.items() if m is layer), None)
            if name is None:
                raise ConfigError(f"{owner}(layer=...) is not a submodule of {module_label(net)}; pass one of "
                                  f"{_layer_names(named)} (by name or object).")
            return name, layer, False
        if not isinstance(layer, str) or layer not in named:
            raise ConfigError(f"{owner}(layer=...) must name a submodule of {module_label(net)} (as in "
                              f"model.named_modules()); got {layer!r}. Available: {_layer_names(named)}")
        return layer, named[layer], False

    @property
    def learned(self) -> bool:
        return self.module is not None or self.script is not None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.script is not None:
            return self._from_script(x)
        if self.module is None:
            return flat_rows(x)
        captured: list[np.ndarray] = []

        def hook(_mod: Any, inputs: Any, output: Any) -> None:
            t = inputs[0] if self.take_input else output
            captured.append(t.detach().to("cpu").double().reshape(t.shape[0], -1).numpy())

        try:
            handle = self.module.register_forward_hook(hook)
        except RuntimeError as exc:  # a TorchScript submodule inside an eager module
            raise ModelError(f"layer {self.path!r} cannot be hooked ({exc}); name an eager (not "
                             "TorchScript) submodule, or load the whole model as TorchScript.") from None
        try:
            self.model.predict_proba(x)
        finally:
            handle.remove()
        rows = sum(len(c) for c in captured)
        if rows != len(x):  # never called, or called more than once per forward: no one feature per input
            what = "input" if self.take_input else "output"
            how = "never called by forward" if rows == 0 else f"called {rows / len(x):.3g} times per sample"
            raise ModelError(f"layer {self.path!r} of {self.model.name} is {how}, so it has no single {what} per "
                             "sample to take features from; pass layer=<a submodule that forward calls once> "
                             "(CLI: --layer NAME).")
        return np.concatenate(captured, axis=0)

    def _from_script(self, x: np.ndarray) -> np.ndarray:
        import torch

        model = self.model
        parts = []
        with torch.inference_mode():
            for start in range(0, len(x), model.batch_size):
                t = model._to_tensor(x[start:start + model.batch_size])
                try:
                    f = self.script(t)
                except RuntimeError as exc:
                    raise ModelError(f"the TorchScript model failed while computing the features at layer "
                                     f"{self.path!r}: {' '.join(str(exc).split())[:300]}") from None
                parts.append(f.detach().to("cpu", torch.float64).reshape(f.shape[0], -1).numpy())
                model.n_queries += int(t.shape[0])
        return np.concatenate(parts, axis=0)


def _layer_names(named: dict[str, Any], limit: int = 60) -> str:
    names = [n for n in named if n]
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{f', ... ({len(names)} in all)' if len(names) > limit else ''}]"


# -- output-based scores ----------------------------------------------------------------------------
@register
class MaxSoftmax(OODDetector):
    """Maximum softmax probability (Hendrycks & Gimpel, 2017): score ``-max_k p_k(x)``.

    Parameters
    ----------
    model : object
        A classifier; anything :func:`stalwart.models.wrap` accepts.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> clf = LogisticRegression().fit([[-2.0], [-1.0], [1.0], [2.0]], [0, 0, 1, 1])
    >>> det = MaxSoftmax(clf).fit([[0.0]])
    >>> bool(det.score([[0.0]])[0] > det.score([[5.0]])[0])   # the boundary is less certain
    True
    """

    name: ClassVar[str] = "max_softmax"

    @classmethod
    def requirement(cls, model: Any) -> str | None:
        return _needs_classifier(model)

    @classmethod
    def suggested(cls, model: Any, data: Any) -> bool:
        return True

    @classmethod
    def build(cls, model: Any, *, layer: Any = None, seed: int = 0) -> MaxSoftmax:
        return cls(model)

    def __init__(self, model: Any) -> None:
        self.model = classifier(model, "MaxSoftmax")

    def fit(self, x: Any = None, y: Any = None) -> MaxSoftmax:
        """Nothing to learn: the score comes from the model alone."""
        return self

    def score(self, x: Any) -> np.ndarray:
        return -self.model.predict_proba(as_array(x)).max(axis=1)


@register
class MaxLogit(OODDetector):
    """Maximum logit (Hendrycks et al., 2022): score ``-max_k z_k(x)``.

    Uses ``model.torch_logits`` for differentiable models; for black-box models the
    log-probabilities stand in for logits (then the score ranks like :class:`MaxSoftmax`).
    """

    name: ClassVar[str] = "max_logit"

    @classmethod
    def requirement(cls, model: Any) -> str | None:
        return _needs_classifier(model)

    @classmethod
    def build(cls, model: Any, *, layer: Any = None, seed: int = 0) -> MaxLogit:
        return cls(model)

    def __init__(self, model: Any) -> None:
        self.model = classifier(model, "MaxLogit")

    def fit(self, x: Any = None, y: Any = None) -> MaxLogit:
        return self

    def score(self, x: Any) -> np.ndarray:
        x = as_array(x)
        if self.model.differentiable:
            return -batched_logits(self.model, x).max(axis=1)
        return -np.log(np.clip(self.model.predict_proba(x).max(axis=1), 1e-300, None))


@register
class Energy(OODDetector):
    """Free energy (Liu et al., 2020): score ``-T * logsumexp(z(x) / T)``.

    Needs true logits (``model.differentiable``): from probabilities the logits are known only up
    to a per-sample constant, which is exactly what the energy measures.

    Parameters
    ----------
    model : object
        A differentiable classifier (torch module, or a scikit-learn model with a torch mirror).
    temperature : float, default 1.0
    """

    name: ClassVar[str] = "energy"

    @classmethod
    def requirement(cls, model: Any) -> str | None:
        why = _needs_classifier(model)
        if why is None and not getattr(model, "differentiable", False):
            why = "needs logits (a torch model or a scikit-learn model with a torch mirror)"
        return why

    @classmethod
    def suggested(cls, model: Any, data: Any) -> bool:
        return True

    @classmethod
    def build(cls, model: Any, *, layer: Any = None, seed: int = 0) -> Energy:
        return cls(model)

    def __init__(self, model: Any, temperature: float = 1.0) -> None:
        self.model = classifier(model, "Energy")
        self.temperature = float(check_positive(self, "temperature", temperature))
        if not self.model.differentiable:
            raise ModelError(
                f"Energy needs the model's logits, but {self.model.name} gives only probabilities "
                "(it is not differentiable). Use MaxSoftmax or MaxLogit, or wrap a torch module or a "
                "scikit-learn model with a torch mirror."
            )

    def fit(self, x: Any = None, y: Any = None) -> Energy:
        return self

    def score(self, x: Any) -> np.ndarray:
        z = batched_logits(self.model, as_array(x))
        return -self.temperature * _logsumexp(z / self.temperature)


# -- feature-based scores ---------------------------------------------------------------------------
@register
class Mahalanobis(OODDetector):
    """Class-conditional Gaussians with a shared covariance (Lee et al., 2018).

    ``fit(x, y)`` estimates one mean per class and the pooled within-class covariance of the
    features; ``score`` is the smallest Mahalanobis distance to a class mean. Without ``y`` it fits
    one Gaussian. The covariance gets a ridge of ``reg`` times its mean variance, so that constant
    features (a border pixel that is always 0, a dead ReLU) do not make it singular -- inputs that
    move along such a feature are then very far, as they should be.

    Parameters
    ----------
    model : object, optional
        A classifier; with a torch model the features are its penultimate activations, otherwise
        (or with no model) the flattened inputs.
    layer : str or torch.nn.Module, optional
        Torch models only (eager or TorchScript): take the output of this submodule instead, by
        its name in ``model.named_modules()`` (e.g. ``"head.1"``). An unknown name raises
        ConfigError listing the names; a TorchScript layer with no single output (called twice,
        or only inside an ``if``) raises ModelError.
    reg : float, default 1e-6
    """

    name: ClassVar[str] = "mahalanobis"
    uses_layer: ClassVar[bool] = True

    @classmethod
    def suggested(cls, model: Any, data: Any) -> bool:
        return getattr(data, "modality", None) == "image" or is_torch_model(model)

    @classmethod
    def build(cls, model: Any, *, layer: Any = None, seed: int = 0) -> Mahalanobis:
        return cls(model if is_torch_model(model) else None, layer=layer)

    def __init__(self, model: Any = None, layer: Any = None, *, reg: float = 1e-6) -> None:
        self.features = FeatureExtractor(model, layer, "Mahalanobis")
        self.model = self.features.model
        self.reg = float(check_positive(self, "reg", reg))

    def fit(self, x: Any, y: Any = None) -> Mahalanobis:
        arr = _fit_shape(self, as_array(x), self.features.learned)
        f = self.features(arr)
        if y is None:
            self.classes_ = np.zeros(1)
            index = np.zeros(len(f), dtype=np.int64)
        else:
            y = np.asarray(y)
            check_lengths("x", arr, "y", y)
            if y.ndim != 1:
                raise InputError(f"y must be one-dimensional (one label per sample); got shape {y.shape}.")
            self.classes_, index = np.unique(y, return_inverse=True)
        counts = np.bincount(index, minlength=len(self.classes_)).astype(np.float64)
        means = np.zeros((len(self.classes_), f.shape[1]))
        np.add.at(means, index, f)
        means /= counts[:, None]
        centred = f - means[index]
        cov = centred.T @ centred / len(f)
        cov += self.reg * max(float(np.trace(cov)) / cov.shape[0], 1e-12) * np.eye(cov.shape[0])
        vals, vecs = np.linalg.eigh(cov)
        self.whiten_ = vecs / np.sqrt(np.clip(vals, 1e-300, None))  # whiten_ @ whiten_.T = inv(cov)
        self.means_ = means
        self._zm = means @ self.whiten_
        return self

    def score(self, x: Any) -> np.ndarray:
        _fitted(self, "means_")
        z = self.features(_same_shape(self, as_array(x))) @ self.whiten_
        d2 = (z * z).sum(1)[:, None] - 2.0 * z @ self._zm.T + (self._zm * self._zm).sum(1)[None, :]
        return np.sqrt(np.clip(d2.min(axis=1), 0.0, None))


@register
class KNNDistance(OODDetector):
    """Distance to the k-th nearest in-distribution feature (Sun et al., 2022).

    Parameters
    ----------
    k : int, default 5
    model : object, optional
        As for :class:`Mahalanobis`: a torch model gives penultimate features, otherwise the
        flattened inputs are used.
    layer : str or torch.nn.Module, optional
        As for :class:`Mahalanobis`.
    normalize : {"auto", "l2", "standard", None}, default "auto"
        "l2" scales each feature vector to unit length (Sun et al.; right for learned
        embeddings, whose direction carries the class); "standard" z-scores each column with the
        fit data's mean and spread (right for raw tabular inputs, whose scale carries the
        anomaly); "auto" picks "l2" for model features and "standard" for inputs.
    """

    name: ClassVar[str] = "knn_distance"
    uses_layer: ClassVar[bool] = True

    @classmethod
    def suggested(cls, model: Any, data: Any) -> bool:
        return True

    @classmethod
    def build(cls, model: Any, *, layer: Any = None, seed: int = 0) -> KNNDistance:
        return cls(k=5, model=model if is_torch_model(model) else None, layer=layer)

    def __init__(self, k: int = 5, model: Any = None, layer: Any = None, *,
                 normalize: Normalize = "auto") -> None:
        self.k = int(check_positive(self, "k", k, integer=True))
        check_choice(self, "normalize", normalize, ("auto", "l2", "standard", None))
        self.features = FeatureExtractor(model, layer, "KNNDistance")
        self.model = self.features.model
        self.normalize = normalize

    def _norm(self, f: np.ndarray) -> np.ndarray:
        if self._mode == "l2":
            return f / np.clip(np.linalg.norm(f, axis=1, keepdims=True), 1e-12, None)
        if self._mode == "standard":
            return (f - self._mu) / self._sd
        return f

    def fit(self, x: Any, y: Any = None) -> KNNDistance:
        from sklearn.neighbors import NearestNeighbors

        f = self.features(_fit_shape(self, as_array(x), self.features.learned))
        if len(f) < self.k:
            raise InputError(f"KNNDistance(k={self.k}) needs at least k in-distribution samples; got {len(f)}.")
        self._mode = self.normalize if self.normalize != "auto" else (
            "l2" if self.features.learned else "standard")
        self._mu = f.mean(axis=0)
        sd = f.std(axis=0)
        self._sd = np.where(sd > 0, sd, 1.0)
        self.index_ = NearestNeighbors(n_neighbors=self.k).fit(self._norm(f))
        return self

    def score(self, x: Any) -> np.ndarray:
        _fitted(self, "index_")
        dist, _ = self.index_.kneighbors(self._norm(self.features(_same_shape(self, as_array(x)))),
                                         n_neighbors=self.k)
        return dist[:, -1]


@register
class IsolationForestOOD(OODDetector):
    """Isolation forest (Liu, Ting & Zhou, 2008) on the flattened inputs; score = minus normality.

    Parameters
    ----------
    n_estimators : int, default 100
    seed : int, default 0
    """

    name: ClassVar[str] = "isolation_forest"

    @classmethod
    def suggested(cls, model: Any, data: Any) -> bool:
        return getattr(data, "modality", None) == "tabular"

    @classmethod
    def build(cls, model: Any, *, layer: Any = None, seed: int = 0) -> IsolationForestOOD:
        return cls(seed=seed)

    def __init__(self, n_estimators: int = 100, seed: int = 0) -> None:
        self.n_estimators = int(check_positive(self, "n_estimators", n_estimators, integer=True))
        check_param(self, "seed", seed, isinstance(seed, (int, np.integer)) and not isinstance(seed, bool),
                    "an integer")
        self.seed = int(seed)

    def fit(self, x: Any, y: Any = None) -> IsolationForestOOD:
        from sklearn.ensemble import IsolationForest

        self.forest_ = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed)
        self.forest_.fit(flat_rows(_fit_shape(self, as_array(x))))
        return self

    def score(self, x: Any) -> np.ndarray:
        _fitted(self, "forest_")
        return -self.forest_.score_samples(flat_rows(_same_shape(self, as_array(x))))


def _fitted(det: OODDetector, attr: str) -> None:
    if not hasattr(det, attr):
        raise ConfigError(f"{type(det).__name__} is not fitted; call fit(x_in) before score(x).")


# -- evaluation -------------------------------------------------------------------------------------
def ood_metrics(scores_in: Any, scores_out: Any, tpr: float = 0.95) -> dict[str, float]:
    """AUROC, AUPR and FPR at ``tpr`` TPR from detector scores (higher = more unusual).

    OOD samples are the positive class. ``fpr95`` is the share of in-distribution samples
    flagged when the threshold is the highest one that still flags ``tpr`` of the OOD samples
    (ties at the threshold count as flagged). Much of the OOD literature (Liang et al., 2018; Liu
    et al., 2020; Sun et al., 2022) instead takes in-distribution as positive -- the share of OOD
    samples accepted when ``tpr`` of in-distribution samples are accepted; that is
    ``fpr95_id_positive``.

    Returns
    -------
    dict with ``auroc``, ``aupr`` (average precision, OOD positive), ``aupr_in`` (in-distribution
    positive), ``fpr95``, ``fpr95_id_positive``, ``n_in``, ``n_out``.

    Examples
    --------
    >>> ood_metrics([0.0, 1.0, 2.0, 3.0], [4.0, 5.0])["fpr95"]
    0.0
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    check_param("ood_metrics", "tpr", tpr, isinstance(tpr, (int, float)) and 0 < tpr <= 1, "a number in (0, 1]")
    s_in = check_array(scores_in, "scores_in", ndim=1)
    s_out = check_array(scores_out, "scores_out", ndim=1)
    labels = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    scores = np.r_[s_in, s_out]
    k_out = math.ceil(round(tpr * len(s_out), 9))
    t_out = np.sort(s_out)[::-1][k_out - 1]
    k_in = math.ceil(round(tpr * len(s_in), 9))
    t_in = np.sort(s_in)[k_in - 1]
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr": float(average_precision_score(labels, scores)),
        "aupr_in": float(average_precision_score(1 - labels, -scores)),
        "fpr95": float(np.mean(s_in >= t_out)),
        "fpr95_id_positive": float(np.mean(s_out <= t_in)),
        "n_in": len(s_in),
        "n_out": len(s_out),
    }


def evaluate_ood(detector: OODDetector, x_in: Any, x_out: Any) -> dict[str, float]:
    """Score held-out in-distribution and OOD inputs with a fitted detector; see :func:`ood_metrics`.

    Returns the metrics plus ``mean_score_in`` and ``mean_score_out``.
    """
    if not isinstance(detector, OODDetector):
        raise InputError(f"detector must be an OODDetector (e.g. shift.ood.KNNDistance()); got "
                         f"{type(detector).__name__}.")
    s_in, s_out = detector.score(x_in), detector.score(x_out)
    out = ood_metrics(s_in, s_out)
    out.update(mean_score_in=float(np.mean(s_in)), mean_score_out=float(np.mean(s_out)))
    return out


# -- synthetic OOD data -----------------------------------------------------------------------------
@dataclass(frozen=True)
class OODSplit:
    """In-distribution inputs (and labels) with OOD inputs made by :func:`make_ood`."""

    x_in: Any
    y_in: np.ndarray | None
    x_out: Any
    y_out: np.ndarray | None
    kind: str
    held_out: tuple[Any, ...] = ()


def make_ood(data: Any, kind: str = "noise", seed: int | np.random.Generator = 0, *, y: Any = None,
             n: int | None = None, spread: float = 3.0, held_out: Any = None) -> OODSplit:
    """Make out-of-distribution samples from in-distribution data.

    Parameters
    ----------
    data : Dataset or array-like
        In-distribution inputs (tabular n x d, or images N x C x H x W).
    kind : {"noise", "far", "held_out_class"}
        - "noise": uniform noise over the value range (the image range, or per column).
        - "far": each value lies beyond its column's observed range by ``spread`` to
          ``spread + 1`` standard deviations, on a random side.
        - "held_out_class": rows of the ``held_out`` classes become OOD; the rest stay in.
    seed : int or numpy.random.Generator
    y : array-like, optional
        Labels when ``data`` is an array.
    n : int, optional
        OOD samples to draw for "noise" and "far" (default: as many as ``data`` has).
    spread : float, default 3.0
        "far": distance beyond the range, in column standard deviations.
    held_out : label or sequence of labels, optional
        "held_out_class": classes to hold out (default: the largest fifth of the sorted labels,
        at least one).

    Returns
    -------
    OODSplit
        ``x_in`` keeps the type of the input (a DataFrame stays one, with its columns).
    """
    from stalwart.data.dataset import Dataset

    check_choice("make_ood", "kind", kind, ("noise", "far", "held_out_class"))
    value_range = None
    if isinstance(data, Dataset):
        if data.modality == "text":
            raise InputError("make_ood needs numeric data (tabular or image); got text. Use a text "
                             "perturbation or held-out text instead.")
        x_raw, labels, value_range = data.x, data.y, data.schema.value_range
    else:
        x_raw, labels = data, None if y is None else np.asarray(y)
    x = as_array(x_raw, "data")
    if labels is not None:
        check_lengths("data", x, "y", labels)

    if kind == "held_out_class":
        if labels is None:
            raise InputError("make_ood(kind='held_out_class') needs labels; pass a Dataset with y or y=...")
        classes = np.unique(labels)
        if held_out is None:
            held = classes[len(classes) - max(1, len(classes) // 5):]
        else:
            held = np.atleast_1d(np.asarray(held_out))
            unknown = [c for c in held.tolist() if c not in set(classes.tolist())]
            if unknown:
                raise InputError(f"make_ood(held_out=...) names labels not in the data: {unknown}; "
                                 f"labels are {classes.tolist()[:20]}.")
        if len(held) >= len(classes):
            raise InputError("make_ood(held_out=...) holds out every class; keep at least one in-distribution.")
        out = np.isin(labels, held)
        return OODSplit(_rows(x_raw, ~out), labels[~out], _rows(x_raw, out), labels[out], kind,
                        tuple(held.tolist()))

    n_out = len(x) if n is None else int(check_positive("make_ood", "n", n, integer=True))
    rng = np.random.default_rng(seed)
    flat = flat_rows(x)
    if kind == "noise":
        if x.ndim > 2:  # images share one value range
            lo, hi = value_range if value_range is not None else (float(flat.min()), float(flat.max()))
            new = rng.uniform(lo, hi, size=(n_out, flat.shape[1]))
        else:
            new = rng.uniform(flat.min(axis=0), flat.max(axis=0), size=(n_out, flat.shape[1]))
    else:
        check_positive("make_ood", "spread", spread, strict=False)
        sd = flat.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        dist = (spread + rng.random((n_out, flat.shape[1]))) * sd
        up = rng.random((n_out, flat.shape[1])) < 0.5
        new = np.where(up, flat.max(axis=0) + dist, flat.min(axis=0) - dist)
    new = new.reshape(n_out, *x.shape[1:]).astype(x.dtype, copy=False)
    if hasattr(x_raw, "columns"):
        import pandas as pd

        new = pd.DataFrame(new, columns=x_raw.columns)
    return OODSplit(x_raw, labels, new, None, kind)


def _rows(x: Any, mask: np.ndarray) -> Any:
    if hasattr(x, "iloc"):
        return x.iloc[np.flatnonzero(mask)].reset_index(drop=True)
    return np.asarray(x)[mask]
