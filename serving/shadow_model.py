"""The challenger a worker shadows: the registry's `challenger` version, loaded like the champion.

Unlike the champion (serving/model_holder.py), a challenger is optional: when the alias is
removed (a promotion removes it, models/promotion_state.py) the worker stops shadowing, and
when it moves the new version is loaded completely beside the old one and swapped in with one
assignment, so a shadow batch finishes on the version it started with.
"""

from __future__ import annotations

import logging
import threading

from models.registry import IntentRegistry, ModelLoadError
from serving.model_holder import ModelHolder, ServedModel

logger = logging.getLogger(__name__)


class ChallengerHolder:
    """Loads the version under the challenger alias, if any, and follows the alias."""

    def __init__(self, registry: IntentRegistry, alias: str) -> None:
        self.alias = alias
        # The champion's loading path (registry checks, warm-up, /version's description).
        self._loader = ModelHolder(registry, alias)
        self._current: ServedModel | None = None
        self._lock = threading.Lock()  # one load at a time; reads never wait

    @property
    def current(self) -> ServedModel | None:
        """The challenger loaded now; None when the registry has none (or it failed to load)."""
        return self._current

    def refresh(self) -> bool:
        """Follow the alias; True when the shadowed version changed (loaded, swapped or dropped).

        Raises ModelLoadError when the alias names a version that cannot be loaded: nothing is
        shadowed then (the previous challenger is no longer the challenger).
        """
        with self._lock:
            target = self._loader.registry.version_by_alias(self.alias)
            if target is None:
                if self._current is None:
                    return False
                logger.info(
                    "alias %s removed: no longer shadowing version %s",
                    self.alias,
                    self._current.version,
                )
                self._current = None
                return True
            version = str(target.version)
            if self._current is not None and self._current.version == version:
                return False
            try:
                loaded = self._loader.load(version)
            except Exception as exc:
                self._current = None
                raise ModelLoadError(f"{self.alias} version {version}: {exc}") from exc
            previous = self._current.version if self._current else None
            self._current = loaded
            logger.info("shadowing %s version %s (was %s)", self.alias, version, previous)
            return True
