"""GuardMonitor: puts guards' counters and health into Keras logs, logs events, stops fit on request."""

from __future__ import annotations

import keras


class GuardMonitor(keras.callbacks.Callback):
    """Connects GradientGuards to Keras `fit`.

    After every batch it raises a nonfinite="raise" guard's NonFiniteError (a compiled step
    only records it), logs the guards' new events by variable name and, when a guard with
    recovery="stop" asks for it, sets `model.stop_training`. A batch that changed none of a
    guard's counters (every healthy step) costs three variable reads per guard: events and stop
    requests are looked for only when a counter moved. It adds each guard's counters to
    the batch and epoch logs as `{guard}_{counter}`, and with health=True each variable's record
    as `{guard}/{variable}/{none|nonfinite|large|last_norm}`, so they reach CSVLogger and
    TensorBoard placed after it in the callback list.

    Args:
        guards: the GradientGuards of the model.
        health: also put per-variable health into the epoch logs.
    """

    def __init__(self, guards, health: bool = False):
        super().__init__()
        self.guards = list(guards)
        self.health = health
        self.stopped_by = None
        self._seen_totals = {}

    def on_train_begin(self, logs=None):
        self._seen_totals = {}
        for guard in self.guards:
            guard.monitored = True

    def on_train_end(self, logs=None):
        for guard in self.guards:
            guard.monitored = False

    @staticmethod
    def _add_counters(logs, guard, totals: dict) -> None:
        logs.update({f"{guard.name}_{name}": value for name, value in totals.items()})

    def on_train_batch_end(self, batch, logs=None):
        for guard in self.guards:
            if not guard.built:
                continue
            guard.raise_if_nonfinite()
            totals = guard.host_totals()
            # events, rollbacks and stop requests all move a counter
            if totals != self._seen_totals.get(id(guard)):
                self._seen_totals[id(guard)] = totals
                guard.log_events()
                if guard.stop_requested and self.stopped_by is None:
                    self.stopped_by = guard.name
                    self.model.stop_training = True
            if logs is not None:
                self._add_counters(logs, guard, totals)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for guard in self.guards:
            if guard.built:
                self._add_counters(logs, guard, guard.host_totals())
        if self.health:
            for guard in self.guards:
                if guard.built:
                    for variable, record in guard.health().items():
                        for kind, value in record.items():
                            logs[f"{guard.name}/{variable}/{kind}"] = value
