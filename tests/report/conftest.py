"""Shared fixtures: the demo models scanned with the quick suites plus the data checks (real
reports to read), on small samples so they stay quick."""

import pytest

from stalwart.suite import Suite

SMALL = 40  # rows per check: above the checks' minimum, small enough to keep the attacks quick


def _small(suite: Suite) -> Suite:
    for check in suite.checks:
        if hasattr(check, "max_samples"):
            check.max_samples = SMALL
    return suite


@pytest.fixture(scope="session")
def demo_tabular_report():
    """The demo's scikit-learn pipeline on breast_cancer: the quick tabular suite, OOD detection and
    both drift checks against the training split."""
    from stalwart import datasets
    from stalwart.checks import get
    from stalwart.demo import train_tabular_model

    model, test = train_tabular_model(seed=0)
    train, _ = datasets.load_split("breast_cancer", seed=0)
    suite = _small(Suite.preset("quick", "tabular"))
    suite.checks += [get("ood_detection", max_samples=2 * SMALL), get("data_drift", reference=train),
                     get("multivariate_drift", reference=train, max_samples=SMALL, n_permutations=10)]
    return suite.run(model, test, seed=0)


@pytest.fixture(scope="session")
def demo_image_report():
    """The demo's digits CNN (trained one epoch) on digits: the quick image suite and a small
    corruption check."""
    from stalwart.checks import get
    from stalwart.demo import train_image_model

    net, test = train_image_model(seed=0, epochs=1)
    suite = _small(Suite.preset("quick", "image"))
    suite.checks.append(get("corruption_robustness", perturbations=["gaussian_noise", "contrast"], severities=[1, 3],
                            max_samples=SMALL))
    return suite.run(net, test, seed=0)
