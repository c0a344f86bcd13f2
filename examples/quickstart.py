"""The README's Python example, runnable: scan a scikit-learn pipeline on breast_cancer.

    python examples/quickstart.py out/
"""

import sys

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import stalwart
from stalwart import attacks, perturb


def main(out: str = "quickstart-report") -> None:
    train, test = stalwart.datasets.load_split("breast_cancer")
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train.x, train.y)

    model = stalwart.wrap(pipe)  # white-box through an exact torch mirror
    report = stalwart.scan(model, test, suite="quick")
    report.save(out)

    noisy = perturb.get("feature_noise").apply(test.x, severity=3, rng=0, schema=test.schema)
    print("accuracy clean / noisy:", (model.predict(test.x) == test.y).mean(), (model.predict(noisy) == test.y).mean())

    # eps is a fraction of each column's range: 0.03 lets every feature move by 3% of its range
    threat = attacks.ThreatModel.from_schema(test.schema, norm="linf", eps=0.03)
    result = attacks.PGD(threat, steps=50).run(model, test.numeric_x(), test.y)
    print(f"robust accuracy at linf eps=0.03 ({threat.eps_unit_text}):", result.robust_accuracy)
    print("report written to", out)


if __name__ == "__main__":
    main(*sys.argv[1:])
