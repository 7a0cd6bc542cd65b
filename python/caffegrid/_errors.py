"""caffegrid's exceptions: one class per status code of the C library
(CG_STATUS_LIST in include/caffegrid/error.h), each carrying the library's message.

Every class derives from caffegrid.Error and from the closest built-in exception,
so ``except caffegrid.Error`` and ``except OSError`` / ``except ValueError`` both work.
"""

__all__ = [
    "Error", "IOError", "ParseError", "InvalidArgumentError", "ShapeError", "OutOfMemoryError",
    "UnsupportedError", "NotFoundError", "CorruptDataError", "CommError", "NonFiniteError", "DTypeError", "BusyError",
]


class Error(Exception):
    """Base of every caffegrid error. ``str(e)`` is the C library's message;
    ``e.code`` the library's status code (a negative int)."""

    code = -3

    @property
    def message(self) -> str:
        """The message, as the C library wrote it."""
        return str(self.args[0]) if self.args else ""


class IOError(Error, OSError):  # noqa: A001 - named after CG_ERR_IO; also an OSError
    """A file could not be opened, read or written (CG_ERR_IO)."""

    code = -1


class ParseError(Error, ValueError):
    """A prototxt or binary file does not parse: syntax, unknown field, bad value (CG_ERR_PARSE)."""

    code = -2


class InvalidArgumentError(Error, ValueError):
    """A setting or argument is not acceptable (CG_ERR_INVALID)."""

    code = -3


class ShapeError(Error, ValueError):
    """Shapes do not agree: weights vs net, fed arrays vs a MemoryData layer (CG_ERR_SHAPE)."""

    code = -4


class OutOfMemoryError(Error, MemoryError):
    """The library ran out of memory (CG_ERR_NOMEM)."""

    code = -5


class UnsupportedError(Error, NotImplementedError):
    """Something Caffe has that caffegrid does not do (CG_ERR_UNSUPPORTED)."""

    code = -6


class NotFoundError(Error, LookupError):
    """A named thing (layer, blob, file entry) does not exist (CG_ERR_NOT_FOUND)."""

    code = -7


class CorruptDataError(Error, ValueError):
    """A data file is damaged or not what it claims to be (CG_ERR_CORRUPT)."""

    code = -8


class CommError(Error):
    """Data-parallel communication failed (CG_ERR_COMM)."""

    code = -9


class NonFiniteError(Error, ArithmeticError):
    """Training diverged: the loss, gradients or weights became NaN or infinite (CG_ERR_NONFINITE)."""

    code = -10


class DTypeError(Error, TypeError):
    """An array has the wrong dtype or type (raised by the Python layer; float32 is required)."""

    code = -3


class BusyError(Error):
    """The net or solver is running in another thread; calls on one net must not overlap."""

    code = -3


BY_CODE = {cls.code: cls for cls in (IOError, ParseError, InvalidArgumentError, ShapeError, OutOfMemoryError,
                                     UnsupportedError, NotFoundError, CorruptDataError, CommError, NonFiniteError)}
