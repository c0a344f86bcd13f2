"""stalwart: measure, improve, document and monitor the robustness of ML models."""

__version__ = "0.1.0"
