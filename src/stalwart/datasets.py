"""Built-in data sets, available offline: ``stalwart.datasets.load("breast_cancer")``.

Names: ``breast_cancer`` and ``wine`` (tabular), ``digits`` (8 x 8 images in [0, 1]) and
``sentiment`` (generated English sentences). :func:`load` returns one split (``"test"`` by
default), :func:`load_split` the stratified (train, test) pair. :func:`make_planted_slices` makes
a table with known weak slices (for slice discovery).
"""

from stalwart.data.builtin import load, load_split, names
from stalwart.data.planted import PlantedSlices, make_planted_slices
from stalwart.data.text_sentiment import make_sentiment

__all__ = ["load", "load_split", "names", "make_sentiment", "make_planted_slices", "PlantedSlices"]
