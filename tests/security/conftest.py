"""Red-team fixtures: the serving tests' real `bentoml serve` (tests/serving/conftest.py)."""

from tests.serving.chat.conftest import dev_login_service
from tests.serving.conftest import service, serving_registry

__all__ = ["dev_login_service", "service", "serving_registry"]
