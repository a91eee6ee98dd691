"""``watch(obj, name)``: proxies that record every read and write of shared state.

A watched dict records item accesses on the variable ``name[key]`` (``key`` as its
repr) and changes to its key set (insert, delete, clear) as writes of ``name``;
iterating it, ``len``, ``keys()``/``values()``/``items()``, ``copy`` and ``==`` read
``name``. So iterating in one thread while another inserts is a race on ``name``.
An insert or delete of one key is a *commuting* write of ``name`` (``kind``
``commuting``): inserts of distinct keys from several units do not race, two writes of
the same key race on ``name[key]``. A watched list is a single variable ``name``
(indices shift under inserts); ``append``, ``extend`` and ``+=`` write it commuting. A
watched deque is a list with the whole deque API, whose ``appendleft``/``extendleft``/
``popleft`` also write ``name<left>`` (operations at opposite ends commute). A
watched set is like a dict's key set: ``add``, ``discard`` and ``remove`` of ``x`` write
``name[x]`` and, when the set changed, ``name`` commuting. A watched object records
``name.attr``. ``docs/analysis.md`` (*Operations that commute*) lists the rules.

Otherwise a proxy behaves like the object: equality, ``len``, iteration, ``repr``
and exceptions pass through, and ``isinstance(proxy, dict)`` holds.

Each access is performed first and its sequence number taken right after, with no
call in between (see ``tracelens.record._core``): the recorded order is the real one.
"""

from __future__ import annotations

from collections import abc, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from tracelens import schema as s
from tracelens.record._core import (
    NOVALUE,
    SCALARS,
    STATE,
    key_text,
    next_seq,
    record,
    safe_value,
    say_once,
)
from tracelens.record._hooks import when_imported

_R: Final = s.Op.READ
_W: Final = s.Op.WRITE
_MISSING: Final = "<missing>"
#: The extra field of a commuting write (``schema.Kind.COMMUTING``).
_COMMUTING: Final = {s.KIND: s.Kind.COMMUTING}


def _v(v: Any) -> Any:
    return v if type(v) in SCALARS else safe_value(v)


class _Proxy:
    __slots__ = ("__weakref__", "_tl_name", "_tl_obj", "_tl_vars")
    _tl_obj: Any
    _tl_name: str
    _tl_vars: dict[Any, str]

    def __init__(self, obj: Any, name: str) -> None:
        object.__setattr__(self, "_tl_obj", obj)
        object.__setattr__(self, "_tl_name", name)
        object.__setattr__(self, "_tl_vars", {})

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(proxy, dict) is True for a watched dict
        return type(self._tl_obj)

    def __repr__(self) -> str:
        return repr(self._tl_obj)

    def __str__(self) -> str:
        return str(self._tl_obj)

    def __hash__(self) -> int:
        return hash(self._tl_obj)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # A pickle (and copy.copy) is a copy: of the object itself, which is not watched.
        self._whole(_R)
        return self._tl_obj.__reduce_ex__(protocol)

    def _whole(self, op: str, depth: int = 3, extra: dict[str, str] | None = None) -> None:
        # An event on the whole container (its key set); caller took no number yet.
        seq = next_seq()
        if STATE.on:
            record(op, seq, self._tl_name, extra=extra, depth=depth)


