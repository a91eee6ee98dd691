"""The runtime of instrumented code: the helpers its accesses call, and variable names.

``tracelens.record.instrument`` rewrites a module's attribute, item and ``global``
accesses into calls of the helpers here (``helpers`` makes them for one module). Each
helper performs the access exactly as the original code would, takes its sequence
number right after it with no Python call in between (``tracelens.record._core``
says why that makes the recorded order the real one), records it, and returns what
the access gave. An access that raises (``d[k]`` of a missing key, ``del`` of a
missing item) is recorded too, then raises as before. The functions here are the
reference; with the C accelerator, ``helpers`` hands out their C twins
(``_speedups.helper`` and ``method_helper``, set up by ``_c_setup``), which record the
same events without a Python frame (``tests/record/test_shadow_twins.py``).

What is recorded: reads and writes of attributes and items of objects, key sets of
dicts, dict subclasses, other mappings and sets (an insert or delete writes it;
iteration, ``len`` and the other builtins of ``BUILTIN_READERS``, truth tests, ``==``,
``copy``, ``keys`` read it), lists and deques as one variable each (indices shift),
and module globals that a function declares ``global``. The writes that commute with
each other carry ``kind: "commuting"`` (``CONTAINER_METHODS`` and ``docs/analysis.md``, *Operations
that commute*): the key-set write of an insert or delete of one key (the key itself is
written too), ``add``/``discard``/``remove`` of one element of a set (which also write
``name[x]``), ``append``/``extend`` of a list or deque, and ``appendleft``/``popleft``
of a deque (which also write ``name<left>``, its left end: two of them conflict).
Not recorded: attributes whose value is a function, method, class or module (method
lookups), immutable values' items
(strings, bytes, tuples), ``threading.local`` attributes, and objects that
``watch()`` already records.

Names. A variable is one object's attribute or key, named after the object:
``Counter.n`` (an instance of ``Counter``), ``model_params['weight']`` (a dict held by
the global ``model_params``), ``Locator._deferred['x']`` (a dict held by an attribute).
A second object that would get the same name gets ``#2``, ``#3``... Objects that can
be weakly referenced lose their name when they die, so a new object at the same
address is a new variable (ThreadSanitizer resets its shadow memory on free). Dicts,
lists and sets cannot be weakly referenced: the latest ``MAX_KEPT`` of them are kept
alive; an older one is let go and its name forgotten (``_keep``), so that an address
reused by a new object never inherits an old name.
"""

from __future__ import annotations

import builtins
import operator
import os
import sys
import threading
import types
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from tracelens import schema as s
from tracelens.record import _core
from tracelens.record._core import (
    NOVALUE,
    SCALARS,
    SIZED,
    STATE,
    key_text,
    next_seq,
    original_allocate_lock,
    record,
    safe_value,
    say_once,
)

_getframe: Final = sys._getframe

__all__ = ["BUILTIN_READERS", "CONTAINER_METHODS", "MAX_KEPT", "helpers", "kept", "label_of"]

_R: Final = s.Op.READ
_W: Final = s.Op.WRITE
_MISSING: Final = "<missing>"
_UNSET: Final = object()
#: The extra field of a commuting write (``schema.Kind.COMMUTING``).
_COMMUTING: Final = {s.KIND: s.Kind.COMMUTING}

#: Values whose loads are not data accesses: method lookups and the like.
_NOT_DATA: Final = frozenset(
    {
        types.FunctionType,
        types.MethodType,
        types.BuiltinFunctionType,
        types.BuiltinMethodType,
        types.WrapperDescriptorType,
        types.MethodWrapperType,
        types.MethodDescriptorType,
        types.ModuleType,
        staticmethod,
        classmethod,
        property,
    }
)
#: Containers whose items can change: their item accesses are recorded.
_KEYED: Final = (dict,)
_WHOLE: Final = (list, deque, set, bytearray)
#: Immutable values: their items never race.
_IMMUTABLE: Final = frozenset({str, bytes, tuple, frozenset, range, int, float, bool})

#: Objects that cannot be weakly referenced kept alive at most, so that their names
#: stay theirs (``_keep``).
MAX_KEPT: Final = 10_000

_lock = original_allocate_lock()
#: id(object) -> (weak reference or the object itself, is it weak, name)
_names: dict[int, _Entry] = {}
_counts: dict[str, int] = {}
_kept: deque[int] = deque()  # ids of the objects kept alive, oldest first


def _forget(i: int) -> Callable[[Any], None]:
    def forget(_ref: Any) -> None:
        _names.pop(i, None)
        _private.pop(i, None)  # its kept events: no other unit can touch it now

    return forget


def label_of(obj: Any, hint: str | None = None) -> str:
    """The name of an object's variables (see the module docstring).

    Args:
        obj: The object.
        hint: What the program calls it where it was first seen (a global's name, the
            owner's name and the attribute); else its type's name.
    """
    return _entry(obj, hint)[2]


#: A name's entry: (weak reference or the object, whether weak, name, the names of the
#: object's variables by attribute, and by key; each made once)
_Entry = tuple[Any, bool, str, dict[str, str], dict[Any, str]]


