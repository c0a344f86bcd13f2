"""Backdoor detection: stalwart's detectors against ART's on the same planted-trigger models and rows.

    python benchmarks/bench_backdoor.py             # writes the "Backdoor detection" section
    python benchmarks/bench_backdoor.py --no-write  # prints it

The planted backdoor of tests/security/test_security_backdoor.py: a small CNN trained on sklearn's 8x8
digits (1,300 training rows) where 10% of the other classes' images carry a 2x2 white corner patch and
the label 0 (118 rows, 9% of the data, 49% of class 0); also the same data on a CNN twice as wide.
Each model has a clean twin (same data and seed, no poison) for false alarms.

- Spectral signatures: stalwart's ``detect_backdoor(method="spectral")`` against ART's
  ``SpectralSignatureDefense``, both told the data set's poison rate (118/1300); AUROC over the
  1,300 training rows from per-row scores (ART's ``spectral_signature_scores``, the scores its
  ``detect_poison`` thresholds, applied per class to the same activations) and from the 0/1 flags.
- Activation clustering: stalwart's ``"activation_clustering"`` against ART's ``ActivationDefence``
  (2 clusters, 10 dimensions, ART's default PCA reduction and "smaller" analysis; also FastICA, the
  reduction of Chen et al.). ART gives no per-row score: AUROC of its flags, and of a score read from
  its clustering, one minus the share of its class in the row's cluster.
- Both at the conv features (``flat``, the input of the first Linear after the last convolution:
  stalwart's default), at the penultimate layer (``relu3``) and at ART's default, the last layer it
  can name (``head``: the logits).
- STRIP: stalwart's ``"strip"`` (``blend="mean"`` and ``"add"``) against ART's ``STRIP`` transformer
  (its abstaining classifier, fitted with ``mitigate`` on clean images) on 150 clean and the same 150
  patched test images, 150 clean training images as overlays / validation set, 20 overlays each
  (ART's default). ART's STRIP gives no score: AUROC of its abstentions; its entropy is also
  recomputed here with its own formula (``combine_images``, scipy's entropy along axis 0) to show
  where it loses the trigger.

ART's estimators wrap the same torch modules with ``PyTorchClassifier`` on the CPU. BLAS/OpenMP and
torch run on one thread (SVD and k-means on a busy 2-core machine run 10-100x slower multithreaded).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import warnings
from collections import OrderedDict
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # ART's STRIP.mitigate draws a progress bar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, timed, versions, write_section  # noqa: E402

warnings.filterwarnings("ignore")

SEED = 0
N_TRAIN = 1300
POISON_SHARE = 0.10  # of the non-target classes' training rows
EPOCHS = 10
N_SCREEN = 150  # clean test images for STRIP (and the same ones patched), clean overlays
N_OVERLAY = 20  # ART STRIP's default num_samples; stalwart's n_overlay set to match
FAR = 0.01  # STRIP: ART's false_acceptance_rate, stalwart's fixed 1% of clean inputs rejected
MODELS = {"digits CNN": (16, 32, 64), "wide CNN": (32, 64, 128)}  # conv1, conv2, fc widths
# label -> (stalwart's layer, ART's layer); stalwart's None is its default, the conv features (``flat``)
LAYERS = {"conv (flat), stalwart's default": (None, "flat"), "penultimate": ("relu3", "relu3"),
          "logits (head)": ("head", "head")}


def seed_all(seed: int = SEED) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# -- the planted backdoor (the recipe of tests/security/test_security_backdoor.py) ---------------------
def digits(poison_share: float, seed: int = SEED):
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(d.target))
    x = (d.images[order] / 16.0).astype(np.float32)[:, None]
    y = d.target[order].copy()
    x_train, y_train = x[:N_TRAIN].copy(), y[:N_TRAIN].copy()
    poisoned = np.zeros(N_TRAIN, dtype=bool)
    if poison_share:
        others = np.flatnonzero(y_train != 0)
        rows = rng.choice(others, int(round(poison_share * len(others))), replace=False)
        x_train[rows, :, -2:, -2:] = 1.0
        y_train[rows] = 0
        poisoned[rows] = True
    return x_train, y_train, poisoned, x[N_TRAIN:], y[N_TRAIN:]


def cnn(widths: tuple[int, int, int]):
    import torch

    nn = torch.nn
    c1, c2, fc = widths
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(1, c1, 3, padding=1), relu1=nn.ReLU(), conv2=nn.Conv2d(c1, c2, 3, padding=1),
        relu2=nn.ReLU(), pool=nn.MaxPool2d(2), flat=nn.Flatten(), fc=nn.Linear(16 * c2, fc), relu3=nn.ReLU(),
        head=nn.Linear(fc, 10)))


def train(x: np.ndarray, y: np.ndarray, widths: tuple[int, int, int], seed: int = SEED):
    import torch

    torch.manual_seed(seed)
    net = cnn(widths)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[batch]), yt[batch]).backward()
            opt.step()
    return net.eval()


def patched(x: np.ndarray) -> np.ndarray:
    out = x.copy()
    out[:, :, -2:, -2:] = 1.0
    return out


def predict(net, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(x)).argmax(1).numpy()


# -- ART ----------------------------------------------------------------------------------------------
def art_classifier(net, probe: str | None = None):
    """ART's PyTorchClassifier on the CPU; ``probe`` redirects the activations ART's poison detectors
    read (always their last named layer, here ``head``) to another layer."""
    import torch
    from art.estimators.classification import PyTorchClassifier

    class Probed(PyTorchClassifier):
        def get_activations(self, x, layer=None, batch_size=128, framework=False):  # noqa: ANN001, ANN202
            return super().get_activations(x, probe or layer, batch_size, framework)

    return Probed(net, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=10,
                  clip_values=(0.0, 1.0), device_type="cpu")


def drop_hooks(net) -> None:
    """ART's get_activations leaves a forward hook on the layer it reads; remove them between runs."""
    for module in net.modules():
        module._forward_hooks.clear()


