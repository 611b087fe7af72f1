"""Stage 3: the LiteRT interpreter wrapper (ai-edge-litert -> tflite-runtime -> tf.lite) and its delegates."""

from audeep_edge.encoder.interpreter import DELEGATES, Encoded, Encoder, interpreter_backend

__all__ = ["DELEGATES", "Encoded", "Encoder", "interpreter_backend"]
