"""Intent models: candidates, splits, evaluation, fallback calibration, promotion rules, registry."""
