"""Commands that write: rename, replace-head, convert, zoo."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import click
import numpy as np

from modelsurgeon.core import checkpoint, surgery
from modelsurgeon.core.errors import ModelSurgeonError, SurgeryError
from modelsurgeon.core.formats.base import NAMED, STRUCTURAL, CheckpointReader, TensorInfo
from modelsurgeon.core.errors import OutputExistsError
from modelsurgeon.core.formats.extents import Locate
from modelsurgeon.core.rewrite import (OUTPUT_FORMATS, format_for_path, parse_size, reader_source,
                                       write_checkpoint, write_sharded_checkpoint)

from .commands_read import parse_shape
from .main import cli, output_options
from .output import Output, shape_text


@dataclass
class Target:
    """Where and how a command writes: -o/--output, --force, --dry-run, --format, --max-shard-size."""

    output: str | None
    force: bool
    dry_run: bool
    fmt: str | None
    max_shard_size: int | None

    @property
    def format(self) -> str:
        return format_for_path(self.output or "", self.fmt)

    def check(self, inputs: list[str]) -> None:
        """Refuse, before any work, an output that is missing, is an input, or exists without --force."""
        if self.dry_run:
            return
        if self.output is None:
            raise click.UsageError("give -o/--output (or --dry-run to only see the plan)")
        target = os.path.abspath(self.output)
        for path in inputs:
            if os.path.abspath(path) == target or (os.path.exists(self.output) and os.path.exists(path)
                                                   and os.path.samefile(path, self.output)):
                raise SurgeryError(f"the output {self.output} is the input; write elsewhere "
                                   "(rename also has --in-place)")
        if self.max_shard_size is None and os.path.exists(self.output) and not self.force:
            raise OutputExistsError(f"{self.output} already exists (use --force to overwrite it)")

    def write(self, out: Output, kind: str, infos: list[TensorInfo], fetch: Callable[[TensorInfo], np.ndarray], *,
              architecture: Any, graph: Any, metadata: dict[str, str], locate: Locate | None = None) -> list[str]:
        """Write (streaming, atomically; sharded with --max-shard-size); returns notes.

        ``locate`` lets unchanged input tensors be copied by the kernel (see rewrite.reader_source).
        """
        assert self.output is not None  # check() ran first
        total = sum(i.nbytes for i in infos if i.alias_of is None)
        with out.progress(f"writing {os.path.basename(self.output)}", total) as progress:
            if self.max_shard_size is not None:
                index, notes = write_sharded_checkpoint(self.output, self.format, kind, infos, fetch,
                                                        max_shard_size=self.max_shard_size,
                                                        architecture=architecture, graph=graph, metadata=metadata,
                                                        progress=progress, overwrite=self.force, locate=locate)
                self.output = index  # what the command reports having written
                return notes
            return write_checkpoint(self.output, self.format, kind, infos, fetch, architecture=architecture,
                                    graph=graph, metadata=metadata, progress=progress, overwrite=self.force,
                                    locate=locate)


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except ModelSurgeonError as exc:
        raise click.BadParameter(str(exc)) from None


def write_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The output options every writing command shares; the command receives ``target: Target``."""

    @click.option("-o", "--output", type=click.Path(), help="Where to write the result.")
    @click.option("--force", is_flag=True, help="Overwrite the output if it exists.")
    @click.option("--dry-run", is_flag=True, help="Show the planned changes; write nothing.")
    @click.option("--format", "fmt", type=click.Choice(OUTPUT_FORMATS),
                  help="Output format (default: from the output's extension: .safetensors, .params, .npz; else h5).")
    @click.option("--max-shard-size", callback=_size, metavar="SIZE",
                  help="Split the output into shards of at most SIZE (e.g. 2GB) plus an index file.")
    @functools.wraps(command)
    def wrapper(*args: Any, output: str | None, force: bool, dry_run: bool, fmt: str | None,
                max_shard_size: int | None, **kwargs: Any) -> Any:
        return command(*args, target=Target(output, force, dry_run, fmt, max_shard_size), **kwargs)

    return wrapper


