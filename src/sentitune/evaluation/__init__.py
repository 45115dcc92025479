"""Evaluation: metrics, calibration, latency, per-source accuracy, charts and reports."""