def _entry(obj: Any, hint: str | None) -> _Entry:
    i = id(obj)
    entry = _names.get(i)
    if entry is not None:
        held = entry[0]
        if (held() if entry[1] else held) is obj:
            return entry
    with _lock:
        entry = _names.get(i)
        if entry is not None:
            held = entry[0]
            if (held() if entry[1] else held) is obj:
                return entry
        if hint is None:
            hint = obj.__name__ if type(obj) is types.ModuleType else type(obj).__qualname__
        n = _counts[hint] = _counts.get(hint, 0) + 1
        name = hint if n == 1 else f"{hint}#{n}"
        try:
            entry = (weakref.ref(obj, _forget(i)), True, name, {}, {})
            _names[i] = entry
        except TypeError:
            entry = _keep(i, obj, name)
    return entry


def _keep(i: int, obj: Any, name: str) -> _Entry:
    """Name an object that cannot be weakly referenced, keeping it alive (the lock held).

    Each call also looks at the oldest few kept objects and lets go of those that only
    the registry still holds (the program dropped them): they are freed, and their
    names forgotten, so that an address reused by a new object never inherits an old
    name. Past ``MAX_KEPT`` objects the oldest is let go anyway; if it lives on and is
    accessed again it gets a new name (its accesses before and after are then two
    variables: a race between them could be missed, never made up).
    """
    entry: _Entry = (obj, False, name, {}, {})
    _names[i] = entry
    _kept.append(i)
    for _ in range(min(_SWEEP, len(_kept))):
        old = _kept[0]
        seen = _names.get(old)
        if seen is None or seen[1]:
            _kept.popleft()
            continue
        held = seen[0]
        del seen
        # references: the registry's tuple, ``held``, the call's argument, and ``entry``
        # when it is the one just made
        if sys.getrefcount(held) <= (4 if held is obj else 3) or len(_kept) > MAX_KEPT:
            _kept.popleft()
            del _names[old]
            _private.pop(old, None)
        else:
            _kept.rotate(-1)
        del held
    return entry


def kept() -> int:
    """How many objects that cannot be weakly referenced are kept alive now."""
    return len(_kept)


#: Kept objects looked at per new one (``_keep``).
_SWEEP: Final = 8


def _v(v: Any) -> Any:
    return v if type(v) in SCALARS else safe_value(v)


def _failed(e: Exception) -> None:
    say_once(f"could not record an access ({type(e).__name__}: {e}); the program runs on")


def _hide(e: BaseException) -> None:
    """Leave the helper that calls this out of ``e``'s traceback before it re-raises ``e``
    with a bare ``raise`` (which adds no entry): the program's tracebacks then read as
    in the plain run, the program's frame then whatever the access itself called. The C
    helpers have no Python frame to hide."""
    tb = e.__traceback__
    if tb is not None and tb.tb_frame is _getframe(1):
        e.__traceback__ = tb.tb_next


def _skip_owner(o: Any) -> bool:
    return isinstance(o, threading.local) or type(o) in _PROXIES


#: ``watch()`` proxies record their own accesses (filled in by ``helpers``).
_PROXIES: set[type] = set()


# --- objects only one unit has touched --------------------------------------------------

#: Variables an object may have kept aside; past that it is recorded in full.
MAX_PRIVATE_VARS: Final = 256
#: Whether events of objects only one unit has touched are kept aside (``defer_private``).
_defer = False
#: id(object) -> [its registry entry, the unit state that alone has touched it (``None``
#: once another has), its kept events: variable -> [the last write, the last commuting
#: write since, the last read since] (``None`` once shared)]
_private: dict[int, list[Any]] = {}


def defer_private(on: bool) -> None:
    """Keep aside (``True``) or record at once the events of objects only one unit has
    touched (``docs/instrumentation.md``, *Objects only one unit touches*).

    While one unit alone has touched an object, the events of each of its variables are
    kept aside, not written: the last write, and the last commuting write and the last
    read since (its very first access is written at once, so that the trace shows the
    object was seen). When another unit (or an asyncio task) touches it, what is kept is
    appended to the first unit's buffer, with its own sequence numbers, sites and unit,
    before the new access, and the object is recorded in full from then on. An object
    that dies unshared takes its kept events with it. Sound: an access of another unit
    that races with (or falls inside a read-modify-write window of) a dropped event
    does so with a kept one too, which follows it in its unit's program order and
    conflicts with at least what it conflicts with.
    """
    global _defer
    _defer = on
    _private.clear()
    c = sys.modules.get("tracelens.record._speedups")
    if c is not None:
        c.private_setup(_private, _emit_kept, on)


