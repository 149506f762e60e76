"""CLI options derived from the flows' parameter models (hubpress/flows/params.py).

A deployment's form in the Prefect UI is rendered from a parameter model's JSON schema; the
matching CLI command takes its arguments and options from the same model's fields, so both offer
the same names (`max_shard_size` is `--max-shard-size`), the same defaults, the same choices
(a `Literal` is a Click choice here and an enum in the form) and the same help text. A field is
declared once, in the model; a command only adds what is not a flow parameter (`--json`, the task
runner) and says which fields are positional arguments.

    @app.command("publish-dataset")
    @model_command(PublishDatasetParams, arguments={"source": "SOURCE", "target": "TARGET"})
    def publish_dataset_command(params: PublishDatasetParams, as_json: bool = ...) -> None: ...
"""

from __future__ import annotations

import enum
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def _plain(annotation: Any) -> Any:
    """The type without Annotated[...] validators (the model applies them)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    annotation = _plain(annotation)
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _plain(rest[0]), True
    return annotation, False


def _choice_enum(name: str, choices: Iterable[str]) -> type[enum.Enum]:
    """Typer shows an Enum's values as the option's choices (`[auto|folder|csv]`)."""
    return enum.Enum(name, {c: c for c in choices}, type=str)


def _help(field: FieldInfo) -> str | None:
    title, description = field.title, field.description
    if title and description:
        return f"{title}: {description}"
    return description or title


def option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def cli_parameter(name: str, field: FieldInfo, argument: str | None = None) -> inspect.Parameter:
    """One model field as a Typer parameter (an argument when `argument` names its metavar)."""
    annotation, optional = _unwrap_optional(field.annotation)
    origin = typing.get_origin(annotation)
    help_text = _help(field)
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    if argument is not None:
        typ = str if origin is not None or annotation not in (str, int) else annotation
        spec = typer.Argument(..., help=help_text, metavar=argument, show_default=False)
        return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=spec, annotation=typ)
    if annotation is bool:
        flag = option_name(name)
        decls = [flag] if default is False else [f"{flag}/--no-{name.replace('_', '-')}"]
        spec = typer.Option(default, *decls, help=help_text)
        typ: Any = bool
    elif origin is Literal:
        typ = _choice_enum(f"{name}_choice", typing.get_args(annotation))
        spec = typer.Option(typ(default) if default is not None else None, option_name(name), help=help_text)
        typ = typ | None if optional or default is None else typ
    elif origin is list:
        typ = list[str] | None
        spec = typer.Option(None, option_name(name), help=f"{help_text} (repeatable)")
    elif annotation in (int, float, str) and (optional or default is None):
        typ = annotation | None
        spec = typer.Option(None, option_name(name), help=help_text)
    elif annotation in (int, float, str):
        typ = annotation
        spec = typer.Option(default, option_name(name), help=help_text)
    else:
        raise TypeError(f"{name}: no CLI form for {field.annotation!r}; handle it in the command")
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=spec, annotation=typ)


def model_values(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """The model's fields from parsed CLI values: enums become their strings, an option left out
    (None, or an empty repeatable) is left to the model's default."""
    out: dict[str, Any] = {}
    for name in model.model_fields:
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, enum.Enum):
            value = value.value
        if value is None or (isinstance(value, list) and not value):
            continue
        out[name] = value
    return out


def model_command(
    model: type[BaseModel],
    *,
    arguments: Mapping[str, str],
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    build: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command whose first parameter receives the model instance (or, with
    build=False, a dict of the model's values); its other parameters are its own options.

    `arguments` maps the positional fields to their metavar (in order); the other fields become
    options, limited to `include` when given, minus `exclude`."""
    wanted = set(include) if include is not None else None

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = list(inspect.signature(func).parameters.values())[1:]
        fields = model.model_fields
        params = [cli_parameter(name, fields[name], metavar) for name, metavar in arguments.items()]
        for name, field in fields.items():
            if name in arguments or name in exclude or (wanted is not None and name not in wanted):
                continue
            params.append(cli_parameter(name, field))
        params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        own_names = {p.name for p in own}

        @functools.wraps(func)
        def command(**values: Any) -> Any:
            mine = {k: v for k, v in values.items() if k in own_names}
            found = model_values(model, {k: v for k, v in values.items() if k not in own_names})
            return func(model(**found) if build else found, **mine)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # Typer must read the signature above, not func's
        return command

    return decorate