def _carried_metadata(reader: CheckpointReader) -> dict[str, str]:
    from modelsurgeon.core.rewrite import ST_ARCHITECTURE, ST_GRAPH, ST_KIND
    return {k: v for k, v in reader.metadata.items() if k not in (ST_ARCHITECTURE, ST_GRAPH, ST_KIND, "graph_file")}


def _finish(out: Output, command: str, document: dict[str, Any], notes: list[str], output: str | None,
            dry_run: bool) -> None:
    document.update({"output": None if dry_run else output, "dry_run": dry_run, "notes": notes})
    if out.json:
        out.emit(command, document)
        return
    for note in notes:
        out.note(f"note: {note}")
    out.note("dry run: nothing was written" if dry_run else f"wrote {output}")


# -- rename -------------------------------------------------------------------------------------

@cli.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--map", "maps", multiple=True, metavar="REGEX=REPLACEMENT",
              help="Rename rule, applied in order to every key (re.sub; \\1 for groups). Repeatable.")
@click.option("--map-file", type=click.Path(dir_okay=False),
              help="Rules from a file: one REGEX=REPLACEMENT a line (# comments), or JSON {regex: repl}.")
@click.option("--strip-prefix", multiple=True, metavar="PREFIX", help="Remove PREFIX where a key starts with it.")
@click.option("--add-prefix", multiple=True, metavar="PREFIX", help="Put PREFIX before every key.")
@click.option("--strict", is_flag=True, help="Fail if a rule matches no key.")
@click.option("--in-place", is_flag=True, help="Rename inside FILE itself (modelsurgeon HDF5 only; no data is rewritten).")
@click.option("--drop-architecture", is_flag=True,
              help="Write the renamed keys without the architecture when it cannot follow the rename.")
@write_options
@output_options
def rename(file: str, maps: tuple[str, ...], map_file: str | None, strip_prefix: tuple[str, ...],
           add_prefix: tuple[str, ...], strict: bool, in_place: bool, drop_architecture: bool, target: Target,
           out: Output) -> None:
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
    rules = [surgery.parse_rule(m) for m in maps]
    if map_file is not None:
        try:
            with open(map_file, encoding="utf-8") as handle:
                rules += surgery.parse_rule_file(handle.read(), map_file)
        except FileNotFoundError:
            from modelsurgeon.core.errors import InputNotFoundError
            raise InputNotFoundError(map_file, "no such file") from None
    rules += surgery.prefix_rules(strip_prefix, add_prefix)
    if in_place and target.output is not None:
        raise click.UsageError("--in-place and -o/--output exclude each other")
    if not in_place:
        target.check([file])
    with checkpoint.open_checkpoint(file) as reader:
        if in_place and reader.format != "modelsurgeon-h5":
            raise SurgeryError(f"--in-place works on modelsurgeon HDF5 files; {file} is {reader.format}: use -o")
        plan = surgery.plan_rename(reader, rules, strict=strict, drop_architecture=drop_architecture)
        changes = plan.changes
        notes = list(plan.notes)
        if plan.unused_rules:
            notes.append(f"{len(plan.unused_rules)} rule(s) matched nothing: {', '.join(plan.unused_rules)}")
        if out.reports:
            out.table(["old", "new"], changes)
        if not target.dry_run and not in_place:
            mapping = plan.mapping
            infos = [TensorInfo(mapping[i.key], i.shape, i.dtype, i.role, i.structural,
                                mapping[i.alias_of] if i.alias_of else None) for i in reader.tensors.values()]
            fetch, locate = reader_source(reader, {mapping[k]: k for k in reader.tensors}.__getitem__)
            notes += target.write(out, reader.kind, infos, fetch, locate=locate, architecture=plan.architecture,
                                  graph=plan.graph, metadata=_carried_metadata(reader))
    if in_place and not target.dry_run:
        from modelsurgeon.core.formats.h5 import rename_in_place
        how = rename_in_place(file, plan.mapping, architecture=plan.architecture, graph=plan.graph)
        if how == "in place":
            notes.append("renamed inside the file (this file system cannot clone files, so the rename was not "
                         "atomic; -o writes atomically)")
    _finish(out, "rename", {"input": file, "kind": reader.kind, "in_place": in_place,
                            "changes": [{"old": o, "new": n} for o, n in changes],
                            "architecture_kept": plan.architecture is not None if reader.architecture else None},
            notes, file if in_place else target.output, target.dry_run)


