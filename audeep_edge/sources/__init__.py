"""Stage 1: audio in. Every source yields :class:`AudioBlock` objects at its own rate and channel count."""

from audeep_edge.sources.base import AudioBlock, BlockQueue, Source
from audeep_edge.sources.file import FileSource, PaddedClip
from audeep_edge.sources.mic import MicrophoneSource, list_input_devices
from audeep_edge.sources.stdin import STDIN_FORMATS, StdinSource

__all__ = ["AudioBlock", "BlockQueue", "Source", "FileSource", "PaddedClip", "MicrophoneSource", "list_input_devices",
           "STDIN_FORMATS", "StdinSource"]