class WatchedDict(_Proxy):
    """A dict whose item and key-set accesses are recorded."""

    __slots__ = ()

    def _var(self, key: Any) -> str:
        try:
            return self._tl_vars[key]
        except KeyError:
            name = self._tl_vars[key] = f"{self._tl_name}[{key_text(key)}]"
            return name
        except TypeError:  # unhashable key: the dict itself will raise
            return f"{self._tl_name}[?]"

    # -- item reads ----------------------------------------------------------------
    # The two hot methods inline the name lookup and the value check: each call
    # saved here is paid on every access of a watched variable.
    def __getitem__(self, key: Any) -> Any:
        try:
            v = self._tl_obj[key]
        except KeyError:
            seq = next_seq()
            if STATE.on:
                record(_R, seq, self._var(key), _MISSING)
            raise
        seq = next_seq()
        if STATE.on:
            var = self._tl_vars.get(key) or self._var(key)
            record(_R, seq, var, v if type(v) in SCALARS else safe_value(v))
        return v

    def get(self, key: Any, default: Any = None) -> Any:
        obj = self._tl_obj
        present = key in obj
        v = obj[key] if present else default
        seq = next_seq()
        if STATE.on:
            record(_R, seq, self._var(key), _v(v) if present else _MISSING)
        return v

    def __contains__(self, key: Any) -> bool:
        present = key in self._tl_obj
        seq = next_seq()
        if STATE.on:
            record(_R, seq, self._var(key), NOVALUE if present else _MISSING)
        return present

    # -- item writes -----------------------------------------------------------------
    def __setitem__(self, key: Any, value: Any) -> None:
        obj = self._tl_obj
        had = key in obj
        obj[key] = value
        seq = next_seq()
        if STATE.on:
            var = self._tl_vars.get(key) or self._var(key)
            record(_W, seq, var, value if type(value) in SCALARS else safe_value(value))
            if not had:
                self._whole(_W, extra=_COMMUTING)

    def __delitem__(self, key: Any) -> None:
        obj = self._tl_obj
        try:
            del obj[key]
        except KeyError:  # recorded too: the second del of a check-then-act race
            seq = next_seq()
            if STATE.on:
                record(_W, seq, self._var(key), _MISSING)
            raise
        seq = next_seq()
        if STATE.on:
            record(_W, seq, self._var(key), _MISSING)
            self._whole(_W, extra=_COMMUTING)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        obj = self._tl_obj
        had = key in obj
        v = obj.setdefault(key, default)
        seq = next_seq()
        if STATE.on:
            record(_R if had else _W, seq, self._var(key), _v(v))
            if not had:
                self._whole(_W, extra=_COMMUTING)
        return v

    _NOARG: Final = object()

    def pop(self, key: Any, default: Any = _NOARG) -> Any:
        obj = self._tl_obj
        had = key in obj
        if had:
            v = obj.pop(key)
        elif default is WatchedDict._NOARG:
            seq = next_seq()
            if STATE.on:
                record(_R, seq, self._var(key), _MISSING)
            raise KeyError(key)
        else:
            v = default
        seq = next_seq()
        if STATE.on:
            if had:
                record(_W, seq, self._var(key), _MISSING)
                self._whole(_W, extra=_COMMUTING)
            else:
                record(_R, seq, self._var(key), _MISSING)
        return v

    def popitem(self) -> tuple[Any, Any]:
        k, v = self._tl_obj.popitem()
        seq = next_seq()
        if STATE.on:
            record(_W, seq, self._var(k), _MISSING)
            self._whole(_W)
        return k, v

    def update(self, *args: Any, **kwargs: Any) -> None:
        for k, v in dict(*args, **kwargs).items():
            self.__setitem__(k, v)

    def clear(self) -> None:
        self._tl_obj.clear()
        self._whole(_W)

    def __ior__(self, other: Any) -> WatchedDict:
        self.update(other)
        return self

    # -- key-set reads ----------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        self._whole(_R)
        return iter(self._tl_obj)

    def __len__(self) -> int:
        self._whole(_R)
        return len(self._tl_obj)

    def keys(self) -> Any:
        self._whole(_R)
        return self._tl_obj.keys()

    def values(self) -> Any:
        self._whole(_R)
        return self._tl_obj.values()

    def items(self) -> Any:
        self._whole(_R)
        return self._tl_obj.items()

    def copy(self) -> dict[Any, Any]:
        self._whole(_R)
        return self._tl_obj.copy()  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        self._whole(_R)
        if isinstance(other, _Proxy):
            other = other._tl_obj
        return self._tl_obj == other  # type: ignore[no-any-return]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __or__(self, other: Any) -> Any:
        self._whole(_R)
        return self._tl_obj | other

    def __reversed__(self) -> Iterator[Any]:
        self._whole(_R)
        it: Iterator[Any] = reversed(self._tl_obj)
        return it

    def __bool__(self) -> bool:
        self._whole(_R)
        return bool(self._tl_obj)

    __hash__ = None  # type: ignore[assignment]


