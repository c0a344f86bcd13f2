"""Make models more robust: augmentation training (and, as they land, adversarial training,
randomized smoothing, ensembles and input transforms)."""

from stalwart.defend.augment import AugmentedClassifier, ImageAugment, TextAugmenter

__all__ = ["AugmentedClassifier", "ImageAugment", "TextAugmenter"]
