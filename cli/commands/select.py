"""``modelsurgeon select``: keep or drop tensors by regex, or extract a sub-tree (a backbone) as the root."""

from __future__ import annotations

from typing import Any

import click

from modelsurgeon.core import binding
from modelsurgeon.core.surgery import select as selection

from ..options import output_options, regex_list
from ..output import Output
from ..target import Target, finish, write_options

_RULE_OPTIONS = {"--keep": "keep", "--drop": "drop"}


class _InOrder(click.Command):
    """Remembers the order in which --keep and --drop were given (click groups each option's values)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        order = []
        skip = False
        for arg in args:
            if skip:
                skip = False
                continue
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if name in _RULE_OPTIONS:
                order.append(_RULE_OPTIONS[name])
                skip = "=" not in arg
        ctx.meta["select.order"] = order
        return super().parse_args(ctx, args)




def in_order(order: list[str], keep: tuple[str, ...], drop: tuple[str, ...]) -> list[tuple[str, str]]:
    """The --keep and --drop values interleaved as given."""
    queues: dict[str, list[str]] = {"keep": list(keep), "drop": list(drop)}
    rules = [(action, queues[action].pop(0)) for action in order if queues[action]]
    return rules + [("keep", v) for v in queues["keep"]] + [("drop", v) for v in queues["drop"]]


@click.command("select", cls=_InOrder)
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--keep", multiple=True, metavar="REGEX", callback=regex_list,
              help="Keep the tensors whose key matches REGEX (repeatable; applied in order with --drop).")
@click.option("--drop", multiple=True, metavar="REGEX", callback=regex_list,
              help="Drop the tensors whose key matches REGEX (repeatable; applied in order with --keep).")
@click.option("--root", metavar="PREFIX",
              help="Keep only the tensors under block PREFIX and make it the root (strip 'PREFIX.').")
@write_options
@output_options
def select(file: str, keep: tuple[str, ...], drop: tuple[str, ...], root: str | None, target: Target,
           out: Output) -> None:
    """Keep or drop tensors by regex, or make a sub-block the root.

    Rules apply in the order given: starting from every tensor (or from none, when the
    first rule is --keep), --keep adds the keys its regex matches (re.search) and --drop
    removes them. --root first keeps only the keys under PREFIX and strips it (the rules
    then see the stripped keys). Tensors are copied bit for bit. The architecture
    follows when whole blocks are kept (the sub-block's node, or blocks removed from a
    sequential container), the graph when it uses no dropped tensor; otherwise a note
    says which was left out.

    \b
    Examples:
      modelsurgeon select model.h5 -o backbone.h5 --root features
      modelsurgeon select model.safetensors -o no-head.safetensors --drop '^(fc|classifier)\\.'
      modelsurgeon select model.pt -o enc.pt --keep '^encoder\\.' --drop 'position_ids'
    """
    ctx = click.get_current_context()
    rules = in_order(ctx.meta.get("select.order", []), keep, drop)
    if not rules and root is None:
        raise click.UsageError("give --keep, --drop or --root")
    with binding.open_checkpoint(file) as reader:
        plan = selection.plan_select(reader, rules, root)
        dest = target.destination(plan, reader)
        details: dict[str, Any] = plan.details
        if out.reports:
            out.line(f"kept {len(details['kept'])} of {len(reader.tensors)} tensors"
                     + (f" under '{details['root']}' (now the root)" if details["root"] else ""))
            for key in details["dropped"]:
                out.line(f"  - {key}")
        notes = list(plan.notes)
        if dest is not None and not target.dry_run:
            notes = target.write(out, plan, dest)
    finish(out, "select", {"input": file, **details}, notes, target)


command = select
