"""Rename rules: regular expressions applied in order to every key, and prefix shortcuts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import SurgeryError


@dataclass(frozen=True)
class Rule:
    """One rename rule: ``re.sub(pattern, replacement, key)`` (every match, like mmengine)."""

    pattern: re.Pattern[str]
    replacement: str
    text: str


def rule(pattern: str, replacement: str, text: str | None = None) -> Rule:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise SurgeryError(f"bad regular expression {pattern!r}: {exc}") from None
    return Rule(compiled, replacement, text or f"{pattern}={replacement}")


def parse_rule(text: str) -> Rule:
    """``'REGEX=REPLACEMENT'``; a literal ``=`` in the regex is written ``\\=``."""
    match_ = re.search(r"(?<!\\)=", text)
    if match_ is None:
        raise SurgeryError(f"rename rule {text!r} has no '=' (expected REGEX=REPLACEMENT)")
    pattern = text[:match_.start()].replace("\\=", "=")
    if not pattern:
        raise SurgeryError(f"rename rule {text!r} has an empty pattern")
    return rule(pattern, text[match_.end():], text)


def parse_rule_file(content: str, source: str = "map file") -> list[Rule]:
    """Rules from JSON (``{"regex": "repl"}``, ``[["regex", "repl"], ...]``) or lines ``REGEX=REPL``."""
    stripped = content.strip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise SurgeryError(f"{source} is not valid JSON: {exc}") from None
        pairs = list(data.items()) if isinstance(data, dict) else data
        rules = []
        for pair in pairs:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise SurgeryError(f"{source}: each rule must be a [regex, replacement] pair of strings")
            rules.append(rule(pair[0], pair[1]))
        return rules
    return [parse_rule(line.strip()) for line in content.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def prefix_rules(strip: list[str] | tuple[str, ...] = (), add: list[str] | tuple[str, ...] = ()) -> list[Rule]:
    """``--strip-prefix P`` removes P where a key starts with it; ``--add-prefix P`` prepends P."""
    rules = [rule("^" + re.escape(p), "", f"strip prefix {p!r}") for p in strip]
    rules += [rule("^", p.replace("\\", "\\\\"), f"add prefix {p!r}") for p in add]
    return rules