def _event(o: Any, entry: _Entry, op: str, seq: int, var: str, v: Any, extra: Any = None) -> None:
    """Record an event of a variable of ``o`` (called by the ``*_event`` functions), or
    keep it aside while ``o`` is private to the current unit (``defer_private``)."""
    if not _defer or _core.schedule_point is not None:  # a forced schedule: every event
        record(op, seq, var, v, extra=extra, depth=4)
        return
    made = _core.py_event(op, seq, var, v, extra, 4)
    if made is None:
        return
    st, rec, f = made
    in_task = rec[7] is not None  # a task's units share their thread: not tracked
    i = id(o)
    kept = owner = None
    with _lock:  # the owner's keep and another unit's take-over never interleave
        p = _private.get(i)
        if p is None or p[0] is not entry:  # first seen: its toucher owns it
            _private[i] = [entry, None, None] if in_task else [entry, st, {}]
            p = None  # and its first access is written: the object is seen
        owner = None if p is None else p[1]
        if p is not None and owner is st and not in_task:
            _keep_event(p[2], var, rec, op, extra)
            if len(p[2]) <= MAX_PRIVATE_VARS:
                return
        if p is not None and owner is not None:  # another unit, or too many variables
            kept, p[1], p[2] = p[2], None, None  # in full from now
    if kept is not None and owner is not None:
        _emit_kept(owner, kept)
        if owner is st and not in_task:  # this event was kept, and went out with them
            return
    _core.py_append(st, rec, f)


def _keep_event(
    kept: dict[str, list[Any]], var: str, rec: tuple[Any, ...], op: str, extra: Any
) -> None:
    slots = kept.get(var)
    if slots is None:
        slots = kept[var] = [None, None, None]
    if op == _R:
        slots[2] = rec
    elif extra is _COMMUTING:
        slots[1] = rec
    else:  # a write: what it follows conflicts with nothing more than it does
        slots[0], slots[1], slots[2] = rec, None, None


def _emit_kept(owner: _core.UnitState, kept: dict[str, list[Any]]) -> None:
    """Append an object's kept events to the buffer of the unit that made them."""
    for slots in kept.values():
        for rec in slots:
            if rec is not None:
                _core.py_append(owner, rec)
    sink = STATE.sink
    if owner.dead and sink is not None:  # its thread has ended: the sink may be done with it
        sink.flush_unit(owner)


def _forget_private_after_fork() -> None:
    """In a forked child: its objects are copies, touched after everything the parent did."""
    defer_private(_defer)  # empties the kept events, and the C helpers' cache of them


os.register_at_fork(after_in_child=_forget_private_after_fork)


# --- attributes -------------------------------------------------------------------------


def _attr_event(op: str, seq: int, o: Any, name: str, v: Any) -> None:
    """Record an attribute access (called by the generated helpers)."""
    try:
        t = type(v)
        if v is not NOVALUE and (t in _NOT_DATA or isinstance(v, type)):
            return
        if type(o) in _PROXIES or isinstance(o, threading.local):
            return
        entry = _names.get(id(o))
        if entry is None or (entry[0]() if entry[1] else entry[0]) is not o:
            entry = _entry(o, None)
        var = entry[3].get(name)
        if var is None:
            var = entry[3][name] = f"{entry[2]}.{name}"
        if t in _CONTAINERS:
            _entry(v, var)  # the container is named after who holds it
        if v is not NOVALUE and t not in SCALARS:
            v = safe_value(v)
        _event(o, entry, op, seq, var, v)
    except Exception as e:
        _failed(e)


_CONTAINERS: Final = frozenset({dict, list, set, deque, bytearray})
_CONTAINER_BASES: Final = (dict, list, set, deque, bytearray)
#: Types that are never containers, told apart first (``_tracked``).
_UNTRACKED: Final = _IMMUTABLE | {type(None), complex}


def _tracked(o: Any) -> bool:
    """Whether ``o``'s key set (or whole) is recorded when it is read whole: a dict,
    list, set, deque or bytearray, a subclass of one, or a ``Mapping``. A ``watch()``
    proxy records itself; immutable values never change. Asked of ``type(o)``, never of
    ``o.__class__``, which may be the program's code."""
    t = type(o)
    if t in _CONTAINERS:
        return True
    if t in _UNTRACKED or t in _PROXIES:
        return False
    return issubclass(t, _CONTAINER_BASES) or issubclass(t, Mapping)


def _key_set_kind(o: Any) -> int:
    """How an item store into ``o`` tells whether it inserted a key: 1 a dict or a dict
    subclass (by its own storage, ``dict.__contains__``, which runs no code of the
    program's), 2 any other ``Mapping`` (not asked: every store writes the key set, see
    ``_set_item``), 0 neither (no key set)."""
    t = type(o)
    if t is dict:
        return 1
    if t in _CONTAINERS or t in _IMMUTABLE or t in _PROXIES:
        return 0
    if issubclass(t, dict):
        return 1
    return 2 if issubclass(t, Mapping) else 0


