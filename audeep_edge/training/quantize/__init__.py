"""``audeep-edge quantize`` (train extra): Keras encoder (+ head) -> TFLite bundle with a parity report.

graph (deployable Keras graph, SavedModel export) -> convert (TFLite converter in a child process) ->
flatbuffer (compaction, shared step quantisation, UNPACK rewrite for the Edge TPU) -> parity / edgetpu
(reports) -> bundle_writer (conversion, parity report, the bundle directory, also for the codebook recipe and
``train``); bundler is ``quantize`` itself (a run's facts, its data and inference graph).
"""
