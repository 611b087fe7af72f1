"""One exception root. Every error a user can cause is an :class:`AudeepError`;
the CLI prints its message as one line and exits non-zero (:func:`exit_with`)."""

import logging
import sys
from typing import NoReturn


class AudeepError(Exception):
    """Root of all audeep-edge errors. ``exit_code`` is what the CLI returns."""

    exit_code = 2


class ConfigError(AudeepError):
    """Invalid option, config file or parameter combination."""


class AudioError(AudeepError):
    """Unreadable, corrupt, empty or otherwise unusable audio."""


class DataError(AudeepError):
    """Invalid data set, parser layout or netCDF file."""


class ModelError(AudeepError):
    """Missing, corrupt or mismatching model, run directory or bundle."""


class BrokerError(AudeepError):
    """MQTT broker unreachable, refusing the connection or misconfigured."""


class DeliveryError(AudeepError):
    """Results that a run could not deliver: a broker that stayed away, a full disk."""


def exit_with(error: AudeepError) -> NoReturn:
    """The entry points' error boundary: ``error: MESSAGE`` as one line on stderr, exit with its status."""
    logging.getLogger("audeep_edge").debug("error", exc_info=error)
    print(f"error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)