_GET: Final = """
def get(o):
    try:
        v = o.{name}
    except AttributeError as e:
        seq = next_seq()
        if STATE.on:
            event(R, seq, o, {text!r}, NOVALUE)
        hide(e)
        raise
    except BaseException as e:
        hide(e)
        raise
    seq = next_seq()
    if STATE.on:
        event(R, seq, o, {text!r}, v)
    return v

def set(o, v):
    try:
        o.{name} = v
    except BaseException as e:
        hide(e)
        raise
    seq = next_seq()
    if STATE.on:
        event(W, seq, o, {text!r}, v)

def delete(o):
    try:
        del o.{name}
    except BaseException as e:
        seq = next_seq()
        if STATE.on:
            event(W, seq, o, {text!r}, NOVALUE)
        hide(e)
        raise
    seq = next_seq()
    if STATE.on:
        event(W, seq, o, {text!r}, NOVALUE)

def aug(o, op, rhs):
    try:
        v = o.{name}
        seq = next_seq()
        if STATE.on:
            event(R, seq, o, {text!r}, v)
        v = op(v, rhs)
        o.{name} = v
    except BaseException as e:
        hide(e)
        raise
    seq = next_seq()
    if STATE.on:
        event(W, seq, o, {text!r}, v)
"""


def _attr_helpers(name: str, text: str) -> dict[str, Callable[..., Any]]:
    """``get``, ``set``, ``delete`` and ``aug`` of the attribute ``name`` (mangled) as
    the program writes it (``text``)."""
    scope: dict[str, Any] = {"next_seq": next_seq, "STATE": STATE, "event": _attr_event}
    scope.update(R=_R, W=_W, NOVALUE=NOVALUE, hide=_hide)
    exec(compile(_GET.format(name=name, text=text), "<tracelens>", "exec"), scope)
    return {"get": scope["get"], "set": scope["set"], "del": scope["delete"], "aug": scope["aug"]}


# --- items ------------------------------------------------------------------------------


def _item_event(op: str, seq: int, o: Any, key: Any, v: Any, hint: str, key_set: bool) -> None:
    """Record an item access; ``key_set``: the access also wrote the key set."""
    try:
        t = type(o)
        if t in _IMMUTABLE or t in _PROXIES:
            return
        entry = _names.get(id(o))
        if entry is None or (entry[0]() if entry[1] else entry[0]) is not o:
            entry = _entry(o, hint)
        if isinstance(o, _WHOLE):
            _event(o, entry, op, seq, entry[2], NOVALUE)
            return
        try:
            var = entry[4].get(key)
        except TypeError:  # an unhashable key (the access itself has raised or will)
            var = None
        if var is None:
            var = f"{entry[2]}[{key_text(key)}]"
            if type(key) in SCALARS:
                entry[4][key] = var
        if v is not NOVALUE and type(v) not in SCALARS:
            v = safe_value(v)
        _event(o, entry, op, seq, var, v)
        if key_set:  # an insert or delete of one key: commutes with those of others
            _event(o, entry, _W, next_seq(), entry[2], NOVALUE, _COMMUTING)
    except Exception as e:
        _failed(e)


def _subclass_size(o: Any) -> int:
    """The size of a dict subclass's storage (``dict.__len__``, none of the program's
    code), so that a ``__missing__`` that inserts (``defaultdict``) is seen; -1 for any
    other object."""
    t = type(o)
    return -1 if t is dict or t in _CONTAINERS or not issubclass(t, dict) else dict.__len__(o)


def _get_item(o: Any, k: Any, hint: str) -> Any:
    size = _subclass_size(o)
    try:
        v = o[k]
    except (KeyError, IndexError) as e:
        seq = next_seq()
        if STATE.on:
            _item_event(_R, seq, o, k, _MISSING, hint, False)
        _hide(e)
        raise
    except BaseException as e:
        _hide(e)
        raise
    seq = next_seq()
    if STATE.on:  # a defaultdict's d[k] of a missing key inserted it: a write
        grew = size >= 0 and dict.__len__(o) != size
        _item_event(_W if grew else _R, seq, o, k, v, hint, grew)
    return v


def _set_item(o: Any, k: Any, v: Any, hint: str) -> None:
    # A store of a new key writes the key set. A dict (or a dict subclass) is asked by
    # its own storage; another mapping is not asked (its ``in`` may run the program's
    # ``__getitem__``): each of its stores is taken to write the key set (commuting).
    kind = _key_set_kind(o)
    new = kind == 2
    if kind == 1:
        try:
            new = not dict.__contains__(o, k)
        except TypeError:  # a key only the subclass's own __setitem__ can take
            new = True
    try:
        o[k] = v
    except BaseException as e:
        _hide(e)
        raise
    seq = next_seq()
    if STATE.on:
        _item_event(_W, seq, o, k, v, hint, new)


def _del_item(o: Any, k: Any, hint: str) -> None:
    try:
        del o[k]
    except BaseException as e:  # a del that raises (KeyError) is recorded: the racing second del
        seq = next_seq()
        if STATE.on:
            _item_event(_W, seq, o, k, _MISSING, hint, _key_set_kind(o) != 0)
        _hide(e)
        raise
    seq = next_seq()
    if STATE.on:
        _item_event(_W, seq, o, k, _MISSING, hint, _key_set_kind(o) != 0)


