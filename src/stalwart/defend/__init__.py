"""Make models more robust, with before/after evidence: augmentation and adversarial training
(PGD-AT, TRADES, fast FGSM with a catastrophic-overfitting guard), ensembles, and input
transforms (feature squeezing, randomized transforms) that are attacked adaptively (BPDA, EOT) by
default."""

from stalwart.defend.augment import AugmentedClassifier, ImageAugment, TextAugmenter
from stalwart.defend.distill import DistillationResult, DistilledModel, distill
from stalwart.defend.ensemble import Ensemble
from stalwart.defend.randomized import EOT, RandomizedModel, RandomNoise, RandomResizePad, RandomTransform
from stalwart.defend.reweight import ReweightedFit, importance_weighted_fit
from stalwart.defend.squeeze import JPEG, BitDepth, MedianFilter, SqueezedModel, Squeezer, SqueezingDetector
from stalwart.defend.tradeoffs import TRADEOFF_METHODS, TradeoffResult, option_names, pareto_front, tradeoff
from stalwart.defend.training import TrainingResult, adversarial_training

__all__ = ["AugmentedClassifier", "ImageAugment", "TextAugmenter", "Ensemble", "Squeezer", "BitDepth", "MedianFilter",
           "JPEG", "SqueezedModel", "SqueezingDetector", "adversarial_training", "TrainingResult", "importance_weighted_fit",
           "ReweightedFit", "distill", "DistilledModel", "DistillationResult", "RandomTransform", "RandomNoise",
           "RandomResizePad", "RandomizedModel", "EOT", "tradeoff", "TradeoffResult", "pareto_front", "option_names",
           "TRADEOFF_METHODS"]
