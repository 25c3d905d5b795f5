"""Drift monitoring, stakeholder reports and alerts."""
