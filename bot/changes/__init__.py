"""Change tracking: what changed in the cluster, when, who did it, before → after.

`diffing` turns two states of an object into a `Change` (pure); `recording.ChangeRecorder` feeds what
the watchers see into the store and tells subscribers (alerting); `tracking.ChangeTracker` runs the
watchers and prunes old history; the history itself is read from `bot.store.changes.ChangeStore`.
"""
