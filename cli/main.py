"""``modelsurgeon``: inspect, rename, re-head, convert, compare and run model checkpoints.

Errors are one line on stderr (or a JSON error object on stdout under ``--json``) with an exit
code from :class:`~modelsurgeon.cli.errors.ExitCode`; tracebacks only with ``--traceback``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import Any

import click

from .commands import COMMANDS
from .output import VERSION

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class SurgeonGroup(click.Group):
    """Loads commands lazily; runs one and turns every exception into one line and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            import importlib
            self.add_command(importlib.import_module(f"{__package__}.commands.{COMMANDS[name]}").command, name)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            import difflib
            close = difflib.get_close_matches(name, list(COMMANDS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        want_json = "--json" in argv
        show_traceback = "--traceback" in argv
        try:
            result = super().main(args=argv, prog_name=prog_name or "modelsurgeon", standalone_mode=False, **extra)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.ClickException as exc:
            from .errors import ExitCode
            code = ExitCode.USAGE if isinstance(exc, click.UsageError) else ExitCode.INVALID
            if want_json:
                _json_error(code, exc.format_message())
            else:
                exc.show()
            sys.exit(int(code))
        except click.Abort:
            from .errors import ExitCode
            _report(ExitCode.INTERRUPTED, "interrupted", want_json)
            sys.exit(130)
        except BaseException as exc:
            if isinstance(exc, SystemExit):
                raise
            from .errors import exit_code_for, message_for
            if show_traceback:
                traceback.print_exc()
            code = exit_code_for(exc)
            _report(code, message_for(exc), want_json)
            sys.exit(int(code))
        sys.exit(int(result) if isinstance(result, int) else 0)


def _json_error(code: Any, message: str) -> None:
    import json
    document = {"schema_version": 1, "tool": "modelsurgeon", "version": VERSION,
                "error": {"code": int(code), "type": code.name.lower(), "message": " ".join(message.split())}}
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _report(code: Any, message: str, want_json: bool) -> None:
    if want_json:
        _json_error(code, message)
    else:
        from .output import printable
        sys.stderr.write(f"Error: {printable(message)}\n")


@click.group(cls=SurgeonGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(VERSION, "-V", "--version", prog_name="modelsurgeon")
@click.option("--traceback", is_flag=True, help="Show the full traceback when something fails.")
def cli(traceback: bool) -> None:
    """Inspect, rename, re-head, convert, compare and run model checkpoints.

    Reads modelsurgeon HDF5 checkpoints (structural and name-keyed), MXNet .params/.npz with
    their -symbol.json, safetensors (also sharded), Keras HDF5 and, with PyTorch installed,
    .pt/.pth state dicts. The format is detected from the file's bytes.

    \b
    Exit codes: 0 ok, 1 differences found (diff), 2 usage (a bad option or value), 3 input not found,
    4 bad checkpoint, 5 checkpoint does not fit the model, 6 request cannot be done,
    7 output exists (use --force), 8 unsupported operator/feature, 9 cannot write output,
    70 internal error.

    \b
    Example:
      modelsurgeon inspect sample_models/cnn.h5 --tree
    """


def main(argv: list[str] | None = None) -> None:
    """The console script: run one command, then leave at once.

    By the time a command returns, everything it opened is closed and its outputs are in place,
    so the interpreter's teardown (freeing every module and object, HDF5's and OpenBLAS's exit
    hooks: ~50 ms, a tenth of a small command) buys nothing. Print what is buffered and exit.
    """
    try:
        cli.main(args=argv)
        code: Any = 0
    except SystemExit as done:
        code = done.code
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    for stream in (sys.stdout, sys.stderr):
        # a reader that went away (`| head`), or a closed stream
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code or 0)
