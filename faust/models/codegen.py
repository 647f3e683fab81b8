"""Per-class methods of a Record, generated as Python source (as dataclasses does).

A generic ``for field in fields`` loop costs a dict lookup, a branch and a call per
field per message; the generated code is straight-line instead, and a field that
needs no conversion is a bare ``self.x = data['x']``. That is what lets
``from_data`` keep up with the stream (see bench/).

Every name the generated code uses is prefixed ``__faust_`` so a field can be called
anything, including ``self`` or ``data``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faust.models.conversion import Converter
from faust.models.fields import MISSING, FieldDescriptor

__all__ = ["FieldPlan", "ClassPlan", "build_methods", "build_from_data"]


@dataclass
class FieldPlan:
    """Everything generated code needs to know about one field."""

    name: str
    input_name: str  # key read by from_data
    output_name: str  # key written by to_representation
    descriptor: FieldDescriptor[Any]
    required: bool
    default: Any  # MISSING when required
    default_factory: Callable[[], Any] | None  # copies a mutable default
    init_conv: Converter | None  # applied to constructor arguments
    data_conv: Converter | None  # applied to decoded data
    repr_conv: Converter | None  # applied by to_representation


@dataclass
class ClassPlan:
    """Everything generated code needs to know about one Record class."""

    model: type
    fields: list[FieldPlan]
    namespace: str
    include_metadata: bool
    validation: bool
    post_init: bool
    # Helpers the generated code calls on its (rare) error and dispatch paths.
    missing: Callable[..., Exception]
    field_error: Callable[..., Exception]
    explain: Callable[..., Exception]
    not_mapping: Callable[..., Exception]
    resolve_model: Callable[..., Any]
    raise_if_invalid: Callable[[Any], None]


def _namespace(plan: ClassPlan) -> dict[str, Any]:
    ns: dict[str, Any] = {
        "__faust_M": MISSING,
        "__faust_new": object.__new__,
        "__faust_missing": plan.missing,
        "__faust_field_error": plan.field_error,
        "__faust_explain": plan.explain,
        "__faust_not_mapping": plan.not_mapping,
        "__faust_resolve": plan.resolve_model,
        "__faust_check": plan.raise_if_invalid,
    }
    for f in plan.fields:
        ns[f"__faust_d_{f.name}"] = f.default
        ns[f"__faust_f_{f.name}"] = f.default_factory
        ns[f"__faust_ci_{f.name}"] = f.init_conv
        ns[f"__faust_cd_{f.name}"] = f.data_conv
        ns[f"__faust_r_{f.name}"] = f.repr_conv
    return ns


def _compile(plan: ClassPlan, name: str, lines: list[str]) -> Any:
    source = "\n".join(lines)
    ns = _namespace(plan)
    exec(compile(source, f"<faust.Record {plan.model.__qualname__}.{name}>", "exec"), ns)
    fn = ns[name]
    fn.__qualname__ = f"{plan.model.__qualname__}.{name}"
    fn.__module__ = plan.model.__module__
    return fn


def _default_expr(f: FieldPlan) -> str:
    return f"__faust_f_{f.name}()" if f.default_factory else f"__faust_d_{f.name}"


def _init_lines(plan: ClassPlan) -> list[str]:
    params = "".join(f", {f.name}=__faust_M" for f in plan.fields)
    lines = [f"def __init__(__faust_self{params}, *, __faust=None):"]
    required = [f.name for f in plan.fields if f.required]
    if required:
        test = " or ".join(f"{n} is __faust_M" for n in required)
        pairs = ", ".join(f"({n!r}, {n})" for n in required)
        lines += [
            f"    if {test}:",
            f"        raise __faust_missing(type(__faust_self), ({pairs},))",
        ]
    for f in plan.fields:
        if not f.required:
            lines += [f"    if {f.name} is __faust_M:", f"        {f.name} = {_default_expr(f)}"]
            if f.init_conv:  # defaults are trusted as given; only arguments convert
                lines += ["    else:", *_convert_lines(f, "        ")]
        elif f.init_conv:
            lines += _convert_lines(f, "    ")
    lines += [f"    __faust_self.{f.name} = {f.name}" for f in plan.fields]
    lines += _finish_lines(plan)
    if len(lines) == 1:
        lines.append("    pass")
    return lines


def _convert_lines(f: FieldPlan, indent: str) -> list[str]:
    return [
        f"{indent}try:",
        f"{indent}    {f.name} = __faust_ci_{f.name}({f.name})",
        f"{indent}except Exception as __faust_exc:",
        f"{indent}    raise __faust_field_error("
        f"type(__faust_self), {f.name!r}, {f.name}, __faust_exc)",
    ]


def _finish_lines(plan: ClassPlan) -> list[str]:
    lines = []
    if plan.post_init:
        lines.append("    __faust_self.__post_init__()")
    if plan.validation:
        lines.append("    __faust_check(__faust_self)")
    return lines


def _from_data_lines(plan: ClassPlan, dispatch: bool) -> list[str]:
    lines = ["def from_data(__faust_cls, __faust_data):"]
    if dispatch:
        # Only classes that have subclasses (or abstract ones) look at the metadata;
        # the namespace check would otherwise be paid on every message for nothing.
        lines += [
            "    try:",
            "        __faust_meta = __faust_data.get('__faust')",
            "    except AttributeError:",
            "        raise __faust_not_mapping(__faust_cls, __faust_data) from None",
            "    if __faust_meta is not None:",
            "        __faust_target = __faust_resolve(__faust_cls, __faust_meta)",
            "        if __faust_target is not __faust_cls:",
            "            return __faust_target.from_data(__faust_data)",
        ]
    lines += ["    __faust_self = __faust_new(__faust_cls)", "    try:"]
    for f in plan.fields:
        key = repr(f.input_name)
        target = f"        __faust_self.{f.name}"
        if f.required:
            value = f"__faust_data[{key}]"
            if f.data_conv:
                value = f"__faust_cd_{f.name}({value})"
            lines.append(f"{target} = {value}")
        elif f.default_factory is None and f.data_conv is None:
            lines.append(f"{target} = __faust_data.get({key}, __faust_d_{f.name})")
        else:
            value = f"__faust_cd_{f.name}(__faust_v)" if f.data_conv else "__faust_v"
            lines += [
                f"        __faust_v = __faust_data.get({key}, __faust_M)",
                f"{target} = {_default_expr(f)} if __faust_v is __faust_M else {value}",
            ]
    if not plan.fields:
        lines.append("        __faust_data.keys")  # still reject a non-mapping
    lines += [
        "    except Exception as __faust_exc:",
        "        raise __faust_explain(__faust_cls, __faust_data, __faust_exc)",
    ]
    lines += _finish_lines(plan)
    lines.append("    return __faust_self")
    return lines


def _to_representation_lines(plan: ClassPlan) -> list[str]:
    items = []
    for f in plan.fields:
        value = f"__faust_self.{f.name}"
        if f.repr_conv:
            value = f"__faust_r_{f.name}({value})"
        items.append(f"{f.output_name!r}: {value}")
    if plan.include_metadata:
        items.append(f"'__faust': {{'ns': {plan.namespace!r}}}")
    return ["def to_representation(__faust_self):", f"    return {{{', '.join(items)}}}"]


def _asdict_lines(plan: ClassPlan) -> list[str]:
    items = ", ".join(f"{f.name!r}: __faust_self.{f.name}" for f in plan.fields)
    return ["def asdict(__faust_self):", f"    return {{{items}}}"]


def _eq_lines(plan: ClassPlan) -> list[str]:
    mine = "".join(f"__faust_self.{f.name}, " for f in plan.fields)
    theirs = "".join(f"__faust_other.{f.name}, " for f in plan.fields)
    return [
        "def __eq__(__faust_self, __faust_other):",
        "    if __faust_other.__class__ is not __faust_self.__class__:",
        "        return NotImplemented",
        f"    return ({mine}) == ({theirs})",
    ]


def build_from_data(plan: ClassPlan, *, dispatch: bool) -> Any:
    """The ``from_data`` function (to be wrapped in classmethod)."""
    return _compile(plan, "from_data", _from_data_lines(plan, dispatch))


def build_methods(plan: ClassPlan) -> dict[str, Any]:
    """``__init__``, ``to_representation``, ``asdict`` and ``__eq__`` for the class."""
    return {
        "__init__": _compile(plan, "__init__", _init_lines(plan)),
        "to_representation": _compile(plan, "to_representation", _to_representation_lines(plan)),
        "asdict": _compile(plan, "asdict", _asdict_lines(plan)),
        "__eq__": _compile(plan, "__eq__", _eq_lines(plan)),
    }
