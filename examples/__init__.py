"""Runnable examples (`python -m examples.demo`) beside the example manifests."""
