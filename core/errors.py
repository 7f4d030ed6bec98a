"""Every exception modelsurgeon raises on purpose derives from :class:`ModelSurgeonError`.

The command line maps each class to one exit code (``cli/errors.py``); the library never
exits or prints. Input checks raise these classes, never ``assert`` (asserts vanish under
``python -O``).
"""

from __future__ import annotations

from collections.abc import Iterable


class ModelSurgeonError(Exception):
    """Base class of all errors raised by modelsurgeon."""


class DeferredInitializationError(ModelSurgeonError):
    """A Parameter's shape is not known yet: it is fixed by the first forward pass."""


class NotInitializedError(ModelSurgeonError, RuntimeError):
    """A Parameter was read before ``initialize()`` was called."""


class ShapeError(ModelSurgeonError, ValueError):
    """An array does not fit the shape a layer or Parameter expects."""


class MismatchError(ModelSurgeonError):
    """A checkpoint does not match a model: missing, unexpected or differently shaped keys."""


class CheckpointError(ModelSurgeonError):
    """A file is not a checkpoint we can read safely (corrupt, hostile, unsupported)."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class InvalidAttributeError(CheckpointError):
    """An operator's or layer's attribute is outside its declared type or range (a malformed graph
    or architecture): ``where`` names the node or layer and the attribute."""

    def __init__(self, where: str, problem: str):
        super().__init__(where, problem)


class InputNotFoundError(CheckpointError):
    """The input path does not exist."""


class ResourceLimitError(CheckpointError):
    """What a file declares (an input shape, a padding...) would need more memory than allowed."""


class UnsupportedOpError(ModelSurgeonError):
    """A graph uses an operator the numpy executor does not implement."""


class SurgeryError(ModelSurgeonError):
    """A surgery request cannot be carried out as asked (nothing was written)."""


class ParameterError(SurgeryError):
    """A parameter's value is not valid for this request (``classes=0``, a ``head`` that names no layer,
    ``keep_classes`` out of range). The command line reports it as a usage error naming the flag.
    """

    def __init__(self, parameter: str, problem: str):
        self.parameter = parameter
        self.problem = problem
        super().__init__(problem)


class WriteError(ModelSurgeonError):
    """The output cannot be written (missing directory, permission, full disk)."""


class MissingDependencyError(ModelSurgeonError):
    """An optional package the request needs is not installed (the message says which, and the alternative)."""


class OutputExistsError(ModelSurgeonError):
    """The output path exists and overwriting was not allowed."""


def brief_list(items: Iterable[object], limit: int = 7) -> str:
    """Quote items for a message, eliding the middle of long lists.

    >>> brief_list(["a", "b"])
    "'a', 'b'"
    >>> brief_list([str(i) for i in range(10)])
    "'0', '1', '2', ..., '6', '7', '8', '9'"
    """
    quoted = [f"'{item}'" for item in items]
    if len(quoted) > limit:
        quoted = [*quoted[:3], "...", *quoted[-4:]]
    return ", ".join(quoted)


class OutputFormatError(ModelSurgeonError):
    """An output path or ``format`` names no format that can be written (a usage error)."""
