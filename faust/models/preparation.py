"""Preparing a Record class: its fields, their types, its generated methods.

When a Record subclass is defined, :func:`declare_fields` collects its fields
(inherited ones first) and :func:`finalize_class` resolves their annotations, plans
each field's conversions (:mod:`faust.models.conversion`) and installs the methods
generated for them (:mod:`faust.models.codegen`). The functions at the end are the
error and dispatch paths the generated code calls.

:data:`registry` maps every concrete Record's namespace to its class.
"""

from __future__ import annotations

import copy
import re
import sys
import typing
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple
from uuid import UUID

from faust.exceptions import ValidationError
from faust.models.codegen import ClassPlan, FieldPlan, build_from_data, build_methods
from faust.models.conversion import Conversion, converter, representer, type_repr, unwrap_optional
from faust.models.fields import MISSING, DatetimeField, FieldDescriptor, show

if TYPE_CHECKING:
    from faust.models.record import ModelOptions, Record

__all__ = [
    "registry",
    "declare_fields",
    "caller_locals",
    "finalize_class",
    "register",
    "resolve_model",
]

#: Every concrete Record class by namespace; used to decode polymorphic payloads
#: (``'__faust': {'ns': ...}``) and by ``faust models``.
registry: dict[str, type[Record]] = {}

# Classes whose methods are generated, so a new subclass can make them re-generate
# ``from_data`` with the namespace check (see register).
_compiled: weakref.WeakSet[type[Record]] = weakref.WeakSet()
_blessed: weakref.WeakSet[type[Record]] = weakref.WeakSet()

_CLASSVAR = re.compile(r"^\s*(typing\.|t\.)?ClassVar\b")


class Declared(NamedTuple):
    """A field as declared, before its annotation is resolved."""

    descriptor: FieldDescriptor[Any]
    annotation: Any
    owner: type  # the class whose body declared it (its module resolves the name)


# -- declaring fields -------------------------------------------------------------------


def declare_fields(cls: type[Record]) -> dict[str, Declared]:
    """The fields of ``cls`` in order, each with a descriptor of its own (not yet bound)."""
    declared: dict[str, Declared] = {}
    # Bases first (as dataclasses does), so a redeclared field keeps its position.
    for base in reversed(cls.__mro__[1:]):
        declared.update(base.__dict__.get("_faust_declared", {}))  # only Records have it
    inherited = set(declared)
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation) or (name.startswith("__") and name.endswith("__")):
            continue
        value = cls.__dict__.get(name, MISSING)
        if isinstance(value, FieldDescriptor):
            descriptor = value.clone() if "model" in value.__dict__ else value
        else:
            descriptor = FieldDescriptor(default=value)
        declared[name] = Declared(descriptor, annotation, cls)
        inherited.discard(name)
    for name in inherited:
        descriptor, annotation, owner = declared[name]
        value = cls.__dict__.get(name, MISSING)
        if isinstance(value, FieldDescriptor):
            descriptor = value.clone() if "model" in value.__dict__ else value
        elif value is not MISSING:  # ``y = 5`` in a subclass: a new default
            descriptor = descriptor.clone(default=value, required=False)
        else:
            descriptor = descriptor.clone()
        declared[name] = Declared(descriptor, annotation, owner)
    for name, (descriptor, _, _) in declared.items():
        descriptor.model = cls
        descriptor.field = name
    return declared


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return bool(_CLASSVAR.match(annotation))
    return annotation is ClassVar or typing.get_origin(annotation) is ClassVar


def caller_locals(cls: type) -> dict[str, Any] | None:
    """Locals of the function defining ``cls``, if its annotations may need them.

    With ``from __future__ import annotations`` a Record defined in a function refers
    to other local classes by name only; module globals cannot resolve those.
    """
    annotations = cls.__dict__.get("__annotations__", {})
    if not any(isinstance(a, str) for a in annotations.values()):
        return None
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_name == "__init_subclass__":
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None or frame.f_locals is frame.f_globals:
        return None
    return dict(frame.f_locals)


# -- resolving and generating -----------------------------------------------------------


