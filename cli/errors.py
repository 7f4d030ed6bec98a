"""Exit codes, mapped from exception classes in exactly one place."""

from __future__ import annotations

import errno
import re
from enum import IntEnum

from modelsurgeon.core.errors import (
    CheckpointError,
    InputNotFoundError,
    MismatchError,
    MissingDependencyError,
    ModelSurgeonError,
    OutputExistsError,
    OutputFormatError,
    ParameterError,
    SurgeryError,
    UnsupportedOpError,
    WriteError,
)


class ExitCode(IntEnum):
    """What ``modelsurgeon`` returns to the shell (documented in the README)."""

    OK = 0
    DIFFERENT = 1  #: diff: the checkpoints differ
    USAGE = 2  #: bad options or arguments
    NOT_FOUND = 3  #: an input file does not exist
    BAD_CHECKPOINT = 4  #: unreadable, corrupt, hostile or unsupported file
    MISMATCH = 5  #: a checkpoint does not fit the model
    INVALID = 6  #: the requested change or run cannot be done as asked
    OUTPUT_EXISTS = 7  #: the output exists and --force was not given
    UNSUPPORTED = 8  #: an operator or feature the engine does not support
    IO_ERROR = 9  #: the output cannot be written (permission, disk full...)
    INTERNAL = 70  #: a bug in modelsurgeon (run again with --traceback and report it)
    INTERRUPTED = 130  #: interrupted (Ctrl-C)


#: Most specific first.
_EXCEPTIONS: list[tuple[type[BaseException], ExitCode]] = [
    (InputNotFoundError, ExitCode.NOT_FOUND),
    (OutputFormatError, ExitCode.USAGE),
    (ParameterError, ExitCode.USAGE),  # a value that fails validation: a usage error, as click's own
    (CheckpointError, ExitCode.BAD_CHECKPOINT),
    (MismatchError, ExitCode.MISMATCH),
    (OutputExistsError, ExitCode.OUTPUT_EXISTS),
    (WriteError, ExitCode.IO_ERROR),
    (UnsupportedOpError, ExitCode.UNSUPPORTED),
    (MissingDependencyError, ExitCode.USAGE),  # an optional package is needed: install it, or ask for another format
    (SurgeryError, ExitCode.INVALID),
    (ModelSurgeonError, ExitCode.INVALID),
    (KeyboardInterrupt, ExitCode.INTERRUPTED),
    (OSError, ExitCode.IO_ERROR),
]


def exit_code_for(exc: BaseException) -> ExitCode:
    for cls, code in _EXCEPTIONS:
        if isinstance(exc, cls):
            return code
    return ExitCode.INTERNAL


#: library parameters named in messages (in backquotes) -> the flags that set them
_FLAGS = {"overwrite": "--force", "symbol": "--symbol FILE"}


def flag(parameter: str) -> str:
    """The flag that sets a library parameter: ``keep_classes`` -> ``--keep-classes``."""
    return _FLAGS.get(parameter, "--" + parameter.replace("_", "-"))


def flags(text: str) -> str:
    """The library names its parameters in backquotes; a user of the CLI sets flags."""
    return re.sub(r"`(\w+)`", lambda m: flag(m.group(1)), text)


def message_for(exc: BaseException) -> str:
    """One line for the user."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, OSError) and not isinstance(exc, ModelSurgeonError):
        reason = {errno.ENOSPC: "no space left on device", errno.EACCES: "permission denied",
                  errno.EROFS: "read-only file system"}.get(exc.errno or 0, exc.strerror or str(exc))
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return f"{where}{reason}"
    if isinstance(exc, ParameterError):  # click's own style for a bad value
        # "`keep_classes` '100' out of range" -> "'100' out of range"
        problem = exc.problem.removeprefix(f"`{exc.parameter}` ")
        return " ".join(f"Invalid value for '{flag(exc.parameter)}': {flags(problem)}".split())
    text = flags(str(exc)) or type(exc).__name__
    if exit_code_for(exc) is ExitCode.INTERNAL:
        text = f"internal error ({type(exc).__name__}: {text}); run again with --traceback and report it"
    return " ".join(text.split())
