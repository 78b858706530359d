"""Apache Beam streaming anomaly-detection pipeline."""
