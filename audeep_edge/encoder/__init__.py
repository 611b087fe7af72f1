"""Stage 3: the LiteRT interpreter wrapper (ai-edge-litert -> tflite-runtime -> tf.lite) and its delegates."""

from audeep_edge.encoder.interpreter import DELEGATES, Encoded, Encoder
from audeep_edge.encoder.model_file import count_subgraphs
from audeep_edge.encoder.runners import interpreter_backend

__all__ = ["DELEGATES", "Encoded", "Encoder", "count_subgraphs", "interpreter_backend"]