def _list_reader(name: str) -> Callable[..., Any]:
    def method(self: WatchedList, *args: Any, **kwargs: Any) -> Any:
        rv = getattr(self._tl_obj, name)(*args, **kwargs)
        self._whole(_R)
        return rv

    method.__name__ = name
    return method


def _list_writer(name: str, extra: dict[str, str] | None = None) -> Callable[..., Any]:
    def method(self: WatchedList, *args: Any, **kwargs: Any) -> Any:
        rv = getattr(self._tl_obj, name)(*args, **kwargs)
        self._whole(_W, extra=extra)
        return rv

    method.__name__ = name
    return method


class WatchedList(_Proxy):
    """A list recorded as one variable: any read or change of it is one event."""

    __slots__ = ()

    def __getitem__(self, index: Any) -> Any:
        v = self._tl_obj[index]
        seq = next_seq()
        if STATE.on:
            record(_R, seq, self._tl_name, _v(v))
        return v

    def __setitem__(self, index: Any, value: Any) -> None:
        self._tl_obj[index] = value
        seq = next_seq()
        if STATE.on:
            record(_W, seq, self._tl_name, _v(value))

    def __delitem__(self, index: Any) -> None:
        del self._tl_obj[index]
        self._whole(_W)

    def __iter__(self) -> Iterator[Any]:
        self._whole(_R)
        return iter(self._tl_obj)

    def __len__(self) -> int:
        n = len(self._tl_obj)
        self._whole(_R)
        return n

    def __contains__(self, x: Any) -> bool:
        rv = x in self._tl_obj
        self._whole(_R)
        return rv

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Proxy):
            other = other._tl_obj
        self._whole(_R)
        return self._tl_obj == other  # type: ignore[no-any-return]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __iadd__(self, other: Iterable[Any]) -> WatchedList:  # type: ignore[misc]
        self._tl_obj.extend(other)
        self._whole(_W, extra=_COMMUTING)
        return self

    def __add__(self, other: Any) -> Any:
        self._whole(_R)
        return self._tl_obj + other

    def __bool__(self) -> bool:
        self._whole(_R)
        return bool(self._tl_obj)

    __hash__ = None  # type: ignore[assignment]

    for _n in (
        "index",
        "count",
        "copy",
        "__reversed__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__mul__",
        "__rmul__",
    ):
        locals()[_n] = _list_reader(_n)
    for _n in ("insert", "pop", "remove", "clear", "sort", "reverse"):
        locals()[_n] = _list_writer(_n)
    for _n in ("append", "extend"):  # appends commute (docs/analysis.md)
        locals()[_n] = _list_writer(_n, _COMMUTING)
    del _n


def _left_writer(name: str) -> Callable[..., Any]:
    """A deque method at its left end: a write of ``name<left>`` (two of them conflict)
    and a commuting write of the deque; a ``popleft`` of an empty deque read it."""

    def method(self: WatchedDeque, *args: Any, **kwargs: Any) -> Any:
        try:
            rv = getattr(self._tl_obj, name)(*args, **kwargs)
        except IndexError:  # popleft of an empty deque: it observed the length
            self._whole(_R)
            raise
        seq = next_seq()
        if STATE.on:
            record(_W, seq, f"{self._tl_name}<left>")
            record(_W, next_seq(), self._tl_name, extra=_COMMUTING)
        return rv

    method.__name__ = name
    return method


