from collections.abc import Callable
from typing import Any

def render(
    chunk: list[tuple[Any, ...]],
    st: Any,
    cache: dict[tuple[Any, ...], bytes],
    make_prefix: Callable[..., bytes],
    dumps_value: Callable[[Any], bytes],
    dumps_extra: Callable[[Any], bytes],
    raw: str,
    novalue: object,
    value_limit: int,
    fd: int,
    /,
) -> bytes | None: ...
def record(
    op: str,
    seq: int,
    target: str,
    value: Any = ...,
    extra: dict[str, Any] | None = ...,
    depth: int = ...,
) -> None: ...
def setup(
    local: Any,
    new_state: Callable[[], Any],
    skip_files: set[str],
    get_running_loop: Callable[[], Any],
    current_task_unit: Callable[[], Any],
    state: Any,
    novalue: object,
    /,
) -> None: ...
def shadow_setup(
    names: dict[int, Any],
    proxies: set[type],
    not_data: frozenset[type],
    immutable: frozenset[type],
    containers: frozenset[type],
    scalars: frozenset[type],
    sized: frozenset[type],
    whole: tuple[type, ...],
    local_type: type,
    entry: Callable[[Any, str | None], Any],
    failed: Callable[[Exception], None],
    key_text: Callable[[Any], str],
    builtin: Callable[[dict[str, Any], str], Any],
    counter: Any,
    read: str,
    write: str,
    missing: str,
    commuting: dict[str, Any],
    mapping: type,
    /,
) -> None: ...
def helper(
    kind: str, name: str | None, text: str | None, g: dict[str, Any] | None, module: str | None, /
) -> Callable[..., Any]: ...
def method_helper(
    name: str,
    dict_effect: str,
    other_effect: str,
    how: dict[type, str],
    fallback: Callable[..., Any] | None = None,
    /,
) -> Callable[..., Any]: ...
def unit_state_changed() -> None: ...
def gate(kind: str, fallback: Callable[..., Any], real: Any, /) -> Callable[..., Any]: ...
def gate_setup(untracked: frozenset[type], bases: tuple[type, ...], /) -> None: ...
