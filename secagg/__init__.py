"""secagg: secure aggregation for federated learning, with privacy an auditor can check."""

__version__ = "0.1.0"
