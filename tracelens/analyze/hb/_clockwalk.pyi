from typing import Any

def walk(
    n: int,
    zeros: tuple[tuple[Any, ...], ...],
    versions: bool,
    g: list[int],
    op: list[int],
    u: list[int],
    obj: list[int | None],
    other: list[int | None],
    msg: list[int | None],
    before: list[int],
    q_u: list[int],
    q_p: list[int],
    /,
) -> tuple[list[int], list[int], list[list[tuple[Any, ...]]] | None]: ...