def _aug_item(o: Any, k: Any, op: Callable[[Any, Any], Any], rhs: Any, hint: str) -> None:
    size = _subclass_size(o)
    try:
        v = o[k]
        seq = next_seq()
        if STATE.on:
            _item_event(_R, seq, o, k, v, hint, False)
        v = op(v, rhs)
        o[k] = v
    except BaseException as e:
        _hide(e)
        raise
    seq = next_seq()
    if STATE.on:  # counts[k] += 1 of a defaultdict's missing key inserted it
        _item_event(_W, seq, o, k, v, hint, size >= 0 and dict.__len__(o) != size)


def _contains(o: Any, k: Any, hint: str) -> bool:
    try:
        present = k in o
    except BaseException as e:
        _hide(e)
        raise
    seq = next_seq()
    if STATE.on:  # a read of the key (a list or set: of the whole)
        _item_event(_R, seq, o, k, NOVALUE if present else _MISSING, hint, False)
    return present


# --- iteration --------------------------------------------------------------------------


def _iterate(o: Any, hint: str) -> Any:
    """``iter(o)``; for a dict, list, set or deque, iterating is an interval: its key set
    (or whole) is read when the iterator is made and again when it is used up or
    dropped, so an insert by another unit in between races with the iteration."""
    tracked = _tracked(o)
    try:
        it = iter(o)
    except BaseException as e:
        _hide(e)
        raise
    if not tracked:
        return it
    seq = next_seq()
    if STATE.on:
        _whole_event(seq, o, hint)
    return _Iteration(it, o, hint)


class _Iteration:
    """An iterator over a container that records the end of the iteration."""

    __slots__ = ("_hint", "_it", "_obj", "_open")

    def __init__(self, it: Any, obj: Any, hint: str) -> None:
        self._it, self._obj, self._hint, self._open = it, obj, hint, True

    def __iter__(self) -> _Iteration:
        return self

    # What ``iter(o)`` or ``reversed(o)`` gave the program is otherwise the container's
    # own iterator: its class (``it.__class__``, ``isinstance``), length hint, pickle
    # (of the plain iterator) and other methods (``__setstate__``) are the iterator's.
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return type(self._it)

    def __length_hint__(self) -> int:
        return operator.length_hint(self._it)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self._it.__reduce_ex__(protocol)

    def __getattr__(self, name: str) -> Any:
        if name in _Iteration.__slots__:  # not set yet
            raise AttributeError(name)
        return getattr(self._it, name)

    def __next__(self) -> Any:
        try:
            return next(self._it)
        except StopIteration:
            self._close()
            raise
        except BaseException as e:  # "dictionary changed size during iteration"
            _hide(e)
            raise

    def _close(self) -> None:
        if self._open:
            self._open = False
            seq = next_seq()
            if STATE.on:  # from __next__ or __del__, called by the program's frame
                _whole_event(seq, self._obj, self._hint, depth=4)

    def __del__(self) -> None:
        self._close()


def _whole_event(seq: int, o: Any, hint: str, depth: int = 3) -> None:
    try:
        record(_R, seq, label_of(o, hint), NOVALUE, depth=depth)
    except Exception as e:
        _failed(e)


# --- builtins that read a whole container ------------------------------------------------

#: Builtins whose call reads the whole of its (first) argument at once, and those that
#: make an iterator over it (an interval, like a ``for`` loop: ``_Iteration``). The
#: rewrite passes the callee as the program looked it up; the helper records only when
#: it IS the builtin (a program's own ``len`` is called as it is, unrecorded).
_READERS: Final = ("len", "bool", "list", "tuple", "set", "frozenset", "sorted", "sum")
_READERS_ONE: Final = ("min", "max", "any", "all")  # min/max: of one iterable only
_ITERATORS: Final = ("iter", "enumerate", "zip", "reversed")
BUILTIN_READERS: Final = frozenset((*_READERS, *_READERS_ONE, *_ITERATORS))
#: ``sep.join(x)`` of a str or bytes ``sep`` reads ``x`` whole too.
_JOINS: Final = frozenset({str.join, bytes.join})


def _builtin_helper(name: str) -> Callable[..., Any]:
    """The helper of a call of the builtin ``name``: ``call(f, hints, *args, **kw)``,
    ``hints`` the positional arguments as the program wrote them."""
    real = getattr(builtins, name)
    if name in _ITERATORS:
        return _iterator_helper(name, real)
    one = name in ("min", "max")

    def call(f: Any, hints: tuple[str, ...], /, *args: Any, **kwargs: Any) -> Any:
        if f is not real or not args or not hints[0] or (one and len(args) != 1):
            return f(*args, **kwargs)
        if not _tracked(args[0]):
            return f(*args, **kwargs)
        o = args[0]
        try:
            return f(*args, **kwargs)
        finally:  # it read the whole, raising or not (sum of a list with a str in it)
            seq = next_seq()
            if STATE.on:
                _whole_event(seq, o, hints[0])

    call.__name__ = f"tracelens_{name}"
    return call


