"""``modelsurgeon resize-embedding``: trim or grow an embedding (vocabulary) matrix and its tied head."""

from __future__ import annotations

import click

from modelsurgeon.core import binding
from modelsurgeon.core.surgery import embedding

from ..options import output_options
from ..output import Output, shape_text
from ..target import Target, finish, write_options


@click.command("resize-embedding")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--key", required=True, metavar="KEY", help="The embedding matrix (one row per token).")
@click.option("--rows", required=True, type=click.IntRange(min=1), help="The new number of rows (vocabulary size).")
@click.option("--init", "init", type=click.Choice(list(embedding.EMBEDDING_INITS)), default="mean", show_default=True,
              help="New rows: " + "; ".join(f"{k}: {v}" for k, v in embedding.EMBEDDING_INITS.items()))
@click.option("--seed", type=int, help="Seed for --init normal (reproducible output).")
@click.option("--no-heads", is_flag=True, help="Do not resize output heads of the same vocabulary (tied tensors "
              "always follow).")
@write_options
@output_options
def resize_embedding(file: str, key: str, rows: int, init: str, seed: int | None, no_heads: bool, target: Target,
                     out: Output) -> None:
    """Trim or grow an embedding matrix to --rows rows (a new vocabulary size).

    Existing rows stay bit-identical; new rows default to the mean of the old rows.
    A head tied to the embedding, and output heads of the same vocabulary (same shape,
    or a bias with one value per row, named like lm_head/decoder/predictions/output),
    are resized too and reported. A Hugging Face folder's config.json gets the new
    vocab_size; the architecture or graph follows where it records the size.

    \b
    Examples:
      modelsurgeon resize-embedding gpt2/ -o gpt2-more/ --key transformer.wte.weight --rows 50260
      modelsurgeon resize-embedding bert.pt -o b.pt --key bert.embeddings.word_embeddings.weight --rows 30000
    """
    with binding.open_checkpoint(file) as reader:
        plan = embedding.plan_resize_embedding(reader, key, rows, init=init, seed=seed, heads=not no_heads)
        dest = target.destination(plan, reader)
        details = plan.details
        if out.reports:
            out.line(f"{key}: {details['old_rows']} -> {rows} rows ({init if rows > details['old_rows'] else 'trim'})")
            for item in details["resized"][1:]:
                why = "tied" if item["key"] in details["tied"] else "matching head"
                out.line(f"  {item['key']}: {shape_text(item['old_shape'])} -> {shape_text(item['new_shape'])} ({why})")
            if details["config_vocab_size"] is not None:
                out.line(f"  config.json: vocab_size = {rows}")
        notes = list(plan.notes)
        if dest is not None and not target.dry_run:
            notes = target.write(out, plan, dest)
    finish(out, "resize-embedding", {"input": file, **details}, notes, target)


command = resize_embedding
