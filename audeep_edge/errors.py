"""One exception root. Every error a user can cause is an :class:`AudeepError`;
the CLI prints its message as one line and exits non-zero."""


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
