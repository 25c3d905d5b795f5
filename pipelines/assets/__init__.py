"""Asset groups: ingestion, features, training."""