# -- replace-head -------------------------------------------------------------------------------

def _parse_classes(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.UsageError(f"--keep-classes takes comma-separated integers, not {text!r}") from None


@cli.command("replace-head")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--classes", type=int, help="Number of outputs of the new head.")
@click.option("--head", metavar="PATH", help="Block path of the head (default: 'output', else the last dense layer).")
@click.option("--init", "init", type=click.Choice(list(surgery.HEAD_INITS)), default="xavier", show_default=True,
              help="How to initialise the new head: " + "; ".join(f"{k}: {v}" for k, v in surgery.HEAD_INITS.items()))
@click.option("--seed", type=int, help="Seed for the initialisation (reproducible output).")
@click.option("--keep-classes", metavar="I,J,...", help="Copy these rows of the old head, in this order, to the first rows.")
@write_options
@output_options
def replace_head(file: str, classes: int | None, head: str | None, init: str, seed: int | None,
                 keep_classes: str | None, target: Target, out: Output) -> None:
    """Replace the classification head with one of --classes outputs.

    Finds the head (--head; else the zoo's 'output'; else the last dense layer) and
    replaces it in kind: a dense head by a dense layer, a convolution head (such as
    SqueezeNet's output.0) by a convolution, with the same input size. Every other
    tensor is copied bit for bit; the architecture and graph are updated to match.

    \b
    Examples:
      modelsurgeon replace-head sample_models/cnn.h5 -o cnn10.h5 --classes 10 --seed 0
      modelsurgeon replace-head alexnet.h5 -o a3.h5 --keep-classes 3,7,9 --init torch
    """
    target.check([file])
    with checkpoint.open_checkpoint(file) as reader:
        plan = surgery.plan_replace_head(reader, classes, head=head, init=init, seed=seed,
                                         keep_classes=_parse_classes(keep_classes))
        h = plan.head
        if out.reports:
            out.line(f"head: {h.path} ({h.kind}), {plan.old_classes} -> {plan.classes} classes; chosen as {h.reason}")
            for key, array in plan.tensors.items():
                out.line(f"  {key}: {shape_text(reader.tensors[key].shape)} -> {shape_text(array.shape)} ({init})")
        notes: list[str] = []
        if not target.dry_run:
            infos = [TensorInfo(i.key, plan.tensors[i.key].shape, i.dtype, i.role, i.structural, i.alias_of)
                     if i.key in plan.tensors else i for i in reader.tensors.values()]
            fetch, locate = reader_source(reader, new=plan.tensors)
            metadata = {**_carried_metadata(reader), "modelsurgeon.head": h.path,
                        "modelsurgeon.head_init": init if seed is None else f"{init} seed={seed}"}
            notes = target.write(out, reader.kind, infos, fetch, locate=locate, architecture=plan.architecture,
                                 graph=plan.graph, metadata=metadata)
        if reader.architecture is not None and plan.architecture is None:
            notes.append("the architecture could not follow the new head and was left out")
    _finish(out, "replace-head", {"input": file, "head": {"path": h.path, "kind": h.kind, "weight": h.weight,
                                                          "bias": h.bias, "reason": h.reason},
                                  "old_classes": plan.old_classes, "classes": plan.classes, "init": init,
                                  "seed": seed, "kept_classes": plan.kept}, notes, target.output, target.dry_run)


# -- convert ------------------------------------------------------------------------------------

@cli.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--to", "to", type=click.Choice([STRUCTURAL, NAMED]),
              help="Key scheme of the output (default: the input's).")
@click.option("--model", "model_name", metavar="ZOO_NAME",
              help="Zoo model to trace (structural -> named without an architecture) or to align a graph with.")
