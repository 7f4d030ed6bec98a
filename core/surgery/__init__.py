"""Surgery: every operation builds a :class:`~.plan.Plan` (validated first, nothing written), and
:func:`~.plan.apply` writes any plan to any destination.

Modules: :mod:`.plan` (plan, sources, destinations, the output policy, apply), :mod:`.rules` and
:mod:`.rename` (rename keys), :mod:`.head` (replace the head), :mod:`.convert` (key schemes),
:mod:`.diff` (compare, find renames), :mod:`.cast` (dtypes), :mod:`.select` (keep, drop, a sub-tree),
:mod:`.average` (checkpoint means), :mod:`.adapt` (input channels), :mod:`.embedding` (vocabulary
size), :mod:`.fit` (fit a checkpoint to a target's keys).
"""

from .adapt import plan_adapt_input
from .average import plan_average
from .cast import cast_plan, check_storable
from .convert import plan_convert, plan_to_named, plan_to_structural
from .diff import DiffResult, comparable_keys, diff, find_renames
from .embedding import plan_resize_embedding
from .fit import fit_mapping, plan_fit, resolve_target
from .head import HEAD_INITS, Head, find_head, plan_replace_head, structural_keys
from .plan import (
                   Combine,
                   Copy,
                   Destination,
                   New,
                   Plan,
                   Source,
                   Transform,
                   apply,
                   carried_metadata,
                   check,
                   check_paths,
                   destination,
                   outputs,
)
from .rename import plan_rename, rename_architecture
from .rules import Rule, parse_rule, parse_rule_file, prefix_rules, rule
from .select import plan_select

__all__ = [
                   "HEAD_INITS",
                   "Combine",
                   "Copy",
                   "Destination",
                   "DiffResult",
                   "Head",
                   "New",
                   "Plan",
                   "Rule",
                   "Source",
                   "Transform",
                   "apply",
                   "carried_metadata",
                   "cast_plan",
                   "check",
                   "check_paths",
                   "check_storable",
                   "comparable_keys",
                   "destination",
                   "diff",
                   "find_head",
                   "find_renames",
                   "fit_mapping",
                   "outputs",
                   "parse_rule",
                   "parse_rule_file",
                   "plan_adapt_input",
                   "plan_average",
                   "plan_convert",
                   "plan_fit",
                   "plan_rename",
                   "plan_replace_head",
                   "plan_resize_embedding",
                   "plan_select",
                   "plan_to_named",
                   "plan_to_structural",
                   "prefix_rules",
                   "rename_architecture",
                   "resolve_target",
                   "rule",
                   "structural_keys",
]