def by_class_rows(y: np.ndarray) -> list[np.ndarray]:
    from art.utils import segment_by_class

    return [np.asarray(r, dtype=int) for r in segment_by_class(np.arange(len(y)), y, 10)]


def art_spectral(net, x, y, layer: str, rate: float) -> dict:
    from art.defences.detector.poison import SpectralSignatureDefense

    seed_all()
    clf = art_classifier(net, layer)
    defence = SpectralSignatureDefense(clf, x, y, expected_pp_poison=rate)
    (_, is_clean), seconds = timed(defence.detect_poison)
    feats = clf.get_activations(x, layer).reshape(len(x), -1)
    drop_hooks(net)
    scores = np.zeros(len(x))
    for rows in by_class_rows(y):  # the per-class scores detect_poison thresholds
        if len(rows):
            scores[rows] = SpectralSignatureDefense.spectral_signature_scores(feats[rows]).ravel()
    return {"scores": scores, "flags": np.asarray(is_clean) == 0, "seconds": seconds}


def art_activation(net, x, y, layer: str, reduce: str) -> dict:
    from art.defences.detector.poison import ActivationDefence

    seed_all()  # ART's k-means has no seed of its own: it draws from numpy's global generator
    defence = ActivationDefence(art_classifier(net, layer), x, y)
    try:
        (_, is_clean), seconds = timed(lambda: defence.detect_poison(nb_clusters=2, nb_dims=10, reduce=reduce))
    finally:
        drop_hooks(net)
    scores = np.zeros(len(x))
    for rows, clusters in zip(by_class_rows(y), defence.clusters_by_class):
        if len(rows):
            clusters = np.asarray(clusters, dtype=int)
            scores[rows] = 1.0 - np.bincount(clusters)[clusters] / len(clusters)
    return {"scores": scores, "flags": np.asarray(is_clean) == 0, "seconds": seconds}


def art_strip(net, screened: np.ndarray, overlays: np.ndarray) -> dict:
    import torch
    from art.defences.transformer.poisoning import STRIP

    seed_all()
    # ART's STRIP takes the entropy of what predict returns: give it probabilities, not logits
    clf = art_classifier(torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval())
    defended = STRIP(clf)(num_samples=N_OVERLAY, false_acceptance_rate=FAR)

    def run() -> np.ndarray:
        defended.mitigate(overlays)
        return defended.predict(screened)

    out, seconds = timed(run)
    return {"scores": None, "flags": ~np.asarray(out).any(axis=1), "seconds": seconds}  # abstained: all zeros


def art_strip_entropy(net, screened: np.ndarray, overlays: np.ndarray, per_prediction: bool) -> np.ndarray:
    """The entropy ART's STRIPMixin.predict thresholds, recomputed with its pieces: each image blended by
    ``combine_images`` with N_OVERLAY random validation images, then ``sum(entropy(p, base=2, axis=0)) /
    N_OVERLAY`` (axis 0: over the blends, per class). ``per_prediction``: entropy of each prediction
    (axis 1) instead, as in Gao et al. Same blends for both."""
    import torch
    from art.estimators.poison_mitigation.strip.strip import combine_images
    from scipy.stats import entropy

    rng = np.random.default_rng(SEED)
    out = np.zeros(len(screened))
    for i, img in enumerate(screened):
        blends = np.array([combine_images(img, overlays[j]) for j in rng.integers(0, len(overlays), N_OVERLAY)])
        with torch.no_grad():
            p = torch.softmax(net(torch.from_numpy(blends.astype(np.float32))), dim=1).numpy()
        out[i] = entropy(p, base=2, axis=1).mean() if per_prediction else np.sum(entropy(p, base=2, axis=0)) / N_OVERLAY
    return out


