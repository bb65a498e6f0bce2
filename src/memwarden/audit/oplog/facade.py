"""``@logged``: one decorator puts a facade method in the operation log.

The decorated method's owner has an ``oplog`` attribute; once its ``_closed`` is set (from
the start of ``Memwarden.close``) every call is refused with ``ClosedError``. When the
allowlist leaves the action out, the call costs two attribute reads and a set lookup.
Otherwise the call's bound arguments are the request and its result the response (both
normalised by the writer unless raw mode is on), the project comes from the arguments or else
from the result, and an operation called from inside another logged one is part of it, not
logged again.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar, cast

from memwarden.errors import ClosedError

F = TypeVar("F", bound=Callable[..., Any])

_inside: ContextVar[bool] = ContextVar("memwarden_oplog_inside", default=False)
# Every action a decorated method is logged as, filled in as the classes are defined: what
# MEMWARDEN_OPLOG_ACTIONS is checked against.
_actions: set[str] = set()


def known_actions() -> frozenset[str]:
    """The actions of every ``@logged``/``@logged_as`` method defined so far."""
    return frozenset(_actions)


def logged(method: F) -> F:
    """Log every call of ``method`` under its own name."""
    return logged_as(method.__name__)(method)


def logged_as(action: str, *, project_arg: str = "project") -> Callable[[F], F]:
    """Log every call of the decorated method as ``action``; its ``project_arg`` argument
    names the project."""

    _actions.add(action)

    def decorate(method: F) -> F:
        binder = _Binder(inspect.signature(method))

        @functools.wraps(method)
        def wrapper(owner: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(owner, "_closed", False):
                # From the start of ``close``: the operation log closes before the store, and a
                # call between the two would commit with its record dropped.
                raise ClosedError()
            oplog = owner.oplog
            if not (oplog.all_actions or action in oplog.actions) or _inside.get():
                return method(owner, *args, **kwargs)
            request = binder.bind(args, kwargs)
            project = request.get(project_arg)
            project = project if isinstance(project, str) else None
            token = _inside.set(True)
            try:
                with oplog.timed(action, project=project, request=request) as op:
                    result = method(owner, *args, **kwargs)
                    op.response = result
                    if project is None:
                        op.project = project_of(result)
                return result
            finally:
                _inside.reset(token)

        wrapper.oplog_action = action  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


class _Binder:
    """The call's arguments by name, defaults filled in: ``inspect.Signature.bind`` does the
    same at several times the cost, on the caller's path."""

    def __init__(self, signature: inspect.Signature) -> None:
        kinds = inspect.Parameter
        params = list(signature.parameters.values())[1:]  # the owner itself is not asked
        self.positional = [
            p.name for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
        ]
        self.defaults = {
            p.name: p.default
            for p in params
            if p.default is not p.empty and p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)
        }
        self.named = {
            p.name for p in params if p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)
        }
        self.var_positional = next((p.name for p in params if p.kind is kinds.VAR_POSITIONAL), None)
        self.var_keyword = next((p.name for p in params if p.kind is kinds.VAR_KEYWORD), None)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        request = dict(self.defaults)
        request.update(zip(self.positional, args, strict=False))
        if self.var_positional is not None:
            request[self.var_positional] = args[len(self.positional) :]
        if self.var_keyword is None:
            request.update(kwargs)
        else:
            extra = {}
            for name, value in kwargs.items():
                if name in self.named:
                    request[name] = value
                else:
                    extra[name] = value
            request[self.var_keyword] = extra
        return request


def project_of(result: Any) -> str | None:
    """The project a result belongs to: its own, its memory's, or its items' when they agree."""
    if isinstance(result, tuple | list):
        found = {project_of(item) for item in result[:100]}
        return found.pop() if len(found) == 1 else None
    project = getattr(result, "project", None)
    if project is None:
        project = getattr(getattr(result, "memory", None), "project", None)
    return project if isinstance(project, str) else None
