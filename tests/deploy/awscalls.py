"""Find every AWS operation the controller calls, by reading its source.

Every call goes through ``AwsApi.call/call_if_exists/items/pages("service", "Operation", ...)``, so the
operations are the first two arguments of those calls. They are read from the syntax tree, not
with a regular expression, so calls split over lines, keyword arguments and module-level string
constants are all seen. A call whose service or operation cannot be worked out statically is
reported as a problem rather than ignored: the IAM test must never pass because it looked away.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import botocore.session

CALL_METHODS = frozenset({"call", "call_if_exists", "items", "pages"})


@cache
def botocore_services() -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_available_services())


@cache
def botocore_operations(service: str) -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_service_model(service).operation_names)


@dataclass
class Scan:
    """Operations found, each with where it is called; and what could not be resolved."""

    operations: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    problems: list[str] = field(default_factory=list)
    files: int = 0


def _module_constants(tree: ast.Module) -> dict[str, str]:
    constants: dict[str, str] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = value.value
    return constants


def _enclosing_functions(tree: ast.Module) -> dict[ast.AST, ast.FunctionDef | None]:
    """For each call node, the function it sits in (None at module level)."""
    owners: dict[ast.AST, ast.FunctionDef | None] = {}

    def visit(node: ast.AST, function: ast.FunctionDef | None) -> None:
        if isinstance(node, ast.FunctionDef):
            function = node
        if isinstance(node, ast.Call):
            owners[node] = function
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, None)
    return owners


def _parameters(function: ast.FunctionDef | None) -> list[str]:
    if function is None:
        return []
    args = function.args
    return [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]


def _forwarded_values(
    tree: ast.Module, function: ast.FunctionDef, parameter: str, constants: dict[str, str]
) -> list[tuple[str | None, int]]:
    """What the module passes as ``parameter`` wherever it calls ``function`` (one level deep).

    A helper such as ``self._conditional("PutItem", ...)`` that forwards its operation name to
    ``aws.call`` is followed to its call sites; each value is resolved there.
    """
    names = _parameters(function)
    position = names.index(parameter)
    is_method = bool(names) and names[0] in {"self", "cls"}
    found: list[tuple[str | None, int]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == function.name:
            index = position
        elif isinstance(func, ast.Attribute) and func.attr == function.name:
            index = position - 1 if is_method else position
        else:
            continue
        found.append((_resolve(_argument(node, index, parameter), constants), node.lineno))
    return found


def _argument(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    if len(call.args) > index and not isinstance(call.args[index], ast.Starred):
        return call.args[index]
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return None


def _resolve(node: ast.expr | None, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def scan_file(path: Path, label: str, scan: Scan) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants = _module_constants(tree)
    function_of = _enclosing_functions(tree)
    scan.files += 1
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        where = f"{label}:{node.lineno}"
        if method == "client":
            service = _resolve(_argument(node, 0, "service_name"), constants)
            if service in botocore_services():
                scan.problems.append(
                    f"{where}: a boto3 client for {service!r} outside AwsApi: its calls are "
                    "neither counted nor seen by this scan (call AwsApi instead)"
                )
            continue
        if method not in CALL_METHODS:
            continue
        service_node = _argument(node, 0, "service")
        operation_node = _argument(node, 1, "operation")
        if service_node is None or operation_node is None:
            continue  # dict.items(), list.pages()... : not the AwsApi signature
        function = function_of.get(node)
        parameters = _parameters(function)
        service = _resolve(service_node, constants)
        if service is None:
            if isinstance(service_node, ast.Name) and service_node.id in parameters:
                continue  # AwsApi forwarding its own parameters (items -> pages -> call)
            if isinstance(service_node, ast.Constant):
                continue  # a non-string first argument: not an AWS call
            scan.problems.append(f"{where}: .{method}() with a service this scan cannot resolve")
            continue
        if service not in botocore_services():
            continue  # some other .call("x", "y") API
        operations: list[tuple[str | None, str]] = []
        operation = _resolve(operation_node, constants)
        if operation is not None:
            operations.append((operation, where))
        elif (
            function is not None
            and isinstance(operation_node, ast.Name)
            and operation_node.id in parameters
        ):
            forwarded = _forwarded_values(tree, function, operation_node.id, constants)
            if not forwarded:
                scan.problems.append(
                    f"{where}: {function.name}() forwards an operation nobody passes"
                )
            operations += [(value, f"{label}:{line}") for value, line in forwarded]
        else:
            operations.append((None, where))
        for value, site in operations:
            if value is None:
                scan.problems.append(
                    f"{site}: .{method}({service!r}, ...) with an operation this scan cannot resolve"
                )
            elif value not in botocore_operations(service):
                scan.problems.append(f"{site}: {service} has no operation {value!r} in botocore")
            else:
                scan.operations[(service, value)].append(site)


def scan_package(root: Path, package: str = "controller", exclude: tuple[str, ...] = ()) -> Scan:
    scan = Scan()
    base = root / package
    for path in sorted(base.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if any(relative.startswith(prefix) for prefix in exclude):
            continue
        scan_file(path, relative, scan)
    return scan
