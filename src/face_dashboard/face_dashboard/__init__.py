"""Monitoring: latency traces joined and summarised, and the web dashboard."""
