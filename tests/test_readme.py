"""The README's YAML suite is valid as written."""

import re
from pathlib import Path

from stalwart.suite import Suite

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_yaml_suite_loads_and_round_trips():
    block = re.search(r"```yaml\n(.*?)```", README.read_text(), re.S).group(1)
    suite = Suite.from_yaml(block)
    assert suite.name == "release-gate"
    assert [c.name for c in suite.checks] == ["clean_performance", "natural_robustness", "adversarial_robustness"]
    assert Suite.from_yaml(suite.to_yaml()).to_dict() == suite.to_dict()