def _iterator_helper(name: str, real: Any) -> Callable[..., Any]:
    def call(f: Any, hints: tuple[str, ...], /, *args: Any, **kwargs: Any) -> Any:
        if f is not real or not args:
            return f(*args, **kwargs)
        if name == "zip":
            tracked = [i for i, a in enumerate(args) if i < len(hints) and hints[i] and _tracked(a)]
        elif (name == "enumerate" and len(args) <= 2) or (len(args) == 1 and not kwargs):
            tracked = [0] if hints[0] and _tracked(args[0]) else []
        else:  # iter(callable, sentinel), or a call that raises TypeError as it is
            tracked = []
        if not tracked:
            return f(*args, **kwargs)
        if name in ("iter", "reversed"):
            o = args[0]
            it = f(o)
            seq = next_seq()
            if STATE.on:
                _whole_event(seq, o, hints[0])
            return _Iteration(it, o, hints[0])
        wrapped = list(args)  # enumerate, zip: over the recorded iterations
        for i in tracked:
            o = args[i]
            it = iter(o)
            seq = next_seq()
            if STATE.on:
                _whole_event(seq, o, hints[i])
            wrapped[i] = _Iteration(it, o, hints[i])
        return f(*wrapped, **kwargs)

    call.__name__ = f"tracelens_{name}"
    return call


def _join(f: Any, hints: tuple[str, ...], /, *args: Any, **kwargs: Any) -> Any:
    """``sep.join(x)``, the bound method given: reads ``x`` whole when ``sep`` is a str
    or bytes and ``x`` a recorded container."""
    fn = getattr(type(getattr(f, "__self__", None)), "join", None)
    if fn not in _JOINS or len(args) != 1 or not hints[0] or not _tracked(args[0]):
        return f(*args, **kwargs)
    o = args[0]
    try:
        return f(o)
    finally:
        seq = next_seq()
        if STATE.on:
            _whole_event(seq, o, hints[0])


def _truth(o: Any, hint: str) -> bool:
    """A truth test (``if d:``, ``while lst:``, ``not s``): of a container, a read of its
    key set (its length)."""
    tracked = _tracked(o)
    b = bool(o)
    if tracked:
        seq = next_seq()
        if STATE.on:
            _whole_event(seq, o, hint)
    return b


def _compare(equal: bool) -> Callable[..., Any]:
    def compare(a: Any, b: Any, hint_a: str, hint_b: str) -> Any:
        """``a == b`` (or ``!=``): of containers, a read of each one's whole."""
        ta, tb = bool(hint_a) and _tracked(a), bool(hint_b) and _tracked(b)
        try:
            return a == b if equal else a != b
        finally:
            if ta or tb:
                seq = next_seq()
                if STATE.on:
                    if ta:
                        _whole_event(seq, a, hint_a)
                        seq = next_seq() if tb else seq
                    if tb:
                        _whole_event(seq, b, hint_b)

    compare.__name__ = "tracelens_eq" if equal else "tracelens_ne"
    return compare


_COMPARES: Final = {"eq": _compare(True), "ne": _compare(False)}


# --- methods of the builtin containers --------------------------------------------------

#: method -> (what it does to a dict's key or key set, to a list/set/deque): "r" read,
#: "w" write, "" not recorded. A dict method on a key ("rk", "wk") names the key. Which
#: of the writes commute: ``_COMMUTING_METHODS``.
CONTAINER_METHODS: Final = {
    "get": ("rk", ""),
    "setdefault": ("wk", ""),
    "pop": ("wk", "w"),
    "popitem": ("w", ""),
    "update": ("w", "w"),
    "clear": ("w", "w"),
    "keys": ("r", ""),
    "values": ("r", ""),
    "items": ("r", ""),
    "copy": ("r", "r"),
    "append": ("", "w"),
    "appendleft": ("", "w"),
    "extend": ("", "w"),
    "extendleft": ("", "w"),
    "insert": ("", "w"),
    "remove": ("", "w"),
    "index": ("", "r"),
    "count": ("", "r"),
    "sort": ("", "w"),
    "reverse": ("", "w"),
    "popleft": ("", "w"),
    "rotate": ("", "w"),
    "add": ("", "w"),
    "discard": ("", "w"),
    "difference_update": ("", "w"),
    "intersection_update": ("", "w"),
    "symmetric_difference_update": ("", "w"),
}


#: (type, method) -> how its write commutes (``docs/analysis.md``): "c" a commuting
#: write of the whole; "e" one element of a set (a write of ``name[x]``, and a
#: commuting write of the whole when the set changed); "l" the left end of a deque (a
#: write of ``name<left>``, and a commuting write of the whole; a ``popleft`` that found
#: the deque empty read it). Every other write is a plain write.
_COMMUTING_METHODS: Final[dict[tuple[type, str], str]] = {
    (list, "append"): "c",
    (list, "extend"): "c",
    (deque, "append"): "c",
    (deque, "extend"): "c",
    (deque, "appendleft"): "l",
    (deque, "extendleft"): "l",
    (deque, "popleft"): "l",
    (set, "add"): "e",
    (set, "discard"): "e",
    (set, "remove"): "e",
}


