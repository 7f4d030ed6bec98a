"""Options shared by commands: output (``--json``/``--quiet``), where to write (``Target``), shapes."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import click

from .output import Output


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` and ``--quiet`` for every command; the command receives ``out: Output``."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout (nothing else).")
    @click.option("-q", "--quiet", is_flag=True,
                  help="No notes on stderr; commands that write also skip their change report.")
    @click.option("--traceback", "_traceback", is_flag=True, hidden=True)  # read by SurgeonGroup.main
    @functools.wraps(command)
    def wrapper(*args: Any, as_json: bool, quiet: bool, _traceback: bool, **kwargs: Any) -> Any:
        return command(*args, out=Output(json=as_json, quiet=quiet), **kwargs)

    return wrapper


def parse_shape(text: str) -> tuple[int, ...]:
    """``'1,3,224,224'`` or ``'1x3x224x224'`` -> (1, 3, 224, 224); a ``click.BadParameter`` otherwise."""
    try:
        dims = tuple(int(part) for part in re.split(r"[,x\s]+", text.strip(" ()[]")) if part)
    except ValueError:
        raise click.BadParameter(f"cannot read shape {text!r}; write it like 1,3,224,224") from None
    if not dims or any(d <= 0 for d in dims):
        raise click.BadParameter(f"shape {text!r} must be positive integers like 1,3,224,224")
    return dims


def shape_option(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    """Click callback: a SHAPE option parsed, or a usage error naming the option."""
    return None if value is None else parse_shape(value)


#: A value each validating callback refuses (tests/test_cli_ux.py feeds it to every option that has one).
shape_option.bad_example = "1,3,abc"  # type: ignore[attr-defined]


def number_list(kind: type = float, minimum: float | None = None, name: str = "numbers") -> Callable[..., Any]:
    """A click callback for a comma-separated list (``--weights 0.5,0.25,0.25``): each item a ``kind``
    of at least ``minimum``, or a usage error naming the option and the bad item.

    >>> parse = number_list(float, minimum=0)
    >>> parse(None, None, "0.5, 0.25,0.25")
    [0.5, 0.25, 0.25]
    """

    def callback(ctx: click.Context | None, param: click.Parameter | None, text: str | None) -> list[Any] | None:
        if text is None:
            return None
        items = [part.strip() for part in text.split(",")]
        if not any(items):
            raise click.BadParameter(f"give comma-separated {name}, like 1,2,3")
        values = []
        for item in items:
            try:
                value = kind(item)
            except ValueError:
                raise click.BadParameter(f"{item!r} in {text!r} is not a {kind.__name__}; write {name} "
                                         "separated by commas") from None
            if isinstance(value, float) and value != value:  # NaN
                raise click.BadParameter(f"{item!r} is not a number")
            if minimum is not None and value < minimum:
                raise click.BadParameter(f"{item!r} is below {minimum:g}")
            values.append(value)
        return values

    callback.bad_example = "1,x"  # type: ignore[attr-defined]
    return callback


def zoo_name_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback: a model-zoo name, or a usage error listing the names (like ``click.Choice``)."""
    if value is None:
        return None
    from modelsurgeon.core.engine.model_zoo import vision
    names = vision.model_names()
    if value.lower() not in names:
        import difflib
        close = difflib.get_close_matches(value.lower(), names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        hint_name = f"'{param.name.upper()}'" if isinstance(param, click.Argument) and param.name else None
        raise click.BadParameter(f"unknown model {value!r}.{hint} Choose from: {', '.join(names)}",
                                 param_hint=hint_name)
    return value


zoo_name_option.bad_example = "no-such-model"  # type: ignore[attr-defined]


def member_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--member NAME`` for commands that read checkpoints; the command receives ``member``."""
    return click.option("--member", metavar="NAME",
                        help="The entry of a PyTorch .pt/.pth checkpoint that holds the state dict (model, "
                             "model_ema, or a dotted path such as trainer.module; default: found by itself).")(command)


def reader_options(member: str | None) -> dict[str, Any]:
    """What ``binding.open_checkpoint`` passes to the format's reader."""
    return {"member": member}


def regex_list(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Click callback: every value of a repeatable REGEX option compiles, else a usage error naming it."""
    for value in values:
        try:
            re.compile(value)
        except re.error as exc:
            raise click.BadParameter(f"bad regular expression {value!r}: {exc}") from None
    return values


regex_list.bad_example = "("  # type: ignore[attr-defined]
