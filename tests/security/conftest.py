"""Red-team fixtures: the serving tests' real `bentoml serve` (tests/serving/conftest.py)."""

from tests.serving.conftest import service, serving_registry

__all__ = ["service", "serving_registry"]
