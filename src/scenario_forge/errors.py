"""The one error type users see: a clear, one-line message and a non-zero exit."""

from __future__ import annotations


class ForgeError(Exception):
    """A problem with the user's input or environment, reported as one line.

    The CLI prints ``str(error)`` and exits with :attr:`exit_code`; nothing already written to
    disk is removed when one is raised.
    """

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        # One line, always: multi-line messages from libraries are folded.
        super().__init__(" ".join(str(message).split()))


class ConfigError(ForgeError):
    """Bad arguments, recipes, thresholds or taxonomy files."""


class BackendError(ForgeError):
    """A model backend that cannot be loaded or reached."""

    exit_code = 3


class MissingExtraError(ForgeError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, package: str, extra: str, what: str) -> None:
        super().__init__(
            f"{what} needs the '{package}' package: install it with "
            f"`pip install 'scenario-forge[{extra}]'`"
        )


class AccountingError(ForgeError):
    """Counts that do not add up (planned != kept + rejected + deduplicated)."""

    exit_code = 4
