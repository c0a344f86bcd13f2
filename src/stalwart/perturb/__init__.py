"""Natural perturbations for tabular data, images and text, registered by name."""

from stalwart.perturb.base import PERTURBATIONS, SEVERITIES, Perturbation, get, names, register

__all__ = ["PERTURBATIONS", "SEVERITIES", "Perturbation", "get", "names", "register"]
