"""Intent models: candidates, splits, evaluation, fallback, promotion rules, registry."""
