"""Pulumi program that declares the real-time anomaly detection stack on Google Cloud."""
