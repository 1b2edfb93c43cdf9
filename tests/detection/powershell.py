"""Reading PowerShell through its parse tree (tree-sitter-powershell): a syntax check and the facts
a parse tree shows without running anything. No PowerShell interpreter is obtainable here, so this
is what can be checked of the scripts we ship: which functions call what, which strings they emit,
which exit codes they can end with.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

_PARSER = Parser(Language(tree_sitter_powershell.language()))
_WRAPPERS = re.compile(r"\s+")


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from walk(child)


@dataclass
class Script:
    text: str

    @cached_property
    def source(self) -> bytes:
        return self.text.encode("utf-8")

    @cached_property
    def root(self) -> Node:
        return _PARSER.parse(self.source).root_node

    def span(self, node: Node) -> str:
        return self.source[node.start_byte : node.end_byte].decode("utf-8")

    def errors(self) -> list[str]:
        """``line N: text`` of every ERROR or missing node (a syntax error)."""
        return [
            f"line {n.start_point[0] + 1}: {self.span(n)[:80]!r}"
            for n in walk(self.root)
            if n.type == "ERROR" or n.is_missing
        ]

    # --- functions -------------------------------------------------------------------------------

    @cached_property
    def functions(self) -> dict[str, Node]:
        """Function name (lower case) -> its function_statement."""
        found: dict[str, Node] = {}
        for node in walk(self.root):
            if node.type == "function_statement":
                name = next(c for c in node.children if c.type == "function_name")
                found[self.span(name).lower()] = node
        return found

    def commands(self, node: Node) -> Iterator[Node]:
        return (n for n in walk(node) if n.type == "command")

    def command_name(self, command: Node) -> str:
        name = next((c for c in command.children if c.type == "command_name"), None)
        return self.span(name) if name is not None else ""

    def closure(self, names: list[str]) -> list[Node]:
        """The named functions and every script function they call, transitively."""
        seen: dict[str, Node] = {}
        pending = [n.lower() for n in names]
        while pending:
            name = pending.pop()
            if name in seen or name not in self.functions:
                continue
            seen[name] = self.functions[name]
            pending += [self.command_name(c).lower() for c in self.commands(seen[name])]
        return list(seen.values())

    # --- what code calls -------------------------------------------------------------------------

    def calls(self, nodes: list[Node]) -> set[str]:
        """Commands, ``New-Object <type>``, ``New-Object -ComObject <progid>``, ``[Type]::Member``
        (called or read) and ``.Method`` (called), as written."""
        found: set[str] = set()
        for top in nodes:
            for node in walk(top):
                if node.type == "command":
                    found |= self._command_calls(node)
                elif node.type in ("invokation_expression", "member_access"):
                    kids = node.children
                    if len(kids) >= 3 and kids[0].type == "type_literal" and kids[1].type == "::":
                        found.add(f"{self.span(kids[0])}::{self.span(kids[2])}")
                    elif node.type == "invokation_expression":
                        for first, second in itertools.pairwise(kids):
                            if first.type == "." and second.type == "member_name":
                                found.add(f".{self.span(second)}")
        return found

    def _command_calls(self, command: Node) -> set[str]:
        name = self.command_name(command)
        found = {name}
        if name.lower() != "new-object":
            return found
        elements = next((c for c in command.children if c.type == "command_elements"), None)
        parts = [
            c for c in (elements.children if elements else []) if c.type != "command_argument_sep"
        ]
        for index, part in enumerate(parts):
            text = self.span(part)
            if part.type == "command_parameter":
                if text.lower() == "-comobject" and index + 1 < len(parts):
                    found.add(f"New-Object -ComObject {self.span(parts[index + 1])}")
                continue
            if part.type == "generic_token":
                found.add(f"New-Object {text}")
                break
        return found

    # --- strings ---------------------------------------------------------------------------------

    def template(self, literal: Node) -> str:
        """A string literal's text with each expansion (``$x``, ``$(...)``) as ``{}``."""
        text = self.span(literal)
        if text.startswith("'"):
            return text[1:-1].replace("''", "'")
        inner = literal.children[0] if literal.children else literal
        out, cursor = [], inner.start_byte + 1
        for child in inner.children:
            if child.type in ("variable", "sub_expression"):
                out.append(self.source[cursor : child.start_byte].decode("utf-8"))
                out.append("{}")
                cursor = child.end_byte
        out.append(self.source[cursor : inner.end_byte - 1].decode("utf-8"))
        return "".join(out)

    def literals(self, nodes: list[Node]) -> list[str]:
        return [self.template(n) for top in nodes for n in walk(top) if n.type == "string_literal"]

    def arguments(self, command: Node) -> list[Node]:
        elements = next((c for c in command.children if c.type == "command_elements"), None)
        if elements is None:
            return []
        return [c for c in elements.children if c.type not in ("command_argument_sep",)]

    def argument_literal(self, argument: Node) -> str | None:
        """The template of an argument that is a string literal (None for anything else)."""
        literal = [n for n in walk(argument) if n.type == "string_literal"]
        if len(literal) == 1 and self.span(literal[0]) == self.span(argument).strip():
            return self.template(literal[0])
        return None

    # --- control flow ----------------------------------------------------------------------------

    def switch_labels(self, function: str) -> dict[str, Node]:
        """The string labels of the first switch in a function, each with its clause."""
        node = self.functions[function.lower()]
        switch = next(n for n in walk(node) if n.type == "switch_statement")
        labels: dict[str, Node] = {}
        for clause in (n for n in walk(switch) if n.type == "switch_clause"):
            condition = next(c for c in clause.children if c.type == "switch_clause_condition")
            literal = next((n for n in walk(condition) if n.type == "string_literal"), None)
            if literal is not None:
                labels[self.template(literal)] = clause
        return labels

    def exits(self) -> list[tuple[Node, str]]:
        """Every ``exit`` statement with the text of what follows it."""
        found = []
        for node in walk(self.root):
            if node.type == "flow_control_statement" and node.children[0].type == "exit":
                found.append((node, _WRAPPERS.sub(" ", self.span(node)[4:]).strip()))
        return found

    def answered_exits(self) -> list[tuple[str, int]]:
        """(message template, exit code) for each ``exit N`` whose preceding statement in the same
        block writes a string literal: what a caller is told with each code."""
        pairs = []
        for node in walk(self.root):
            if node.type != "statement_list":
                continue
            statements = [c for c in node.children if c.type not in ("empty_statement", "comment")]
            for before, statement in itertools.pairwise(statements):
                if (
                    statement.type == "flow_control_statement"
                    and statement.children[0].type == "exit"
                ):
                    code = _WRAPPERS.sub(" ", self.span(statement)[4:]).strip()
                    messages = [
                        self.template(n) for n in walk(before) if n.type == "string_literal"
                    ]
                    if messages and code.isdigit():
                        pairs.append((messages[0], int(code)))
        return pairs

    def assignments(self) -> dict[str, str]:
        """``$Name = <text>`` at the top level of the script: variable -> right-hand side text."""
        found: dict[str, str] = {}
        statements = next(c for c in self.root.children if c.type == "statement_list")
        for statement in statements.children:
            for node in walk(statement):
                if node.type == "assignment_expression":
                    left = self.span(node.children[0]).strip()
                    found[left] = self.span(node.children[-1]).strip()
                    break
        return found
