"""The one exception type for errors a user can cause (bad config, bad file, bad argument)."""


class LabError(Exception):
    """A problem the user can act on; its message is shown as-is (CLI: one line, exit 2)."""


class DivergedError(LabError):
    """Training produced a NaN or infinite loss; the run is stopped and marked failed."""