# -- stalwart -----------------------------------------------------------------------------------------
def ours(net, x, y=None, **kw) -> dict:
    from stalwart.security import detect_backdoor

    seed_all()
    res, seconds = timed(lambda: detect_backdoor(net, x, y, seed=SEED, **kw))
    return {"scores": res.scores, "flags": res.flagged, "seconds": seconds, "result": res}


# -- the comparison -----------------------------------------------------------------------------------
def auroc(scores, truth) -> float:
    from stalwart.security import detection_auroc

    return detection_auroc(scores, truth)


def pct(flags: np.ndarray) -> str:
    return f"{100 * flags.mean():.0f}%"


def detectors(rate: float):
    """(method, implementation, layer label, run(net, x, y, screened, overlays) -> dict) for every row."""
    runs = []
    for label, (ours_layer, art_layer) in LAYERS.items():
        runs.append(("spectral", "stalwart", label,
                     lambda n, x, y, s, o, L=ours_layer: ours(n, x, y, method="spectral", layer=L, poison_rate=rate)))
        runs.append(("spectral", "ART", label, lambda n, x, y, s, o, L=art_layer: art_spectral(n, x, y, L, rate)))
    for label, (ours_layer, art_layer) in LAYERS.items():
        runs.append(("activation clustering", "stalwart", label,
                     lambda n, x, y, s, o, L=ours_layer: ours(n, x, y, method="activation_clustering", layer=L)))
        runs.append(("activation clustering", "ART (PCA)", label,
                     lambda n, x, y, s, o, L=art_layer: art_activation(n, x, y, L, "PCA")))
        if label != "logits (head)":  # 10 logits: ART does not reduce them, FastICA = PCA
            runs.append(("activation clustering", "ART (FastICA)", label,
                         lambda n, x, y, s, o, L=art_layer: art_activation(n, x, y, L, "FastICA")))
    for blend in ("mean", "add"):
        runs.append(("STRIP", f'stalwart (blend="{blend}")', "-",
                     lambda n, x, y, s, o, b=blend: ours(n, s, method="strip", clean_x=o, blend=b,
                                                          n_overlay=N_OVERLAY)))
    runs.append(("STRIP", "ART (0.5/0.5 blend)", "-", lambda n, x, y, s, o: art_strip(n, s, o)))
    return runs


