"""Equality- and set-based label selectors, as ``kubectl -l`` writes them.

Which Deployments are experts is a label selector (default
``headroom.dev/expert=true``); this module parses and matches it without a
Kubernetes client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LabelSelector", "SelectorError"]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EQ = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")
_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)$")
_EXISTS = re.compile(rf"^(?P<neg>!?)(?P<key>{_KEY})$")


class SelectorError(ValueError):
    """The selector text cannot be parsed."""


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # "in", "notin", "exists", "!exists"
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


@dataclass(frozen=True)
class LabelSelector:
    """A parsed selector; every requirement must hold (logical AND)."""

    text: str
    requirements: tuple[_Requirement, ...]

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse ``a=b,c!=d,e in (f,g),h,!i``; raise SelectorError on nonsense."""
        requirements: list[_Requirement] = []
        for part in _split(text):
            if match := _EQ.match(part):
                op = "notin" if match["op"] == "!=" else "in"
                requirements.append(_Requirement(match["key"], op, frozenset([match["value"]])))
            elif match := _SET.match(part):
                values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
                requirements.append(_Requirement(match["key"], match["op"], values))
            elif match := _EXISTS.match(part):
                op = "!exists" if match["neg"] else "exists"
                requirements.append(_Requirement(match["key"], op, frozenset()))
            else:
                raise SelectorError(f"cannot parse label selector requirement {part!r}")
        if not requirements:
            raise SelectorError("empty label selector would select every Deployment")
        return cls(text, tuple(requirements))

    @classmethod
    def from_structured(cls, selector: Mapping[str, Any]) -> LabelSelector:
        """A ``metav1.LabelSelector`` object (``matchLabels``, ``matchExpressions``).

        An empty one matches every set of labels, as the API defines it for a
        PodDisruptionBudget; an unknown operator raises SelectorError.
        """
        requirements: list[_Requirement] = [
            _Requirement(str(key), "in", frozenset([str(value)]))
            for key, value in sorted((selector.get("matchLabels") or {}).items())
        ]
        operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
        for expression in selector.get("matchExpressions") or []:
            op = operators.get(str(expression.get("operator")))
            if op is None:
                raise SelectorError(f"unknown selector operator {expression.get('operator')!r}")
            values = frozenset(str(v) for v in expression.get("values") or [])
            requirements.append(_Requirement(str(expression["key"]), op, values))
        text = ",".join(f"{r.key} {r.op} ({','.join(sorted(r.values))})" for r in requirements)
        return cls(text, tuple(requirements))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        found = labels or {}
        return all(req.matches(found) for req in self.requirements)
