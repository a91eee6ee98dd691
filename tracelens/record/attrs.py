"""``watch_attrs``: record the attribute reads and writes an object's own methods make.

A ``watch()`` proxy only sees what goes through the proxy; ``self.count += 1`` inside
a method of the object goes to the object itself. ``watch_attrs(obj, name)`` changes
the object's class to a recording subclass (``isinstance`` still holds), so every
read and write of a data attribute, by the object's own methods or by anyone else,
is recorded on the variable ``name.attr``. ``@watch_attrs("name")`` on a class does
the same for all its instances: the first instance that records is ``name``, later
ones ``name#2``, ``name#3``..., so that different instances are different variables.

Methods, properties and other descriptors of the class, and dunder attributes, are
not events; the accesses a property's code makes are. Values are recorded with
``tracelens.record._core.safe_value``: scalars as they are, anything else as its type
and size, so no ``__repr__`` of the program's runs (a raising one included).

Each access is performed first and its sequence number taken right after, with no
call in between (see ``tracelens.record._core``).
"""

from __future__ import annotations

import contextlib
import copyreg
import itertools
import weakref
from collections.abc import Callable
from typing import Any, Final, TypeVar, overload

from tracelens import schema as s
from tracelens.record._core import STATE, next_seq, record, safe_value

_R: Final = s.Op.READ
_W: Final = s.Op.WRITE
_MISSING: Final = "<missing>"
_SLOT: Final = type(type("_S", (), {"__slots__": ("x",)}).x)  # type: ignore[attr-defined]  # member_descriptor

T = TypeVar("T")

#: id(instance) -> variable prefix ("name", "name#2"). Not stored on the instance, so
#: ``vars(obj)`` is unchanged; entries go when the instance does (when it has weakrefs).
_names: dict[int, str] = {}
#: Decorated class -> counter of its instances' names.
_counters: dict[type, Any] = {}
#: Per-class recording subclasses made by ``watch_attrs(obj, name)``.
_subclasses: dict[type, type] = {}


def _class_attr(cls: type, attr: str) -> Any:
    """The class attribute ``attr`` without running any descriptor or metaclass code."""
    for k in cls.__mro__:
        d = k.__dict__
        if attr in d:
            return d[attr]
    return _MISSING


def _is_data(obj: Any, attr: str) -> bool:
    """Whether ``attr`` is a data attribute of ``obj`` (not a method, property...)."""
    if attr[:2] == "__":
        return False
    try:
        d = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        d = None
    if d is not None and attr in d:
        return True
    ca = _class_attr(type(obj), attr)
    if ca is _MISSING:
        return True  # e.g. found by a __getattr__: still a value the object holds
    t = type(ca)
    return t is _SLOT or not hasattr(t, "__get__")


def _name_of(obj: Any) -> str | None:
    return _names.get(id(obj))


def _assign(obj: Any, name: str) -> None:
    key = id(obj)
    _names[key] = name
    # No weakrefs (slots): the entry stays; ids are only reused after death.
    with contextlib.suppress(TypeError):
        weakref.finalize(obj, _names.pop, key, None)


def _decorated_name(obj: Any, base: str) -> str:
    name = _names.get(id(obj))
    if name is None:
        n = next(_counters.setdefault(type(obj), itertools.count(1)))
        name = base if n == 1 else f"{base}#{n}"
        _assign(obj, name)
    return name


def _recorders(
    get: Callable[[Any, str], Any],
    set_: Callable[[Any, str, Any], None],
    delete: Callable[[Any, str], None],
    name_of: Callable[[Any], str | None],
) -> dict[str, Any]:
    def __getattribute__(self: Any, attr: str) -> Any:
        v = get(self, attr)
        seq = next_seq()
        if STATE.on and attr[:2] != "__":
            try:
                if _is_data(self, attr):
                    name = name_of(self)
                    if name is not None:
                        record(_R, seq, f"{name}.{attr}", safe_value(v))
            except Exception:  # recording never raises into user code
                pass
        return v

    def __setattr__(self: Any, attr: str, value: Any) -> None:
        set_(self, attr, value)
        seq = next_seq()
        if STATE.on and attr[:2] != "__":
            try:
                if _is_data(self, attr):
                    name = name_of(self)
                    if name is not None:
                        record(_W, seq, f"{name}.{attr}", safe_value(value))
            except Exception:
                pass

    def __delattr__(self: Any, attr: str) -> None:
        data = attr[:2] != "__" and _is_data(self, attr)
        delete(self, attr)
        seq = next_seq()
        if STATE.on and data:
            name = name_of(self)
            if name is not None:
                record(_W, seq, f"{name}.{attr}", _MISSING)

    return {
        "__getattribute__": __getattribute__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
    }


