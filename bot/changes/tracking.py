"""The change tracker at run time: the watchers that keep the history current, and pruning.

`ChangeTracker` is built once by the composition root from the bot's client and the one
`ChangeRecorder`, so a feature that subscribes to the recorder before the watch starts (alerting)
and the watchers share it. `k8sbot watch` runs it in the main thread; `k8sbot run` in a thread of
its own. The history itself is read from `bot.store.changes.ChangeStore`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from bot.changes.recording import ChangeRecorder
from bot.kube.cache import WatchCache
from bot.kube.client import KubeClient
from bot.kube.watching import WatchedKind, Watchers

log = logging.getLogger(__name__)

PRUNE_EVERY = 3600.0


class ChangeTracker:
    """Watches `kinds` through the recorder until stopped, pruning old history every hour."""

    def __init__(
        self,
        *,
        kube: KubeClient,
        recorder: ChangeRecorder,
        kinds: Sequence[WatchedKind],
        prune_every: float = PRUNE_EVERY,
        cache: WatchCache | None = None,
    ) -> None:
        self.kube = kube
        self.recorder = recorder
        self.watchers = Watchers(kube, recorder, kinds=kinds)
        self.prune_every = prune_every
        self.cache = cache
        """Fed by the same watchers while they run (`bot.kube.cache`); closed when they stop."""

    def wait_synced(self, timeout: float = 60.0) -> bool:
        """True once every kind's first listing is recorded (or resumed from a checkpoint)."""
        return self.watchers.wait_synced(timeout)

    def run(self, stop_event: threading.Event) -> None:
        """Watch and record until `stop_event` is set. Blocks."""
        unsubscribe = None
        if self.cache is not None:
            # Subscribed before the watchers start, so nothing they see is missed; kinds whose watch may
            # resume from a checkpoint (no listing) are listed for the cache once, first.
            unsubscribe = self.recorder.subscribe(on_object=self.cache.apply, on_listed=self.cache.listed)
            resumable = [w.kind for w in self.watchers.watchers if w.watched.mode == "changes"]
            self.cache.seed(self.kube, resumable, stop=stop_event)
        self.watchers.start()
        log.info("watching %s", ", ".join(w.kind for w in self.watchers.watchers))
        try:
            while True:
                self.prune()
                if stop_event.wait(self.prune_every):
                    break
        finally:
            self.watchers.stop()
            if self.cache is not None and unsubscribe is not None:
                self.cache.close()
                unsubscribe()
            log.info("watchers stopped")

    def prune(self) -> None:
        """Drop changes and events past retention (a chore: failures are logged, tried again later)."""
        try:
            changes = self.recorder.changes.prune()
            events = self.recorder.events.prune()
            if changes or events:
                log.info("pruned %d changes and %d events past retention", changes, events)
        except Exception:
            log.exception("pruning the change history failed")
