"""Model adapters: ``wrap`` turns anything a team ships into a :class:`Model`."""

from stalwart.models.base import Model
from stalwart.models.wrap import load_model, wrap

__all__ = ["Model", "wrap", "load_model"]