def _method_helper(name: str, dict_effect: str, other_effect: str) -> Callable[..., Any]:
    def call(o: Any, hint: str, /, *args: Any, **kwargs: Any) -> Any:
        t = type(o)
        effect = dict_effect if t is dict else other_effect if t in _CONTAINERS else ""
        size: Callable[[Any], object] = len
        if not effect and dict_effect:
            kind = _key_set_kind(o)
            if kind == 1:  # a dict subclass, sized by its storage
                effect, size = dict_effect, dict.__len__
            elif kind == 2:  # another mapping, not sized (see _unsized)
                effect, size = dict_effect, _unsized if dict_effect == "wk" else _same
        if not effect:
            try:
                return getattr(o, name)(*args, **kwargs)
            except BaseException as e:
                _hide(e)
                raise
        keyed = effect.endswith("k") and bool(args)
        how = _COMMUTING_METHODS.get((t, name), "") if effect == "w" else ""
        before = size(o)
        try:
            out = getattr(o, name)(*args, **kwargs)
        except (KeyError, IndexError, ValueError) as e:
            seq = next_seq()
            if STATE.on:
                if how == "l":  # a popleft of an empty deque: it read the length
                    _method_event("r", seq, o, hint, args, False, False)
                else:
                    _method_event(effect, seq, o, hint, args, keyed, False, how)
            _hide(e)
            raise
        except BaseException as e:
            _hide(e)
            raise
        seq = next_seq()
        if STATE.on:
            _method_event(effect, seq, o, hint, args, keyed, size(o) != before, how)
        return out

    call.__name__ = f"tracelens_{name}"
    return call


def _unsized(o: Any) -> object:
    """The "size" of a mapping that is not a dict, not asked (``len`` would run the
    program's ``__len__``): a new object each time, never equal to the one before, so
    that a keyed method is taken to have inserted or removed its key (a commuting write
    of the key set): recorded conservatively."""
    return object()


def _same(o: Any) -> object:
    """The "size" of a mapping whose method cannot insert or remove one key."""
    return 0


def _method_event(
    effect: str,
    seq: int,
    o: Any,
    hint: str,
    args: tuple[Any, ...],
    keyed: bool,
    resized: bool,
    how: str = "",
) -> None:
    """Record a container method call: on one key of a dict (``keyed``), else on the
    whole container; a keyed call that inserted or removed the key also writes the key
    set (commuting), and one that did neither (``setdefault`` of a present key) only
    read. ``how``: how a write commutes (``_COMMUTING_METHODS``)."""
    try:
        entry = _entry(o, hint)
        label = entry[2]
        if keyed:
            op = _W if effect == "wk" and resized else _R
            _event(o, entry, op, seq, f"{label}[{key_text(args[0])}]", NOVALUE)
            if resized:
                _event(o, entry, _W, next_seq(), label, NOVALUE, _COMMUTING)
        elif how == "c":
            _event(o, entry, _W, seq, label, NOVALUE, _COMMUTING)
        elif how == "e" and args:
            _event(o, entry, _W, seq, f"{label}[{key_text(args[0])}]", NOVALUE)
            if resized:
                _event(o, entry, _W, next_seq(), label, NOVALUE, _COMMUTING)
        elif how == "l":
            _event(o, entry, _W, seq, f"{label}<left>", NOVALUE)
            _event(o, entry, _W, next_seq(), label, NOVALUE, _COMMUTING)
        else:
            _event(o, entry, _R if effect == "r" else _W, seq, label, NOVALUE)
    except Exception as e:
        _failed(e)


# --- module globals ---------------------------------------------------------------------


def _global_helpers(g: dict[str, Any], module: str) -> dict[str, Callable[..., Any]]:
    """Loads and stores of the module globals that functions declare ``global``."""

    def var(name: str) -> str:
        return name if module == "__main__" else f"{module}.{name}"

    def load(name: str) -> Any:
        v = g.get(name, _UNSET)  # no KeyError: a NameError has no context, as in Python
        if v is _UNSET:
            try:
                return _builtin(g, name)
            except NameError as e:
                _hide(e)
                raise
        seq = next_seq()
        if STATE.on:
            t = type(v)
            if t not in _NOT_DATA and not isinstance(v, type):
                _global_event(_R, seq, var(name), v)
        return v

    def store(name: str, v: Any) -> None:
        g[name] = v
        seq = next_seq()
        if STATE.on:
            _global_event(_W, seq, var(name), v)

    def aug(name: str, op: Callable[[Any, Any], Any], rhs: Any) -> None:
        try:
            v = g[name] if name in g else _builtin(g, name)
            seq = next_seq()
            if STATE.on:
                _global_event(_R, seq, var(name), v)
            v = op(v, rhs)
        except BaseException as e:
            _hide(e)
            raise
        g[name] = v
        seq = next_seq()
        if STATE.on:
            _global_event(_W, seq, var(name), v)

    return {"load": load, "store": store, "aug": aug}


def _builtin(g: dict[str, Any], name: str) -> Any:
    """A name that is not a global: a builtin, else ``NameError`` as Python raises it."""
    b = g.get("__builtins__", builtins)
    found = b.get(name, _MISSING) if isinstance(b, dict) else getattr(b, name, _MISSING)
    if found is _MISSING:
        try:
            raise NameError(f"name {name!r} is not defined", name=name)
        except NameError as e:
            _hide(e)  # raised as if by the program's own frame (the C helpers call this too)
            raise
    return found


