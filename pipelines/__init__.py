"""Dagster assets, resources, checks and automation of the training loop."""
