"""Settings dataclasses: one field per setting, its default, its help text, its command-line flag.

A settings class declares each field with :func:`setting`; the CLI builds its flags from those
fields (``cls_app.commands.flags``), so a default, a choice list and a help text live in one
place, next to the code that uses them. :func:`default` reads a field's default.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, field, fields
from typing import Any

__all__ = ["check_settings", "default", "setting", "settings_of"]


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    flag: str | None = None,
    choices: tuple[Any, ...] | None = None,
    metavar: str | None = None,
    cli: bool = True,
    factory: Any = MISSING,
    toggle: bool = False,
) -> Any:
    """A dataclass field with its command-line description in ``metadata``.

    ``help`` may use ``%(default)s``. ``flag`` overrides the flag name (default: ``--field-name``);
    ``cli=False`` keeps the field off the command line. A bool field is a switch: ``--name`` turns
    on a False default, ``--no-name`` (or ``flag``) turns off a True default; ``toggle`` gives both
    ``--name`` and ``--no-name``.
    """
    meta = {"help": help, "flag": flag, "choices": choices, "metavar": metavar, "cli": cli, "toggle": toggle}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def default(cls: type, name: str) -> Any:
    """The default of field ``name`` of dataclass ``cls`` (what the CLI shows and uses)."""
    for f in fields(cls):
        if f.name == name:
            return field_default(f)
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def field_default(f: Field) -> Any:
    """A field's default value (its factory called), or MISSING."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether ``value`` fits a settings field's annotation (the scalar kinds settings use)."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(annotation))
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, tuple | list):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_accepts(args[0], v) for v in value)
        return len(args) == len(value) and all(_accepts(a, v) for a, v in zip(args, value, strict=True))
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _described(annotation: Any) -> str:
    import typing

    name = getattr(annotation, "__name__", None)
    return name if name and not typing.get_args(annotation) else str(annotation).replace("typing.", "")


def check_settings(cls: type, owner: str, values: dict[str, Any], known: dict[str, Any] | None = None) -> dict:
    """``values`` checked against the fields of dataclass ``cls`` (or the ``known`` annotations by name): a
    :class:`~cls_app.errors.UserError` naming ``owner``, the setting and the close matches for an unknown
    name, and the expected type for an ill-typed value. Lists given for tuple fields become tuples."""
    import difflib
    import typing

    from .errors import UserError

    hints = known if known is not None else typing.get_type_hints(cls)
    names = [f.name for f in fields(cls) if f.init] if known is None else list(known)
    out = {}
    for name, value in values.items():
        if name not in names:
            close = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise UserError(f"{owner} has no setting {name!r}{hint} (it takes: {', '.join(sorted(names))})")
        annotation = hints.get(name, Any)
        if not _accepts(annotation, value):
            raise UserError(f"{owner} setting {name} must be {_described(annotation)}, got {value!r}")
        if isinstance(value, list) and typing.get_origin(annotation) is tuple:
            value = tuple(value)
        out[name] = value
    return out


def settings_of(cls: type, owner: str, values: dict[str, Any]) -> Any:
    """An instance of settings dataclass ``cls`` from keyword ``values``, checked (:func:`check_settings`)."""
    return cls(**check_settings(cls, owner, values))