def _recording_subclass(cls: type) -> type:
    sub = _subclasses.get(cls)
    if sub is None:
        ns = _recorders(
            cls.__getattribute__,  # type: ignore[arg-type]
            cls.__setattr__,  # type: ignore[arg-type]
            cls.__delattr__,  # type: ignore[arg-type]
            _name_of,
        )
        ns.update(__slots__=(), __module__=cls.__module__, __qualname__=cls.__qualname__)
        ns["_tl_watched_base"] = cls
        ns["__reduce_ex__"] = _reduce_as(cls)
        sub = _subclasses[cls] = type(cls.__name__, (cls,), ns)
    return sub


def _reduce_as(cls: type) -> Callable[[Any, Any], Any]:
    """``__reduce_ex__`` that pickles (and copies) an instance as one of ``cls``.

    The recording subclass cannot be found by name, so object's own reduction, which
    names the instance's class, fails; this one names ``cls`` and rebuilds the object
    with ``copyreg._reconstructor``, as protocols 0 and 1 do. Classes whose reduction
    is their own are left to it.
    """
    base_reduce: Any = cls.__reduce_ex__
    reconstructor: Any = copyreg._reconstructor  # type: ignore[attr-defined]

    def __reduce_ex__(self: Any, protocol: Any) -> Any:
        rv = base_reduce(self, protocol)
        if not (isinstance(rv, tuple) and len(rv) >= 2 and isinstance(rv[1], tuple)):
            return rv
        args = rv[1]
        if getattr(rv[0], "__name__", "") == "__newobj__" and args[:1] == (type(self),):
            if len(args) == 1:
                return (reconstructor, (cls, object, None), *rv[2:])
        elif rv[0] is reconstructor and args[:1] == (type(self),):
            return (rv[0], (cls, *args[1:]), *rv[2:])
        return rv

    return __reduce_ex__


def _decorate(cls: type[T], base: str) -> type[T]:
    ns = _recorders(
        cls.__getattribute__,
        cls.__setattr__,
        cls.__delattr__,
        lambda obj: _decorated_name(obj, base),
    )
    for k, v in ns.items():
        setattr(cls, k, v)
    return cls


@overload
def watch_attrs(obj: str, name: None = None) -> Callable[[type[T]], type[T]]: ...
@overload
def watch_attrs(obj: T, name: str) -> T: ...
def watch_attrs(obj: Any, name: str | None = None) -> Any:
    """Record the attribute reads and writes of ``obj`` as ``name.attr``.

    Two forms:

    * ``watch_attrs(obj, "cache")`` changes ``obj``'s class to a recording subclass
      (same name, ``isinstance`` holds) and returns ``obj``;
    * ``@watch_attrs("cache")`` on a class records every instance's attributes.

    Only accesses made while recording are events. Pickling or copying the watched
    object gives a plain instance of its class (not watched), with its state.

    Args:
        obj: The object (or, in the decorator form, the variable name).
        name: The variable name used in the trace.

    Returns:
        ``obj`` itself, or the class decorator.

    Raises:
        TypeError: ``name`` is not a non-empty string, or ``obj``'s class cannot be
            changed (instances of built-in types such as ``dict``: use ``watch``).
    """
    if name is None:
        if not isinstance(obj, str) or not obj:
            raise TypeError("watch_attrs() needs a non-empty variable name")
        base = obj

        def decorator(cls: type[T]) -> type[T]:
            if not isinstance(cls, type):
                raise TypeError("@watch_attrs(name) decorates a class")
            return _decorate(cls, base)

        return decorator
    if not isinstance(name, str) or not name:
        raise TypeError("watch_attrs() needs a non-empty variable name")
    cls = type(obj)
    if "_tl_watched_base" not in cls.__dict__:
        try:
            obj.__class__ = _recording_subclass(cls)
        except TypeError as exc:
            raise TypeError(
                f"cannot watch the attributes of a {cls.__name__} object: {exc}; "
                "use tracelens.watch() for built-in containers"
            ) from None
    _assign(obj, name)
    return obj
