"""`depends_on` between checks: every name must exist, and no check may depend on itself through others. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def dependency_problems(deps: Mapping[str, Sequence[str]]) -> list[tuple[str, int, str]]:
    """(check, index in its depends_on, message) for each unknown name and each cycle, in file order."""
    problems: list[tuple[str, int, str]] = []
    for check, targets in deps.items():
        for j, target in enumerate(targets):
            if target == check:
                problems.append((check, j, "a check cannot depend on itself"))
            elif target not in deps:
                problems.append((check, j, f"unknown check {target!r}"))
    done: set[str] = set()
    for start in deps:
        path = _cycle(start, deps, [], done)
        if path is None:
            continue
        done.update(path)  # one error per cycle, not one per check on it
        if len(path) > 2:  # a self-reference is reported above
            check, target = path[-2], path[-1]
            problems.append((check, list(deps[check]).index(target), f"depends_on cycle: {' -> '.join(path)}"))
    return problems


def _cycle(check: str, deps: Mapping[str, Sequence[str]], path: list[str], done: set[str]) -> list[str] | None:
    """The first cycle reachable from check, as the path that closes it; depth-first."""
    if check in path:
        return [*path[path.index(check) :], check]
    if check in done or check not in deps:
        return None
    path.append(check)
    for target in deps[check]:
        if target != check and (found := _cycle(target, deps, path, done)) is not None:
            return found
    path.pop()
    done.add(check)
    return None
