"""Wires sources -> front end -> windows -> encoder -> head -> sinks (see docs/streaming.md)."""

from audeep_edge.pipeline.analysis import (EMBEDDING_DTYPES, EMBEDDING_ENCODINGS, Analysis, WindowAnalyzer,
                                           embedding_fields)
from audeep_edge.pipeline.health import HealthMonitor
from audeep_edge.pipeline.runner import Pipeline, RunSummary
from audeep_edge.pipeline.windows import RingBuffer, Window, Windower

__all__ = ["EMBEDDING_DTYPES", "EMBEDDING_ENCODINGS", "Analysis", "WindowAnalyzer", "embedding_fields", "HealthMonitor",
           "Pipeline", "RunSummary", "RingBuffer", "Window", "Windower"]
