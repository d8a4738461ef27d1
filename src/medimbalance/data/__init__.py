"""Data: sources (synthetic and, later, real), splits, imbalance profiles, array IO."""
