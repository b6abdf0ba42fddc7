"""Settings dataclasses: one field per setting, its default, its help text, its command-line flag.

A settings class declares each field with :func:`setting`; the CLI builds its flags from those
fields (``cls_app.commands.flags``), so a default, a choice list and a help text live in one
place, next to the code that uses them. :func:`default` reads a field's default.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, field, fields
from typing import Any

__all__ = ["default", "setting"]


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
