"""A defended model's adversarial check shows plain and adaptive robust accuracy side by side, and
the sanity checks of the plain evaluation flag the difference (issue 10, item 6)."""

import numpy as np

from stalwart import defend
from stalwart.checks.adversarial import AdversarialRobustness


def test_a_squeezed_model_reports_plain_and_adaptive_side_by_side(digits_mlp_split):
    net, test = digits_mlp_split
    squeezed = defend.SqueezedModel(net, defend.BitDepth(3), bounds=(0.0, 1.0))
    data = test.subset(np.arange(60))
    res = AdversarialRobustness(eps=[0.1], level="fast", minimal=False, max_samples=60).run(squeezed, data, seed=0)
    adaptive, plain = res.tables["defence"]
    assert adaptive["evaluation"].startswith("adaptive") and plain["evaluation"].startswith("plain")
    # the reported number is the adaptive (BPDA) one
    assert adaptive["robust_accuracy"] == res.metrics["robust_accuracy_at_0.1"].value
    # rounding has a zero derivative: APGD through it breaks at most what its random start happens
    # to, far above the adaptive number
    assert plain["robust_accuracy_gradient_attacks"] >= res.metrics["clean_accuracy"].value - 0.1
    assert plain["robust_accuracy_gradient_attacks"] >= adaptive["robust_accuracy"] + 0.3
    assert res.metrics["plain_gradient_robust_accuracy"].value == plain["robust_accuracy_gradient_attacks"]
    # the plain evaluation's sanity checks see the masking; the adaptive one's do not
    assert "vanishing_gradients" in plain["failed_checks"] and plain["sanity_checks_failed"] >= 1
    assert "vanishing_gradients" not in adaptive["failed_checks"]
    warning = next(w for w in res.message.split("; the defence") if "looks robust only to a plain attack" in w)
    assert "vanishing_gradients" in warning and f"{adaptive['robust_accuracy']:.3f} attacked adaptively" in warning
    assert res.status.value == "WARN" or res.status.value == "FAIL"
