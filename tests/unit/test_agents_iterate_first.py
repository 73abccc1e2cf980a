"""Every Faust agent iterates its stream before it awaits anything else.

Faust registers an agent's channel with the conductor when its stream is first iterated,
and maps partitions to channels when the group's assignment lands. An agent that awaited
something first (the rules topic being read) while the assignment landed got no records
of its topics until the next rebalance, and the store agent reading the same topics
acknowledged them: readings that were never evaluated, an alert never raised
(test_rules_live failed this way about 1 run in 4). Waiting belongs inside the loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

AGENTS = Path(__file__).resolve().parents[2] / "citywatch" / "agents"


def _in_order(node: ast.AST) -> list[ast.AST]:
    """The awaits and async-for loops of a function body, in source order, not descending
    into nested function definitions (they run later, when called)."""
    found: list[ast.AST] = []

    def visit(child: ast.AST) -> None:
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        if isinstance(child, ast.Await | ast.AsyncFor):
            found.append(child)
            if isinstance(child, ast.AsyncFor):
                visit(child.iter)  # what it iterates is evaluated first; the body afterwards
                return
        for grandchild in ast.iter_child_nodes(child):
            visit(grandchild)

    for statement in node.body:  # type: ignore[attr-defined]
        visit(statement)
    return found


def _uses(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _stream_consumers() -> list[tuple[str, ast.AsyncFunctionDef]]:
    """Agent bodies, and the helpers an agent hands its stream to: functions with a
    `stream` parameter."""
    found = []
    for path in sorted(AGENTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.AsyncFunctionDef) and any(a.arg == "stream" for a in node.args.args):
                found.append((f"{path.name}:{node.lineno} {node.name}", node))
    return found


def test_there_are_agents_to_check() -> None:
    names = {name.split()[-1] for name, _ in _stream_consumers()}
    assert {"detect", "evaluate", "correlate", "notify", "store", "store_deadletters",
            "archive_rules"} <= names


def test_every_agent_iterates_its_stream_before_awaiting_anything() -> None:
    for name, function in _stream_consumers():
        first = _in_order(function)[0]
        if isinstance(first, ast.AsyncFor):
            assert _uses(first.iter, "stream"), f"{name}: its first async for is not over its stream"
        else:  # handing the stream to a helper, which is checked the same way
            assert isinstance(first, ast.Await) and isinstance(first.value, ast.Call), name
            passed = [*first.value.args, *(k.value for k in first.value.keywords)]
            assert any(_uses(arg, "stream") for arg in passed), (
                f"{name}: awaits {ast.unparse(first)} before iterating its stream")
