"""``modelsurgeon rename``: rename keys with regex rules and prefixes."""

from __future__ import annotations

import click

from modelsurgeon.core import binding, surgery
from modelsurgeon.core.errors import InputNotFoundError, SurgeryError
from modelsurgeon.core.formats.h5 import rename_in_place

from ..options import member_option, output_options, reader_options
from ..output import Output
from ..target import Target, finish, write_options


def _rules(ctx: click.Context, param: click.Parameter, texts: tuple[str, ...]) -> list[surgery.Rule]:
    """Click callback: each --map parsed, or a usage error naming the bad rule."""
    try:
        return [surgery.parse_rule(text) for text in texts]
    except SurgeryError as exc:
        raise click.BadParameter(str(exc)) from None


_rules.bad_example = "no-equals-sign"  # type: ignore[attr-defined]


@click.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--map", "maps", multiple=True, metavar="REGEX=REPLACEMENT", callback=_rules,
              help="Rename rule, applied in order to every key (re.sub; \\1 for groups). Repeatable.")
@click.option("--map-file", type=click.Path(dir_okay=False),
              help="Rules from a file: one REGEX=REPLACEMENT a line (# comments), or JSON {regex: repl}.")
@click.option("--strip-prefix", multiple=True, metavar="PREFIX", help="Remove PREFIX where a key starts with it.")
@click.option("--add-prefix", multiple=True, metavar="PREFIX", help="Put PREFIX before every key.")
@click.option("--strict", is_flag=True, help="Fail if a rule matches no key.")
@click.option("--in-place", is_flag=True,
              help="Rename inside FILE itself (modelsurgeon HDF5 only; no data is rewritten).")
@click.option("--drop-architecture", is_flag=True,
              help="Write the renamed keys without the architecture when it cannot follow the rename.")
@write_options
@member_option
@output_options
def rename(file: str, maps: list[surgery.Rule], map_file: str | None, strip_prefix: tuple[str, ...],
           add_prefix: tuple[str, ...], strict: bool, in_place: bool, drop_architecture: bool, target: Target,
           member: str | None, out: Output) -> None:
    """Rename keys with regex rules and prefixes; show old -> new.

    Two keys becoming one, an empty path segment, or (with --strict) a rule that
    matches nothing is an error listing the offenders, and nothing is written. The
    architecture (structural files) and graph (name-keyed files) follow the rename,
    so the result still loads and runs.

    \b
    Examples:
      modelsurgeon rename model.h5 -o clean.h5 --strip-prefix module.
      modelsurgeon rename model.h5 -o out.h5 --map '^output\\.=classifier.' --dry-run
      modelsurgeon rename model.h5 --in-place --map-file renames.txt
    """
    rules = list(maps)
    if map_file is not None:
        try:
            with open(map_file, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise InputNotFoundError(map_file, "no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {map_file}: {exc}", param_hint="'--map-file'") from None
        try:
            rules += surgery.parse_rule_file(text, map_file)
        except SurgeryError as exc:
            raise click.BadParameter(str(exc), param_hint="'--map-file'") from None
    rules += surgery.prefix_rules(strip_prefix, add_prefix)
    if not rules:
        raise click.UsageError("give at least one rule: --map, --map-file, --strip-prefix or --add-prefix")
    if in_place and target.output is not None:
        raise click.UsageError("--in-place and -o/--output exclude each other")
    with binding.open_checkpoint(file, reader_options(member)) as reader:
        if in_place and reader.format != "modelsurgeon-h5":
            raise SurgeryError(f"--in-place works on modelsurgeon HDF5 files; {file} is {reader.format}: use -o")
        plan = surgery.plan_rename(reader, rules, strict=strict, drop_architecture=drop_architecture)
        try:
            dest = None if in_place else target.destination(plan, reader)
        except SurgeryError as exc:
            if "is the input" in str(exc):
                raise SurgeryError(f"{exc} (rename also has --in-place)") from None
            raise
        changes = [(c["old"], c["new"]) for c in plan.details["changes"]]
        if out.reports:
            out.table(["old", "new"], changes)
        notes = list(plan.notes)
        if dest is not None and not target.dry_run:
            notes = target.write(out, plan, dest)
    if in_place and not target.dry_run:
        mapping = {i.key: info.key for i, (info, _) in zip(reader.tensors.values(), plan.tensors)}
        how = rename_in_place(file, mapping, architecture=plan.documents.architecture, graph=plan.documents.graph)
        if how == "in place":
            notes.append("renamed inside the file (this file system cannot clone files, so the rename was not "
                         "atomic; -o writes atomically)")
        target.output = file
    finish(out, "rename", {"input": file, "kind": reader.kind, "in_place": in_place, **plan.details}, notes, target)


command = rename
