"""The served model version and its atomic replacement (hot swap).

A request reads `holder.current` once and uses that object to the end, so in-flight requests
finish on the version they started with; a swap is one attribute assignment. A new version is
loaded completely beside the old one before it is swapped in; a failed load leaves the old one
serving and is raised as ModelLoadError, so `/admin/reload` can answer 503 with the reason (the
background poll logs it and tries again at its next tick).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from models.inference import IntentInference
from models.predictions import ModelRef
from models.registry import IntentRegistry, ModelLoadError

logger = logging.getLogger(__name__)


class NoModelError(RuntimeError):
    """The registry has no version under the configured alias."""


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version and what /version reports about it."""

    name: str
    version: str
    run_id: str | None
    trained_at: str | None
    metrics: dict[str, float]
    inference: IntentInference

    @property
    def ref(self) -> ModelRef:
        """The version's name and number, as every answer names it."""
        return ModelRef(self.name, self.version)

    def describe(self) -> dict[str, Any]:
        """The /version document."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "trained_at": self.trained_at,
            "metrics": self.metrics,
            "fallback": self.inference.fallback.to_dict(),
            "n_intents": len(self.inference.classes),
        }


class ModelHolder:
    """Loads the version under an alias and swaps in newer ones."""

    def __init__(self, registry: IntentRegistry, alias: str) -> None:
        self.registry = registry
        self.alias = alias
        self._current: ServedModel | None = None
        self._lock = threading.Lock()  # one load at a time; reads never wait

    @property
    def current(self) -> ServedModel:
        """The model serving right now."""
        if self._current is None:
            raise NoModelError("no model loaded")
        return self._current

    def load(self, version: str) -> ServedModel:
        """Load a version fully (not yet serving); ModelLoadError if it is incomplete or broken."""
        # The registry refuses an incomplete version: it has no calibrated fallback policy, and a
        # version is never served with a default one.
        inference = self.registry.load_inference(version)
        # A first prediction builds per-process state (the sentence encoder's ONNX session and
        # tokenizer, ~0.5 s, features/embeddings.py): paid here, before the version serves.
        inference.predict_documents(["warm up"], None, 1)
        described = self.registry.describe(self.registry.version(version))
        return ServedModel(
            name=self.registry.name,
            version=described.version,
            run_id=described.run_id,
            trained_at=described.trained_at,
            metrics=described.metrics,
            inference=inference,
        )

    def refresh(self) -> bool:
        """Serve the alias's version if it changed; returns True when a swap happened.

        Raises NoModelError when there is nothing to serve at all, and ModelLoadError when the
        alias points at a version that cannot be loaded (the current version keeps serving).
        """
        with self._lock:
            target = self.registry.version_by_alias(self.alias)
            if target is None:
                if self._current is None:
                    raise NoModelError(
                        f"registered model {self.registry.name!r} has no version with alias "
                        f"{self.alias!r}: run `make pipeline` first"
                    )
                logger.warning(
                    "alias %s disappeared; keeping version %s", self.alias, self._current.version
                )
                return False
            version = str(target.version)
            if self._current is not None and self._current.version == version:
                return False
            try:
                loaded = self.load(version)
            except Exception as exc:
                if self._current is None:
                    raise
                reason = exc if isinstance(exc, ModelLoadError) else f"version {version}: {exc}"
                raise ModelLoadError(
                    f"{reason}; version {self._current.version} keeps serving"
                ) from exc
            previous = self._current.version if self._current else None
            self._current = loaded
            logger.info("now serving %s version %s (was %s)", self.registry.name, version, previous)
            return True