def finalize_class(cls: type[Record]) -> None:
    """Resolve the annotations of ``cls``, bind its descriptors, generate its methods.

    Raises NameError while an annotation names something not defined yet.
    """
    hints = _resolve_annotations(cls)
    options = cls._options
    plans: list[FieldPlan] = []
    for name, (descriptor, _, _) in cls._faust_declared.items():
        tp = hints[name]
        _, optional = unwrap_optional(tp)
        descriptor.bind(cls, name, tp, optional)
        plans.append(_plan_field(descriptor, options))
    options.fields = {p.name: p.descriptor.type for p in plans}
    options.descriptors = {p.name: p.descriptor for p in plans}
    options.defaults = {p.name: p.default for p in plans if not p.required}
    options.optionalset = frozenset(p.name for p in plans if p.descriptor.optional)
    plan = ClassPlan(
        model=cls,
        fields=plans,
        namespace=options.namespace,
        include_metadata=options.include_metadata,
        validation=options.validation,
        post_init=not getattr(cls.__post_init__, "faust_noop", False),
        missing=_missing_error,
        field_error=_field_error,
        explain=_explain,
        not_mapping=_not_mapping,
        resolve_model=resolve_model,
        raise_if_invalid=_raise_if_invalid,
    )
    for name, method in build_methods(plan).items():
        setattr(cls, name, method)
    setattr(cls, "__match_args__", tuple(p.name for p in plans))  # noqa: B010
    cls._faust_plan = plan
    _install_from_data(cls, dispatch=_needs_dispatch(cls))
    cls._faust_ready = True
    _compiled.add(cls)


def _resolve_annotations(cls: type[Record]) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    owners = {d.owner for d in cls._faust_declared.values()}
    for owner in owners:
        localns = {
            **(getattr(owner, "_faust_localns", None) or {}),
            **(cls._faust_localns or {}),
            owner.__name__: owner,
            cls.__name__: cls,
        }
        module = sys.modules.get(owner.__module__)
        globalns = vars(module) if module else {}
        for name, annotation in owner.__dict__.get("__annotations__", {}).items():
            if name in cls._faust_declared and cls._faust_declared[name].owner is owner:
                hints[name] = _evaluate(cls, name, annotation, globalns, localns)
    return hints


def _evaluate(
    cls: type, name: str, annotation: Any, globalns: dict[str, Any], localns: dict[str, Any]
) -> Any:
    if isinstance(annotation, str):
        annotation = typing.ForwardRef(annotation, is_argument=False, is_class=True)
    try:
        # get_type_hints also resolves forward references nested in List['X'] & co.
        holder = type("_", (), {"__annotations__": {name: annotation}})
        return typing.get_type_hints(holder, globalns=globalns, localns=localns)[name]
    except NameError as exc:
        raise NameError(
            f"cannot resolve the annotation of {cls.__qualname__}.{name}: {exc}. "
            f"Define the type before the first use of {cls.__qualname__}"
        ) from exc


def _plan_field(descriptor: FieldDescriptor[Any], options: ModelOptions) -> FieldPlan:
    tp = descriptor.type
    if descriptor.python_type is not None and unwrap_optional(tp)[0] in (Any, object):
        tp = descriptor.python_type  # ``x: Any = IntegerField()`` converts as int
    coerce = options.coerce if descriptor.coerce is None else descriptor.coerce
    date_parser = (
        # __dict__, not getattr: a Record-typed descriptor answers unknown attribute
        # names with the nested model's fields.
        descriptor.__dict__.get("date_parser") or options.date_parser or datetime.fromisoformat
    )
    decoding = Conversion(
        coerce=coerce,
        parse_dates=options.isodates or isinstance(descriptor, DatetimeField) or coerce,
        date_parser=date_parser,
        polymorphic=options.polymorphic_fields,
    )
    prepare = descriptor.make_preparer()
    init_conv = None
    data_conv = converter(tp, decoding)
    user = _user_coercion(tp, options.coercions) if options.coercions else None
    if user is not None:
        # The model's own coercion replaces the built-in conversion of that type.
        init_conv = data_conv = user
    elif coerce:
        init_conv = converter(tp, replace(decoding, parse_dates=True))
    default = descriptor.default
    return FieldPlan(
        name=descriptor.field,
        input_name=descriptor.input_name or descriptor.field,
        output_name=descriptor.output_name or descriptor.field,
        descriptor=descriptor,
        required=default is MISSING,
        default=default,
        default_factory=_default_factory(default),
        init_conv=_compose(init_conv, prepare),
        data_conv=_compose(data_conv, prepare),
        repr_conv=representer(tp),
    )


def _user_coercion(
    tp: Any, coercions: Mapping[Any, Callable[[Any], Any]]
) -> Callable[[Any], Any] | None:
    """The ``coercions=`` callable for a field of type ``tp`` (None stays None).

    ``T``, ``Optional[T]``, ``list[T]``/``set[T]``/``tuple[T, ...]`` and
    ``dict[K, T]`` fields are converted, the collections member by member.
    """
    tp, _ = unwrap_optional(tp)
    fn = coercions.get(tp)
    if fn is not None:
        return lambda value: None if value is None else fn(value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, set, frozenset) and len(args) == 1:
        member = coercions.get(args[0])
    elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        member = coercions.get(args[0])
    elif origin is dict and len(args) == 2:
        value_fn = coercions.get(args[1])
        if value_fn is None:
            return None
        return lambda value: None if value is None else {k: value_fn(v) for k, v in value.items()}
    else:
        return None
    if member is None:
        return None
    build: Callable[[Any], Any] = origin
    return lambda value: None if value is None else build(map(member, value))


