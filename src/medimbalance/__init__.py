"""medimbalance: class-imbalance experiments for medical-imaging deep learning.

The package is import-light on purpose: importing it (or its data, balancing, metrics and
reporting modules) never imports torch, so non-training workflow jobs start quickly.
"""

__version__ = "0.1.0"
