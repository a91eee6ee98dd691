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