class WatchedDeque(_Proxy):
    """A ``collections.deque`` recorded as one variable, like a list, with its whole API:
    ``append``/``extend`` write it commuting, ``appendleft``/``extendleft``/``popleft``
    also write ``name<left>`` (``docs/analysis.md``, *Operations that commute*)."""

    __slots__ = ()

    for _n in (
        "__getitem__",
        "__setitem__",
        "__delitem__",
        "__iter__",
        "__len__",
        "__contains__",
        "__eq__",
        "__ne__",
        "__iadd__",
        "__add__",
        "__bool__",
        "__hash__",
        "index",
        "count",
        "copy",
        "__reversed__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__mul__",
        "__rmul__",
        "insert",
        "pop",
        "remove",
        "clear",
        "reverse",
        "append",
        "extend",
    ):
        locals()[_n] = WatchedList.__dict__[_n]
    rotate = _list_writer("rotate")
    __copy__ = _list_reader("__copy__")
    for _n in ("appendleft", "extendleft", "popleft"):
        locals()[_n] = _left_writer(_n)
    del _n

    @property
    def maxlen(self) -> int | None:
        """The deque's bound (it never changes: not recorded)."""
        return self._tl_obj.maxlen  # type: ignore[no-any-return]


class WatchedSet(_Proxy):
    """A set recorded like a dict's key set: ``name``, and ``name[x]`` per element."""

    __slots__ = ()

    def _var(self, x: Any) -> str:
        try:
            return self._tl_vars[x]
        except KeyError:
            name = self._tl_vars[x] = f"{self._tl_name}[{key_text(x)}]"
            return name
        except TypeError:  # unhashable: the set itself has raised
            return f"{self._tl_name}[?]"

    def _element(self, method: str, x: Any) -> None:
        # add/discard/remove of one element: a write of it, and a commuting write of
        # the set when its size changed (an element in or out); a remove that raised
        # is recorded too (the racing second remove)
        obj = self._tl_obj
        n = len(obj)
        try:
            getattr(obj, method)(x)
        finally:
            seq = next_seq()
            if STATE.on:
                record(_W, seq, self._var(x), depth=3)
                if len(obj) != n:
                    self._whole(_W, depth=4, extra=_COMMUTING)

    def add(self, x: Any) -> None:
        self._element("add", x)

    def discard(self, x: Any) -> None:
        self._element("discard", x)

    def remove(self, x: Any) -> None:
        self._element("remove", x)

    def __iter__(self) -> Iterator[Any]:
        self._whole(_R)
        return iter(self._tl_obj)

    def __len__(self) -> int:
        n = len(self._tl_obj)
        self._whole(_R)
        return n

    def __contains__(self, x: Any) -> bool:
        rv = x in self._tl_obj
        self._whole(_R)
        return rv

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Proxy):
            other = other._tl_obj
        self._whole(_R)
        return self._tl_obj == other  # type: ignore[no-any-return]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __bool__(self) -> bool:
        self._whole(_R)
        return bool(self._tl_obj)

    __hash__ = None  # type: ignore[assignment]

    for _n in (
        "copy",
        "union",
        "intersection",
        "difference",
        "symmetric_difference",
        "issubset",
        "issuperset",
        "isdisjoint",
        "__or__",
        "__and__",
        "__sub__",
        "__xor__",
        "__le__",
        "__lt__",
        "__ge__",
        "__gt__",
    ):
        locals()[_n] = _list_reader(_n)
    for _n in (
        "pop",
        "clear",
        "update",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
    ):
        locals()[_n] = _list_writer(_n)
    del _n


_OWN: Final = frozenset({"_tl_obj", "_tl_name", "_tl_vars", "__class__"})


