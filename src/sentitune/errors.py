"""User-facing errors.

Anything a user can cause (bad input file, missing model directory, unknown method) raises
``SentituneError`` with a one-line message that names the problem. The CLI prints that line and
exits non-zero; the server turns it into a 4xx JSON body. Everything else is a bug and keeps its
traceback.
"""


class SentituneError(Exception):
    """A problem with the user's input, files or configuration, described in one line."""


class ArtifactError(SentituneError):
    """A model directory is missing, incomplete or corrupt."""


class DataError(SentituneError):
    """An input data file cannot be read or does not have the expected columns/labels."""
