"""The one protocol every sink implements. Payloads follow the MQTT schema v1 in docs/mqtt.md."""

from __future__ import annotations

from typing import Any, Protocol

Payload = dict[str, Any]


class Sink(Protocol):
    """A destination for results. Calls come from the pipeline thread and must not block on the network."""

    def publish_window(self, payload: Payload) -> None:
        """One analysed window (schema: ``window``)."""

    def publish_health(self, payload: Payload) -> None:
        """Periodic runtime health (schema: ``health``)."""

    def publish_event(self, payload: Payload) -> None:
        """A discrete event such as ``novel`` or ``label_change`` (schema: ``event``)."""

    def publish_clip(self, payload: Payload) -> None:
        """A saved event clip (schema: ``clip``; only with ``listen --clips``)."""

    def close(self) -> None:
        """Flush what is buffered (bounded wait), announce ``offline`` and release resources. A sink that can lose
        results (MQTT, JSONL) then has ``failure``: None, or one line saying what did not get through."""
