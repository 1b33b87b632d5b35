"""One registry mechanism for every pluggable part: models, losses, batch and image augmentations,
datasets, re-rankers and methods.

A :class:`Registry` maps names to constructors (classes or functions). Unknown names are
:class:`~vireid.errors.ConfigError` listing the valid ones; keyword arguments are checked against
the constructor's signature (names and, where annotated, types) by :meth:`Registry.check_params`,
which the config loader calls for every parameter table before any work starts.

Registration flows from the top: the core packages register their generic parts when imported;
``vireid.methods`` (imported by the command line and the Python API) registers each paper's parts.
A package outside vireid registers its own the same way (see the README's "Development" section)::

    from vireid.models import MODELS

    @MODELS.register("my_model")
    class MyModel(nn.Module): ...
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from vireid.errors import ConfigError

T = TypeVar("T", bound=Callable[..., Any])


class Registry(Generic[T]):
    """Named constructors of one kind (``kind`` appears in error messages, e.g. ``"model"``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._params_models: dict[str, Any] = {}

    def register(self, name: str, obj: T | None = None) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, a decorator. Re-registering the same
        object is a no-op; another object under a taken name is an error."""

        def add(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"{self.kind} {name!r} is already registered (by {self._items[name]!r})")
            self._items[name] = item
            self._params_models.pop(name, None)
            return item

        return add(obj) if obj is not None else add

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests and plugins that register temporary parts)."""
        self._items.pop(name, None)
        self._params_models.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str, where: str | None = None) -> T:
        """The constructor registered as ``name``; ConfigError listing the valid names otherwise."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            at = f"{where}: " if where else ""
            raise ConfigError(f"{at}unknown {self.kind} {name!r}; valid: {', '.join(self.names()) or '(none)'}") \
                from None

    def build(self, name: str, /, **kwargs: Any) -> Any:
        """``get(name)(**kwargs)`` after :meth:`check_params`."""
        self.check_params(name, kwargs)
        return self.get(name)(**kwargs)

    # ------------------------------------------------------------------ parameter checking

    def accepted_params(self, name: str) -> list[str] | None:
        """Keyword names the constructor of ``name`` takes (None: it takes ``**kwargs``)."""
        params = inspect.signature(self.get(name)).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return None
        return [n for n, p in params.items()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"]

    def check_params(self, name: str, params: dict[str, Any], where: str | None = None,
                     exclude: tuple[str, ...] = ()) -> list[str]:
        """Check a parameter table against the constructor of ``name``.

        Returns the list of error lines (empty when the table fits); raises ConfigError with all of
        them when ``where`` is None. Each line names the dotted key (``where.key``). ``exclude``
        lists keywords the caller supplies itself (e.g. ``num_classes``).
        """
        errors = self.param_errors(name, params, where or f"{self.kind} {name!r}", exclude)
        if errors and where is None:
            raise ConfigError("; ".join(errors))
        return errors

    def param_errors(self, name: str, params: dict[str, Any], where: str, exclude: tuple[str, ...] = ()) -> list[str]:
        if not isinstance(params, dict):
            return [f"{where}: expected a mapping of keyword arguments, got {params!r}"]
        errors = []
        valid = self.accepted_params(name)
        if valid is not None:
            valid = [v for v in valid if v not in exclude]
            errors = [f"unknown config key {where}.{k}; valid keys: {', '.join(valid) or '(none)'}"
                      for k in params if k not in valid]
        model = self._params_model(name, exclude)
        if model is None:
            return errors
        import json

        import pydantic

        known = {k: v for k, v in params.items() if k in model.model_fields}
        try:
            text = json.dumps(known)
        except (TypeError, ValueError):  # not a YAML-like table (built in code): check in Python mode
            text = None
        try:
            if text is None:
                model.model_validate(known)
            else:  # strict JSON mode: no "3" -> 3 coercion, while YAML lists still fill tuples
                model.model_validate_json(text, strict=True)
        except pydantic.ValidationError as exc:
            errors += format_validation_errors(exc, where)
        return errors

    def _params_model(self, name: str, exclude: tuple[str, ...]) -> Any:
        """A pydantic model of the constructor's annotated keywords."""
        key = f"{name}|{','.join(exclude)}"
        if key not in self._params_models:
            self._params_models[key] = signature_model(self.get(name), f"{self.kind}_{name}", exclude)
        return self._params_models[key]


def call_errors(fn: Callable[..., Any], params: dict[str, Any], where: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """:meth:`Registry.param_errors` for one callable that is not registered anywhere (a reader's ``load``,
    a dataset's ``eval_plan``): the error lines for ``params``, each naming ``where.key``."""
    reg: Registry[Callable[..., Any]] = Registry("callable")
    reg.register("fn", fn)
    return reg.param_errors("fn", params, where, exclude)


def signature_model(fn: Callable[..., Any], title: str, exclude: tuple[str, ...] = ()) -> Any:
    """A pydantic model whose fields are ``fn``'s annotated keyword parameters (None if it has none).

    Annotations that cannot be resolved or validated (tensors, generators, modules) become ``Any``.
    """
    import pydantic

    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001  unresolvable forward references: check names only
        hints = {}
    fields: dict[str, Any] = {}
    for pname, p in inspect.signature(fn).parameters.items():
        if pname in exclude or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) or pname == "self":
            continue
        tp = hints.get(pname, Any)
        try:
            pydantic.TypeAdapter(tp)
        except Exception:  # noqa: BLE001  e.g. torch.Tensor: not checkable from a config
            tp = Any
        if p.default is inspect.Parameter.empty:  # supplied by the caller (e.g. num_classes): optional here
            fields[pname] = (tp | None, None) if tp is not Any else (Any, None)
        else:
            fields[pname] = (tp, p.default)
    if not fields:
        return None
    return pydantic.create_model(title, __config__=pydantic.ConfigDict(arbitrary_types_allowed=True), **fields)


def format_validation_errors(exc: Any, prefix: str = "") -> list[str]:
    """pydantic ValidationError -> one line per error, each naming the dotted key."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"]).replace(".[", "[")
        key = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown config key {key}")
        elif err["type"] == "missing":
            lines.append(f"{key}: required key is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = "" if isinstance(err.get("input"), dict) else f", got {err.get('input')!r}"
            lines.append(f"{key}: {msg[0].lower() + msg[1:]}{got}")
    return lines


TRAINERS: Registry[Any] = Registry("trainer")
"""Trainer subclasses of methods (config key ``trainer``); ``default`` is
:class:`vireid.engine.trainer.Trainer`. Filled by :func:`vireid.methods.registry.register_method`."""
