"""Parsers: which audio files a data set has, with labels, folds and partitions.

``get_parser(spec, basedir)`` accepts a built-in name (``meta`` = auto-detect, ``esc``, ``dcase``,
``urbansound8k``, ``partitioned``, ``cross-validated``, ``class-folders``, ``no-metadata``), auDeep's dotted class names
(``audeep.backend.parsers.esc.ESCParser``), or a custom parser as ``module:Class``, ``pkg.module.Class`` or
``path/to/file.py:Class``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from audeep_edge.dataset.parsers.base import AUDIO_EXTENSIONS, Instance, Parser, audio_files
from audeep_edge.dataset.parsers.classfolder import ClassFolderParser
from audeep_edge.dataset.parsers.crossvalidated import CrossValidatedParser
from audeep_edge.dataset.parsers.custom import CustomParser
from audeep_edge.dataset.parsers.dcase import DCASEParser
from audeep_edge.dataset.parsers.esc import ESCParser
from audeep_edge.dataset.parsers.nometadata import NoMetadataParser
from audeep_edge.dataset.parsers.partitioned import PartitionedParser
from audeep_edge.dataset.parsers.urbansound import UrbanSound8KParser
from audeep_edge.errors import ConfigError, DataError

#: Tried by auto-detection, in auDeep's MetaParser order; then, when none of them matches, the class folders.
AUTO_DETECTED = (DCASEParser, PartitionedParser, CrossValidatedParser, ESCParser, UrbanSound8KParser)
BUILT_IN = {cls.name: cls for cls in (*AUTO_DETECTED, ClassFolderParser, NoMetadataParser)}
#: auDeep's class names (``audeep.backend.parsers.<module>.<Class>``) -> ours.
AUDEEP_NAMES = {cls.__name__: cls.name for cls in BUILT_IN.values()} | {"MetaParser": "meta"}

__all__ = ["Instance", "Parser", "get_parser", "detect_parser", "AUDIO_EXTENSIONS", "BUILT_IN"]


def detect_parser(basedir: str | Path) -> Parser:
    """The unique built-in parser that recognises ``basedir``; DataError naming the directory otherwise."""
    basedir = Path(basedir)
    if not basedir.is_dir():
        raise DataError(f"{basedir}: no such data set directory")
    matching = [p for p in (cls(basedir) for cls in AUTO_DETECTED) if p.can_parse()]
    if len(matching) == 1:
        return matching[0]
    if matching:
        names = ", ".join(p.name for p in matching)
        raise DataError(f"{basedir}: ambiguous data set layout (matches {names}); choose one with --parser")
    class_folders = ClassFolderParser(basedir)
    if class_folders.can_parse():
        return class_folders
    if not audio_files(basedir, recursive=True):
        raise DataError(f"{basedir}: no audio files ({', '.join(e[1:] for e in AUDIO_EXTENSIONS)}) found")
    raise DataError(f"{basedir}: unknown data set layout (no class folders <label>/*.wav, not "
                    f"{', '.join(c.name for c in AUTO_DETECTED)}); use --parser no-metadata for a plain folder "
                    "of audio files, or a custom --parser")


def _load_class(spec: str) -> type:
    """The class named by ``module:Class``, ``path/file.py:Class`` or ``pkg.module.Class``."""
    if ":" in spec:
        where, cls_name = spec.rsplit(":", 1)
    elif "." in spec:
        where, cls_name = spec.rsplit(".", 1)
    else:
        raise ConfigError(f"--parser {spec!r}: unknown parser; use one of {', '.join(['meta', *BUILT_IN])}, "
                          "module:Class or path/to/file.py:Class")
    try:
        if where.endswith(".py"):
            path = Path(where).resolve()
            if not path.is_file():
                raise ConfigError(f"--parser {spec!r}: no such file {path}")
            module_name = f"audeep_edge_custom_parser_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module  # dataclasses etc. look their module up while executing it
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ConfigError:
        raise
    except Exception as exc:  # a user's module can fail to import in any way; report it in one line
        raise ConfigError(f"--parser {spec!r}: cannot import {where} ({type(exc).__name__}: {exc})") from None
    cls = getattr(module, cls_name, None)
    if not isinstance(cls, type):
        raise ConfigError(f"--parser {spec!r}: {where} has no class {cls_name}")
    return cls


def get_parser(spec: str | None, basedir: str | Path) -> Parser:
    """The parser named by ``spec`` (None or ``meta``: auto-detect) for ``basedir``."""
    spec = (spec or "meta").strip()
    if spec.startswith("audeep.backend.parsers."):
        spec = AUDEEP_NAMES.get(spec.rsplit(".", 1)[-1], spec)
    if spec.lower() == "meta":
        return detect_parser(basedir)
    if spec.lower() in BUILT_IN:
        return BUILT_IN[spec.lower()](basedir)
    return CustomParser(_load_class(spec), basedir, spec)