class WatchedObject(_Proxy):
    """A plain object whose attribute reads and writes are recorded as ``name.attr``.

    Methods looked up through the proxy are not events; what the object's own methods
    do to ``self`` is not seen either (``watch_attrs`` records that).
    """

    __slots__ = ()

    def _var(self, attr: str) -> str:
        try:
            return self._tl_vars[attr]
        except KeyError:
            name = self._tl_vars[attr] = f"{self._tl_name}.{attr}"
            return name

    def __getattr__(self, attr: str) -> Any:
        obj = self._tl_obj
        try:
            # Straight from the instance dict: no call between the read and its number.
            v = obj.__dict__[attr]
        except (AttributeError, KeyError):
            v = getattr(obj, attr)
            if callable(v):
                return v
        seq = next_seq()
        if STATE.on:
            record(_R, seq, self._var(attr), _v(v))
        return v

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr in _OWN:
            raise AttributeError(f"cannot set {attr!r} on a watched object")
        setattr(self._tl_obj, attr, value)
        seq = next_seq()
        if STATE.on:
            record(_W, seq, self._var(attr), _v(value))

    def __delattr__(self, attr: str) -> None:
        delattr(self._tl_obj, attr)
        seq = next_seq()
        if STATE.on:
            record(_W, seq, self._var(attr), _MISSING)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Proxy):
            other = other._tl_obj
        return self._tl_obj == other  # type: ignore[no-any-return]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)


#: Values with nothing to record: they never change.
_IMMUTABLE: Final = (str, bytes, tuple, int, float, complex, frozenset, range, type(None))


_json_taught = False


def _teach_json(module: Any) -> None:
    """Let ``json.dumps`` write a watched container as the container it wraps.

    Its C encoder checks the exact type and hands anything else to ``default``; the
    standard ``default`` raises ``TypeError`` for every object, and still does for any
    object that is not a ``watch()`` proxy. Installed once, for good (a proxy may
    outlive the recording).
    """
    global _json_taught
    if _json_taught:
        return
    _json_taught = True
    encoder = module.JSONEncoder
    plain = encoder.default

    def default(self: Any, o: Any) -> Any:
        if issubclass(type(o), _Proxy):
            o._whole(_R)
            return o._tl_obj
        return plain(self, o)

    default.__doc__ = plain.__doc__
    default.__name__ = plain.__name__
    default.__qualname__ = plain.__qualname__
    encoder.default = default


def watch(obj: Any, name: str) -> Any:
    """Return a proxy of ``obj`` whose reads and writes are recorded.

    Mappings (``dict`` and any ``collections.abc.Mapping``, a ``MutableMapping``
    subclass included) are proxied through their item protocol, sequences (``list``,
    ``MutableSequence``) as one variable, sets (``set``, ``MutableSet``) like a key set,
    other objects through their attributes. An object that cannot be proxied
    faithfully (an immutable value; an object with items that is neither a mapping nor
    a sequence) is returned as it is, and one line on stderr says so.

    Args:
        obj: A container or plain object shared between threads or tasks.
        name: The variable name used in the trace and in reports.

    Returns:
        A ``WatchedDict``, ``WatchedList``, ``WatchedDeque``, ``WatchedSet`` or
        ``WatchedObject`` that
        behaves like ``obj`` (``isinstance`` included), or ``obj`` itself.

    Raises:
        TypeError: ``name`` is not a non-empty string.
    """
    if not isinstance(name, str) or not name:
        raise TypeError("watch() needs a non-empty variable name")
    if not _json_taught:
        when_imported("json.encoder", _teach_json)
    if isinstance(obj, _Proxy):
        obj = obj._tl_obj
    if isinstance(obj, dict | abc.Mapping):
        return WatchedDict(obj, name)
    if isinstance(obj, deque):
        return WatchedDeque(obj, name)
    if isinstance(obj, list | abc.MutableSequence):
        return WatchedList(obj, name)
    if isinstance(obj, set | abc.MutableSet):
        return WatchedSet(obj, name)
    kind = type(obj).__qualname__
    if isinstance(obj, _IMMUTABLE):
        say_once(f"watch({name!r}): a {kind} never changes, nothing to record; returned as is")
        return obj
    if hasattr(type(obj), "__getitem__"):
        say_once(
            f"watch({name!r}): a {kind} has items but is neither a mapping nor a sequence, "
            "so it cannot be proxied faithfully; returned as is (not recorded)"
        )
        return obj
    return WatchedObject(obj, name)


#: The proxy types ``watch`` makes (instrumented code leaves their accesses to them).
PROXY_TYPES: Final = (WatchedDict, WatchedList, WatchedDeque, WatchedSet, WatchedObject)