def _global_event(op: str, seq: int, name: str, v: Any) -> None:
    try:
        if type(v) in _CONTAINERS:
            label_of(v, name.rsplit(".", 1)[-1])
        record(op, seq, name, _v(v), depth=3)
    except Exception as e:
        _failed(e)


# --- what a rewritten module gets -------------------------------------------------------

_attr_cache: dict[tuple[str, str], dict[str, Callable[..., Any]]] = {}
_builtins_cache: dict[str, Callable[..., Any]] = {}


def _c_helpers(
    c: Any, needs: dict[str, tuple[str, ...]], g: dict[str, Any], module: str
) -> dict[str, Any]:
    """The C twins (``_speedups.helper``, ``method_helper``) of the attribute, item,
    global and container method helpers: the same accesses and events as the Python
    functions above, without their frames. Iteration stays in Python."""
    out: dict[str, Any] = {}
    owner = None if module == "__main__" else module
    for helper, what in needs.items():
        if helper in out:
            continue
        if what[0] == "attr":
            _, kind, mangled, text = what
            out[helper] = c.helper(f"attr_{kind}", mangled, text, None, None)
        elif what[0] == "item" and what[1] != "iter":
            out[helper] = c.helper(f"item_{what[1]}", None, None, None, None)
        elif what[0] == "global":
            out[helper] = c.helper(f"global_{what[1]}", None, None, g, owner)
        elif what[0] in ("builtin", "join", "truth", "compare"):
            # gates: in C on anything but a container, else the Python helper
            fallback = _python_helper(what)
            if what[0] == "truth":
                out[helper] = c.gate("truth", fallback, None)
            elif what[0] == "compare":
                out[helper] = c.gate(what[1], fallback, None)
            else:
                real = getattr(builtins, what[1]) if what[0] == "builtin" else None
                out[helper] = c.gate("call", fallback, real)
        elif what[0] == "method":
            name = what[1]
            how = {t: h for (t, m), h in _COMMUTING_METHODS.items() if m == name}
            fallback = _method_helper(name, *CONTAINER_METHODS[name])
            out[helper] = c.method_helper(name, *CONTAINER_METHODS[name], how, fallback)
    return out


def _python_helper(what: tuple[str, ...]) -> Callable[..., Any]:
    """The Python helper of a builtin's call, ``sep.join``, a truth test or ``==``."""
    if what[0] == "builtin":
        fn = _builtins_cache.get(what[1])
        if fn is None:
            fn = _builtins_cache[what[1]] = _builtin_helper(what[1])
        return fn
    if what[0] == "join":
        return _join
    if what[0] == "truth":
        return _truth
    return _COMPARES[what[1]]


def helpers(needs: dict[str, tuple[str, ...]], g: dict[str, Any], module: str) -> dict[str, Any]:
    """The helpers a rewritten module calls, by the names the rewrite gave them.

    Args:
        needs: Helper name -> what it is: ``("attr", kind, mangled, text)``, ``("item",
            kind)``, ``("method", name)`` or ``("global", kind)``.
        g: The module's globals (for ``global`` helpers).
        module: The module's name.
    """
    from tracelens.record import watch

    _PROXIES.update(watch.PROXY_TYPES)
    c = _core.speedups
    out: dict[str, Any] = {} if c is None else _c_helpers(c, needs, g, module)
    globals_ = None
    items = {"get": _get_item, "set": _set_item, "del": _del_item, "aug": _aug_item}
    items["in"] = _contains
    items["iter"] = _iterate
    for helper, what in needs.items():
        if helper in out:
            continue
        if what[0] == "attr":
            _, kind, mangled, text = what
            key = (mangled, text)
            fns = _attr_cache.get(key)
            if fns is None:
                fns = _attr_cache[key] = _attr_helpers(mangled, text)
            out[helper] = fns[kind]
        elif what[0] == "item":
            out[helper] = items[what[1]]
        elif what[0] == "method":
            out[helper] = _method_helper(what[1], *CONTAINER_METHODS[what[1]])
        elif what[0] in ("builtin", "join", "truth", "compare"):
            out[helper] = _python_helper(what)
        else:
            if globals_ is None:
                globals_ = _global_helpers(g, module)
            out[helper] = globals_[what[1]]
    return out


def _c_setup(c: Any) -> None:
    """Hand the registry and the rules above to the C helpers (``_speedups.helper``)."""
    counter = next_seq.__self__  # type: ignore[attr-defined]
    c.shadow_setup(
        _names,
        _PROXIES,
        _NOT_DATA,
        _IMMUTABLE,
        _CONTAINERS,
        SCALARS,
        SIZED,
        _WHOLE,
        threading.local,
        _entry,
        _failed,
        key_text,
        _builtin,
        counter,
        _R,
        _W,
        _MISSING,
        _COMMUTING,
        Mapping,
    )
    c.gate_setup(_UNTRACKED, _CONTAINER_BASES)


if _core.speedups is not None:
    _c_setup(_core.speedups)