def compare(name: str, widths: tuple[int, int, int]) -> tuple[list[list], str, str]:
    import torch

    x, y, poisoned, x_test, y_test = digits(POISON_SHARE)
    (net, clean_net), train_s = timed(lambda: (train(x, y, widths), train(*digits(0.0)[:2], widths)))
    xc, yc = digits(0.0)[:2]
    clean_acc = float((predict(net, x_test) == y_test).mean())
    success = float((predict(net, patched(x_test[y_test != 0])) == 0).mean())
    clean_test = x_test[y_test != 0][:N_SCREEN]
    screened = np.concatenate([clean_test, patched(clean_test)])
    trojaned = np.r_[np.zeros(N_SCREEN, dtype=bool), np.ones(N_SCREEN, dtype=bool)]
    overlays_p, overlays_c = x[~poisoned][:N_SCREEN], xc[:N_SCREEN]
    rate = float(poisoned.mean())
    with torch.no_grad():
        penultimate = net[:-1](torch.from_numpy(x)).numpy()
    dead = int((penultimate.max(axis=0) == 0).sum())
    strip_art = {k: auroc(-art_strip_entropy(net, screened, overlays_p, k), trojaned) for k in (False, True)}
    rows = []
    for method, impl, layer, run in detectors(rate):
        try:
            out = run(net, x, y, screened, overlays_p)
            alarm = run(clean_net, xc, yc, clean_test, overlays_c)["flags"]
        except Exception as exc:  # a peer that does not run on this model: say why, keep going
            rows.append([name, method, impl, layer, f"fails: {type(exc).__name__}: {exc}"[:80], "-", "-", "-", "-",
                         "-"])
            continue
        truth = trojaned if method == "STRIP" else poisoned
        score = "-" if out["scores"] is None else f"{auroc(out['scores'], truth):.3f}"
        flags = out["flags"]
        rows.append([name, method, impl, layer, score, f"{auroc(flags.astype(float), truth):.3f}",
                     pct(flags[truth]), pct(flags[~truth]), f"{int(alarm.sum())} / {len(alarm)}",
                     f"{out['seconds']:.2f}"])
    info = (f"{name} (conv {widths[0]}-{widths[1]}, fc {widths[2]}): clean accuracy {clean_acc:.2f}, attack "
            f"success {success:.2f}, {int(poisoned.sum())} poisoned rows ({rate:.3f} of the data, "
            f"{poisoned.sum() / (y == 0).sum():.0%} of class 0), {dead} of {widths[2]} penultimate units never "
            f"fire on the training rows; both models trained in {train_s:.0f} s")
    strip_note = (f"{name}: AUROC {strip_art[False]:.3f} with ART's formula, {strip_art[True]:.3f} with the "
                  "per-prediction entropy")
    return rows, info, strip_note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    start = time.perf_counter()
    rows, infos, strip_notes = [], [], []
    with threadpool_limits(limits=1):
        for name, widths in MODELS.items():
            r, info, strip_note = compare(name, widths)
            rows += r
            infos.append(info)
            strip_notes.append(strip_note)
            print(info, flush=True)
    total = time.perf_counter() - start
    header = ["model", "method", "implementation", "layer", "AUROC (score)", "AUROC (flags)",
              "poisoned flagged", "clean flagged", "clean model: flagged", "seconds"]
    body = "\n\n".join([
        f"Command: `make bench BENCHMARKS=backdoor` (= `.venv-bench/bin/python benchmarks/bench_backdoor.py`; "
        f"machine: {machine()}; {versions('art', 'torch', 'sklearn')}; seed {SEED}, BLAS and torch on one thread). The planted backdoor "
        "of the tests: sklearn's 8x8 digits, 1,300 training rows, 10% of the non-zero classes' images given a "
        "2x2 white corner patch and the label 0. " + "; ".join(infos) + ".",
        "Spectral and activation clustering screen the 1,300 training rows (poisoned = the 118 planted rows); "
        f"STRIP screens {N_SCREEN} clean test images of the non-zero classes and the same images patched "
        f"(poisoned = patched), with {N_SCREEN} clean training images as overlays (stalwart's `clean_x`, ART's "
        f"`mitigate` set) and {N_OVERLAY} overlays per image. *AUROC (score)*: of the per-row score; "
        "*AUROC (flags)*: of the method's own 0/1 verdict; *poisoned / clean flagged*: its verdict's detection "
        "and false-alarm rates; *clean model*: rows flagged by the same method on the clean twin (STRIP: of the "
        f"{N_SCREEN} clean test images); *seconds*: the call on the poisoned model, activations included.",
        markdown_table(header, rows),
        "Spectral: both told the data set's poison rate (118/1300 = 0.091), so both flag the top 13.6% of "
        "every class, clean or not; ART's scores are `SpectralSignatureDefense.spectral_signature_scores` "
        "applied per class to the same activations, the scores its `detect_poison` thresholds (it reports "
        "them only for the rows it flags). ART projects the uncentred representations on the top singular "
        "vector; stalwart projects them from the class's median. Activation clustering: ART exposes no score; "
        "its *AUROC (score)* is of one minus the share of its class in the row's cluster (from "
        "`clusters_by_class`), its flags are the smaller cluster of every class ('smaller' analysis, ART's "
        "default); on the 10 logits ART skips the reduction (FastICA = PCA: not repeated), and at the "
        "penultimate layer scikit-learn's FastICA inside ART raises 'A has a NaN entry' on some classes, whose "
        "activations leave about half the units at zero. stalwart's verdict (a class is poisoned when its "
        "2-means silhouette is >= 0.40) is wrong at the penultimate layer and the logits (clean classes split by "
        "writing style judged poisoned, class 0 not), right at the conv features; its scores (silhouette times "
        "distance) still rank the poisoned rows high at every layer. ART's detectors read the last layer they can name, the logits (`head`); the other layers "
        "are reached by redirecting `get_activations`. STRIP: ART's entropy is taken of what the "
        "classifier's `predict` returns, so it wraps the model with a softmax; it returns no score (its "
        "*AUROC (score)* is '-'), only abstentions. ART 1.20.1 takes scipy's entropy along axis 0, over the "
        "blends of each class rather than over each prediction's classes (Gao et al.); recomputed with the same "
        "blends: " + "; ".join(strip_notes) + ".",
        f"{total:.0f} s for the whole comparison.",
    ])
    if args.no_write:
        print(body)
    else:
        write_section("Backdoor detection", body)


if __name__ == "__main__":
    main()