_IMMUTABLE = (int, float, str, bytes, bool, type(None), Decimal, datetime, date, time, UUID, Enum)


def _default_factory(default: Any) -> Callable[[], Any] | None:
    """None for immutable defaults; else a function giving each instance its own copy."""
    if default is MISSING or isinstance(default, _IMMUTABLE):
        return None
    if isinstance(default, tuple | frozenset) and all(isinstance(v, _IMMUTABLE) for v in default):
        return None
    if type(default) in (list, dict, set) and not default:
        return type(default)
    return lambda: copy.deepcopy(default)


def _compose(first: Callable[[Any], Any] | None, then: Callable[[Any], Any] | None) -> Any:
    if first is None or then is None:
        return first or then
    return lambda value: then(first(value))


def _install_from_data(cls: type[Record], *, dispatch: bool) -> None:
    assert cls._faust_plan is not None
    cls.from_data = classmethod(build_from_data(cls._faust_plan, dispatch=dispatch))  # type: ignore[assignment,method-assign]
    cls._faust_dispatch = dispatch


def _needs_dispatch(cls: type[Record]) -> bool:
    if cls._options.abstract or len(_blessed):
        return True
    return any(m is not cls and issubclass(m, cls) for m in registry.values())


def register(model: type[Record]) -> None:
    registry[model._options.namespace] = model
    if model._options.allow_blessed_key:
        _blessed.add(model)
    for other in list(_compiled):
        if other.__dict__.get("_faust_dispatch"):
            continue
        if model._options.allow_blessed_key or (model is not other and issubclass(model, other)):
            _install_from_data(other, dispatch=True)


# -- helpers called by generated code ---------------------------------------------------


def resolve_model(cls: type[Record], meta: Any) -> type[Record]:
    """The class a payload's ``'__faust'`` metadata asks for, if ``cls`` may become it."""
    try:
        ns = meta["ns"]
    except (TypeError, KeyError):
        ns = None
    if ns == cls._options.namespace:
        return cls
    model = registry.get(ns) if isinstance(ns, str) else None
    if model is None:
        if cls._options.abstract:
            known = ", ".join(sorted(n for n, m in registry.items() if issubclass(m, cls)))
            raise TypeError(
                f"{cls.__qualname__} is abstract and no model is registered as {ns!r} "
                f"(known: {known or 'none'}); is the module defining it imported?"
            )
        return cls
    if issubclass(model, cls) or model._options.allow_blessed_key:
        return model
    return cls


def _missing_error(cls: type, pairs: tuple[tuple[str, Any], ...]) -> TypeError:
    names = ", ".join(repr(name) for name, value in pairs if value is MISSING)
    return TypeError(f"{cls.__qualname__}() missing required field(s): {names}")


def _not_mapping(cls: type, data: Any) -> TypeError:
    return TypeError(
        f"{cls.__qualname__}.from_data() needs a mapping (such as decoded JSON), "
        f"got {type(data).__name__}: {show(data)}"
    )


def _field_error(cls: type[Record], name: str, value: Any, exc: Exception) -> Exception:
    """A ValidationError naming the field whose value could not be converted."""
    if isinstance(exc, ValidationError):  # from a nested record: keep its detail
        new = ValidationError(f"{cls.__qualname__}.{name}: {exc.reason}", field=name, value=value)
    else:
        tp = type_repr(cls._options.fields.get(name))
        new = ValidationError(
            f"{cls.__qualname__}.{name}: cannot convert {show(value)} to {tp}: {exc}",
            field=name,
            value=value,
        )
    new.__cause__ = exc
    return new


def _explain(cls: type[Record], data: Any, exc: Exception) -> Exception:
    """Find which field made a generated from_data fail and say so (the error path)."""
    plan = cls._faust_plan
    assert plan is not None
    if not isinstance(data, Mapping):
        new: Exception = _not_mapping(cls, data)
    else:
        missing = [f.input_name for f in plan.fields if f.required and f.input_name not in data]
        if missing:
            new = TypeError(
                f"{cls.__qualname__}.from_data(): missing required field(s) "
                f"{', '.join(map(repr, missing))} in data with keys {sorted(map(str, data))}"
            )
        else:
            for f in plan.fields:
                value = data.get(f.input_name, MISSING)
                if f.data_conv is None or value is MISSING:
                    continue
                try:
                    f.data_conv(value)
                except Exception as field_exc:
                    return _field_error(cls, f.name, value, field_exc)
            return exc
    new.__cause__ = exc
    return new


def _raise_if_invalid(record: Record) -> None:
    errors = record.validate()
    if errors:
        raise errors[0]
