"""``audeep-edge quantize`` (train extra): Keras encoder (+ head) -> TFLite bundle with a parity report.

graph (deployable Keras graph, SavedModel export) -> convert (TFLite converter in a child process) ->
flatbuffer (compaction, shared step quantisation, UNPACK rewrite for the Edge TPU) -> parity / edgetpu
(reports) -> bundler (the bundle).
"""