@click.option("--input-shape", metavar="SHAPE", help="Input shape for tracing, e.g. 1,3,224,224.")
@write_options
@output_options
def convert(file: str, to: str | None, model_name: str | None, input_shape: str | None, target: Target,
            out: Output) -> None:
    """Convert between key schemes (structural <-> named) and file formats.

    Structural -> named traces the model (embedded architecture, or --model) and keys
    each tensor by its unique name. Named -> structural uses the recorded structural
    names, or aligns the graph with --model's traced graph by operator order, type and
    shape, reporting any ambiguity instead of guessing. Streams tensor by tensor.

    \b
    Examples:
      modelsurgeon convert sample_models/cnn.h5 -o cnn-named.h5 --to named
      modelsurgeon convert resnet18_v1-0000.params -o r18.h5 --to structural --model resnet18_v1
      modelsurgeon convert sample_models/cnn.h5 -o cnn.safetensors
    """
    target.check([file])
    with checkpoint.open_checkpoint(file) as reader:
        kind = to or reader.kind
        model = _zoo_model(model_name, reader) if model_name else None
        shape = parse_shape(input_shape) if input_shape else None
        if kind == reader.kind and model is None:
            plan = surgery.ConvertPlan(reader.kind, list(reader.tensors.values()), {k: k for k in reader.tensors},
                                       reader.architecture, reader.graph)
        elif kind == NAMED:
            plan = surgery.plan_to_named(reader, model, shape)
        else:
            plan = surgery.plan_to_structural(reader, model, shape)
        notes = list(plan.notes)
        if out.reports and plan.kind != reader.kind:
            out.table(["from", "to"], [(plan.source[i.key], i.key) for i in plan.infos])
        if not target.dry_run:
            fetch, locate = reader_source(reader, plan.source.__getitem__)
            notes += target.write(out, plan.kind, plan.infos, fetch, locate=locate, architecture=plan.architecture,
                                  graph=plan.graph, metadata=_carried_metadata(reader))
    _finish(out, "convert", {"input": file, "from": {"format": reader.format, "kind": reader.kind},
                             "to": {"format": target.format, "kind": plan.kind}, "tensors": len(plan.infos),
                             "mapping": [{"from": plan.source[i.key], "to": i.key} for i in plan.infos]},
            notes, target.output, target.dry_run)


def _zoo_model(name: str, reader: CheckpointReader) -> Any:
    from modelsurgeon.core.engine.model_zoo import vision
    try:  # the zoo model gets as many classes as the file's head has
        classes = reader.tensors[surgery.find_head(reader).weight].shape[0]
    except ModelSurgeonError:
        classes = 1000
    return vision.get_model(name, classes=classes)


# -- zoo ----------------------------------------------------------------------------------------

@cli.command()
@click.argument("name", required=False)
@click.option("--classes", type=click.IntRange(1), default=1000, show_default=True, help="Number of output classes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the random initialisation.")
@click.option("--list", "list_models", is_flag=True, help="List the model names.")
@write_options
@output_options
def zoo(name: str | None, classes: int, seed: int, list_models: bool, target: Target, out: Output) -> None:
    """Write a randomly initialised model-zoo checkpoint (with its architecture).

    \b
    Examples:
      modelsurgeon zoo --list
      modelsurgeon zoo resnet18_v1 -o resnet18.h5 --classes 10 --seed 0
    """
    from modelsurgeon.core.engine import initializer, random
    from modelsurgeon.core.engine.model_zoo import vision
    if list_models or name is None:
        if name is None and not list_models:
            raise click.UsageError("give a model NAME (see --list)")
        if out.json:
            out.emit("zoo", {"models": vision.model_names()})
        else:
            for model_name in vision.model_names():
                out.line(model_name)
        return
    target.check([])
    net = vision.get_model(name, classes=classes)
    random.seed(seed)
    net.initialize(initializer.Xavier())
    net(np.zeros((1, *vision.INPUT_SHAPE), np.float32))
    infos, params = checkpoint.parameter_infos(net)
    from modelsurgeon.core.engine import architecture
    notes: list[str] = []
    if not target.dry_run:
        notes = target.write(out, STRUCTURAL, infos, lambda i: params[i.key].data(),
                             architecture=architecture.describe(net), graph=None,
                             metadata={"modelsurgeon.zoo": f"{name} classes={classes} seed={seed}"})
    _finish(out, "zoo", {"model": name, "classes": classes, "seed": seed, "tensors": len(infos),
                         "parameters": sum(i.size for i in infos if i.alias_of is None)}, notes, target.output,
            target.dry_run)
