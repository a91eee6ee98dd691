"""The loader on good, mixed and broken inputs."""

from __future__ import annotations

import gzip
import importlib
import os
import socket

import orjson
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from tests.traces import TraceBuilder, write_trace
from tracelens import schema as s
from tracelens.analyze import LoadOptions, TraceError, load
from tracelens.analyze.columns import EVENT_SCHEMA

load_module = importlib.import_module("tracelens.analyze.load")  # ``load`` is also a function


def small() -> TraceBuilder:
    b = TraceBuilder()
    b.read("t1", "x", 1)
    b.write("t2", "x", 2.5)
    b.acquire("t1", "L")
    b.release("t1", "L")
    return b


def lines(b: TraceBuilder) -> list[bytes]:
    return [orjson.dumps(e) for e in b.events]


@pytest.fixture
def reversed_events(tmp_path) -> pl.DataFrame:
    """small()'s events loaded from a file that holds them in reverse order."""
    b = small()
    path = write_trace(tmp_path / "t.jsonl", reversed(b.events))  # file order != seq order
    return load(path).events.collect()


def test_events_have_the_contract_columns(reversed_events):
    """The loaded events have exactly the columns and types of EVENT_SCHEMA."""
    assert reversed_events.schema == EVENT_SCHEMA


def test_events_are_sorted_by_pid_and_seq(reversed_events):
    """Events written in reverse order come out sorted by sequence number."""
    assert reversed_events["seq"].to_list() == [0, 1, 2, 3]


def test_events_get_value_text_unit_names_and_internal_filled_in(reversed_events):
    """Values become text, unit names default to worker-N, and internal defaults to False."""
    events = reversed_events
    assert events["value"].to_list() == ["1", "2.5", None, None]
    assert events["unit_name"].to_list() == ["worker-1", "worker-2", "worker-1", "worker-1"]
    assert events["internal"].to_list() == [False] * 4


def test_fast_path_and_careful_path_give_the_same_frame(tmp_path):
    """The careful path on a noisy trace gives the same frame as the fast path on the clean one."""
    b = small()
    clean = load(write_trace(tmp_path / "clean.jsonl", b.events)).events.collect()
    noisy = tmp_path / "noisy.jsonl"
    noisy.write_bytes(b"\n".join([b"not json", *lines(b)]) + b"\n")
    assert_frame_equal(clean, load(noisy).events.collect())


def test_application_lines_are_skipped_and_counted(tmp_path):
    """JSON lines of the application's own logging are skipped and counted, not malformed."""
    b = small()
    app = orjson.dumps({"event": "request done", "level": "info", "seq": 7, "pid": 100})
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join([app, *lines(b), app]) + b"\n")
    trace = load(path)
    assert (trace.stats.events, trace.stats.app_lines, trace.stats.malformed) == (4, 2, 0)
    assert trace.stats.lines == 6


def test_truncated_last_line_is_counted_with_its_line_number(tmp_path):
    """A last line cut short is one malformed line, reported as truncated at its line number."""
    path = tmp_path / "t.jsonl"
    raw = b"\n".join(lines(small()))
    path.write_bytes(raw[:-10])  # a killed recorder: the last line is cut short
    trace = load(path)
    assert (trace.stats.events, trace.stats.malformed) == (3, 1)
    assert trace.stats.malformed_examples == [(str(path), 4, "truncated last line")]


def test_non_json_line_is_reported_with_file_and_line(tmp_path):
    """A line that is not JSON is reported with its file and line number."""
    path = tmp_path / "t.jsonl"
    ls = lines(small())
    path.write_bytes(b"\n".join([*ls[:2], b"Traceback (most recent call last):", *ls[2:]]) + b"\n")
    trace = load(path)
    assert trace.stats.events == 4
    assert trace.stats.malformed_examples == [(str(path), 3, "not a JSON object")]


def test_binary_garbage_is_skipped(tmp_path):
    """Lines of binary bytes are skipped as malformed binary data."""
    path = tmp_path / "t.jsonl"
    ls = lines(small())
    path.write_bytes(b"\n".join([ls[0], b"\xff\xfe\x00\x01garbage", b'{"tl":1,\xff}', *ls[1:]]))
    trace = load(path)
    assert (trace.stats.events, trace.stats.malformed) == (4, 2)
    reasons = [r for _, _, r in trace.stats.malformed_examples]
    assert reasons == ["binary data, not a JSON line", "binary data, not a JSON line"]


def bad_seq(events):
    return {**events[0], s.SEQ: "seven"}


def no_unit(events):
    return {k: v for k, v in events[1].items() if k != s.UNIT}


def no_var(events):
    return {k: v for k, v in events[0].items() if k != s.VAR}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [(bad_seq, "wrong type"), (no_unit, "missing field 'unit'"), (no_var, "missing field 'var'")],
    ids=["wrong type", "no unit", "no var"],
)
def test_wrong_types_and_missing_fields_are_malformed(tmp_path, bad, reason):
    """A line with a wrongly typed or a missing field is malformed, and says which."""
    b = small()
    path = write_trace(tmp_path / "t.jsonl", [*b.events, bad(b.events)])
    trace = load(path)
    assert (trace.stats.events, trace.stats.malformed) == (4, 1)
    assert [(n, r.split(":")[0]) for _, n, r in trace.stats.malformed_examples] == [(5, reason)]


@pytest.mark.parametrize(
    ("field", "value"),
    [(s.SEQ, -1), (s.SEQ, 2**40), (s.PID, -1), (s.PID, 2**23)],
    ids=["negative seq", "seq beyond 2**40", "negative pid", "pid beyond 2**23"],
)
def test_seq_and_pid_beyond_the_order_key_are_malformed(tmp_path, field, value):
    """A ``seq`` or ``pid`` that the packed order key ``pid << 40 | seq`` cannot hold is
    a malformed line that says so (it would collide with another event's key)."""
    b = small()
    path = write_trace(tmp_path / "t.jsonl", [*b.events, {**b.events[0], field: value}])
    trace = load(path)
    assert (trace.stats.events, trace.stats.malformed) == (4, 1)
    assert trace.stats.malformed_examples[0][1:] == (
        5,
        f"field '{field}' out of range"
        + (" (0 to 2**40 - 1)" if field == s.SEQ else " (0 to 2**23 - 1)"),
    )


def test_the_largest_seq_and_pid_load(tmp_path):
    """``seq`` 2**40 - 1 and ``pid`` 2**23 - 1, the largest the order key holds, load."""
    b = small()
    big = {**b.events[0], s.SEQ: 2**40 - 1, s.PID: 2**23 - 1}
    trace = load(write_trace(tmp_path / "t.jsonl", [*b.events, big]))
    assert (trace.stats.events, trace.stats.malformed) == (5, 0)


def test_malformed_lines_are_listed_in_file_order(tmp_path):
    """Several malformed lines are all counted, and listed with line and reason in file order."""
    b = small()
    bad = [bad_seq(b.events), no_unit(b.events), no_var(b.events)]
    path = write_trace(tmp_path / "t.jsonl", [*b.events, *bad])
    trace = load(path)
    assert (trace.stats.events, trace.stats.malformed) == (4, 3)
    assert [(n, r.split(":")[0]) for _, n, r in trace.stats.malformed_examples] == [
        (5, "wrong type"),
        (6, "missing field 'unit'"),
        (7, "missing field 'var'"),
    ]


def test_gzip_file(tmp_path):
    """A .gz trace is decompressed and loads all its events in order."""
    b = small()
    trace = load(write_trace(tmp_path / "t.jsonl.gz", b.events))
    assert trace.stats.events == 4
    assert trace.events.collect()["seq"].to_list() == [0, 1, 2, 3]


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    """A gzip-compressed file is decompressed even when its name does not end in .gz."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(gzip.compress(b"\n".join(lines(small()))))
    assert load(path).stats.events == 4


def test_glob_and_several_files(tmp_path):
    """A glob reads every matching file into one frame sorted by seq."""
    b = small()
    write_trace(tmp_path / "a.jsonl", b.events[:2])
    write_trace(tmp_path / "b.jsonl", b.events[2:])
    trace = load(str(tmp_path / "*.jsonl"))
    assert len(trace.stats.files) == 2
    assert trace.events.collect()["seq"].to_list() == [0, 1, 2, 3]


def test_a_file_named_twice_is_read_once(tmp_path):
    """A file named twice, directly and through a glob, is read only once."""
    path = write_trace(tmp_path / "a.jsonl", small().events)
    assert load([path, str(path), str(tmp_path / "*.jsonl")]).stats.events == 4


def test_several_processes_get_qualified_units(tmp_path):
    """With several processes, unit and object ids are qualified by their pid."""
    a, b = TraceBuilder(pid=1), TraceBuilder(pid=2)
    a.read("t1", "x")
    b.read("t1", "x")
    b._ev("t0", s.Op.FORK, 1, "main", **{s.OBJ: "t1", s.KIND: s.Kind.THREAD})
    events = load(write_trace(tmp_path / "t.jsonl", b.events + a.events)).events.collect()
    assert events.select("pid", "unit", "obj").rows() == [
        (1, "1/t1", None),
        (2, "2/t1", None),
        (2, "2/t0", "2/t1"),
    ]


def test_one_process_keeps_plain_unit_ids(tmp_path):
    """With one process, unit ids stay unqualified."""
    events = load(write_trace(tmp_path / "t.jsonl", small().events)).events.collect()
    assert set(events["unit"]) == {"t1", "t2"}


def test_newer_format_version_is_a_clear_error(tmp_path):
    """A trace of a newer format version is an error that says to upgrade."""
    b = small()
    b.events[0][s.TL] = s.FORMAT_VERSION + 1
    with pytest.raises(TraceError, match=r"newer than this tracelens reads .*upgrade"):
        load(write_trace(tmp_path / "t.jsonl", b.events))


def test_empty_file_is_a_clear_error(tmp_path):
    """An empty file is an error that says it holds no tracelens events in 0 lines."""
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with pytest.raises(TraceError, match=r"^no tracelens events in .*empty.jsonl \(0 lines"):
        load(path)


def test_only_application_lines_is_a_clear_error(tmp_path):
    """A file of only application lines is an error that counts application and malformed lines."""
    path = tmp_path / "app.jsonl"
    path.write_bytes(b'{"event": "hello"}\n')
    with pytest.raises(TraceError, match=r"1 application, 0 malformed"):
        load(path)


def test_missing_file_is_a_clear_error(tmp_path):
    """A missing file is an error that names it and says there is no such file."""
    with pytest.raises(TraceError, match=r"^cannot read .*nope.jsonl: no such file$"):
        load(tmp_path / "nope.jsonl")


def test_glob_matching_nothing_is_a_clear_error(tmp_path):
    """A glob that matches no file is an error that says so."""
    with pytest.raises(TraceError, match=r"^no file matches"):
        load(str(tmp_path / "*.jsonl"))


def test_directory_is_a_clear_error(tmp_path):
    """A directory given as a trace is an error that says it is a directory."""
    with pytest.raises(TraceError, match="is a directory"):
        load(tmp_path)


def test_messages_are_one_line(tmp_path):
    """A load error's message is a single line."""
    with pytest.raises(TraceError) as err:
        load(tmp_path / "nope.jsonl")
    assert "\n" not in str(err.value)


def test_progress_reaches_the_total(tmp_path):
    """The last progress call reports the whole file's size as done and as total."""
    path = write_trace(tmp_path / "t.jsonl", small().events)
    calls: list[tuple[int, int]] = []
    load(path, progress=lambda done, total: calls.append((done, total)))
    size = path.stat().st_size
    assert calls[-1] == (size, size)


def test_value_keeps_strings_and_numbers_as_text(tmp_path):
    """Strings, numbers and booleans become text in a String value column; null stays null."""
    b = TraceBuilder()
    for v in ("abc", 3, 1.5, True, None):
        b.write("t1", "x", v)
    events = load(write_trace(tmp_path / "t.jsonl", b.events)).events.collect()
    assert events["value"].to_list() == ["abc", "3", "1.5", "true", None]
    assert events["value"].dtype == pl.String


def test_large_files_are_read_in_chunks_with_the_same_result(tmp_path):
    """A file read in small chunks and sorted column-wise gives the same events and stats."""
    path = write_trace(tmp_path / "t.jsonl", small().events)
    expected = load(path)
    careful = LoadOptions(
        fast_path_max_bytes=0,
        chunk_bytes=100,  # several chunks, lines cut across
        low_memory_sort_rows=0,  # the column-wise sort
    )
    actual = load(path, options=careful)
    assert_frame_equal(expected.events.collect(), actual.events.collect())
    assert expected.stats == actual.stats


# --- values: floats read as written -----------------------------------------------------

VALUES = (1.0, 0.1 + 0.2, 3, "abc", True, None)
#: What ``Trace.events["value"]`` shows for ``VALUES``: a float as the recorder wrote it
#: (shortest round-trip text, ``1.0`` not ``1``), an int as its digits, a string as
#: itself, a boolean in JSON spelling, null as null.
VALUE_TEXTS = ["1.0", "0.30000000000000004", "3", "abc", "true", None]


def value_trace(values=VALUES) -> TraceBuilder:
    b = TraceBuilder()
    for v in values:
        b.write("t1", "x", v)
    return b


def test_float_values_read_exactly_as_written(tmp_path):
    """Floats, ints, strings, booleans and null read back as the recorder wrote them."""
    events = load(write_trace(tmp_path / "t.jsonl", value_trace().events)).events.collect()
    assert events["value"].to_list() == VALUE_TEXTS


@pytest.mark.parametrize("how", ["gzip", "noisy", "chunks"])
def test_float_values_read_as_written_on_the_careful_path(tmp_path, how):
    """Gzip, noisy and chunked reads also keep values as the recorder wrote them."""
    options = LoadOptions()
    events = value_trace().events
    if how == "gzip":
        path = write_trace(tmp_path / "t.jsonl.gz", events)
    elif how == "noisy":  # a bad line: the careful path parses the good lines in groups
        path = tmp_path / "t.jsonl"
        path.write_bytes(b"\n".join([b"oops", *(orjson.dumps(e) for e in events)]) + b"\n")
    else:
        options = LoadOptions(fast_path_max_bytes=0, chunk_bytes=150)
        path = write_trace(tmp_path / "t.jsonl", events)
    assert load(path, options=options).events.collect()["value"].to_list() == VALUE_TEXTS


def test_float_values_in_all_their_written_forms(tmp_path):
    """Negative zero, exponents and large or tiny floats read back in their JSON spelling."""
    floats = (-0.0, 1e300, 1.5e-7, 1e16, 2.5, -3.0, 0.1)
    path = write_trace(tmp_path / "t.jsonl", value_trace(floats).events)
    written = [orjson.dumps(v).decode() for v in floats]  # "-0.0", "1e+300", "1.5e-7", ...
    assert load(path).events.collect()["value"].to_list() == written


_SPACES = st.sampled_from(["", " ", "\t", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000"])
_NUMBERS = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: orjson.dumps(f).decode()),
    st.sampled_from(["1e5", "-2E-3", "7.25e+10", "0.0", "-0", "1.", "12a", "-", "x"]),
)
_NOISE = st.one_of(
    st.sampled_from(['"value"', '"val"', '"value', ":", ",", '\\"', "{", "}", "é"]),
    _SPACES,
    _NUMBERS,
    st.text(max_size=5),
)
#: Lines that hold a ``"value": number`` pair with odd spacing, among noise.
_VALUE_LINES = st.builds(
    lambda before, sp1, sp2, number, after: f'{before}"value"{sp1}:{sp2}{number}{after}',
    st.lists(_NOISE, max_size=4).map("".join),
    st.lists(_SPACES, max_size=3).map("".join),
    st.lists(_SPACES, max_size=3).map("".join),
    _NUMBERS,
    st.lists(_NOISE, max_size=4).map("".join),
) | st.lists(_NOISE, max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(_VALUE_LINES, min_size=1, max_size=5))
def test_the_float_hint_finds_every_line_the_token_pass_would_take(texts):
    """Wherever polars' float-token pattern finds a token, the byte search that lets the
    loader skip the token pass finds a possible one too (in that line and in the chunk)."""
    texts = [x.replace("\n", " ") for x in texts]
    chunk = "".join(x + "\n" for x in texts).encode()
    lines_with_token = pl.Series("line", texts).str.extract(load_module._FLOAT_VALUE, 1)
    for text, token in zip(texts, lines_with_token.to_list(), strict=True):
        if token is not None:
            assert load_module._FLOAT_HINT.search(text.encode()) is not None
    tokens = load_module._float_tokens(chunk)
    if lines_with_token.null_count() < len(texts):
        assert tokens is not None and tokens.to_list() == lines_with_token.to_list()


def test_chunks_without_float_values_skip_the_token_pass():
    """A chunk whose values are ints, strings and booleans has no float token to take."""
    chunk = b"\n".join(lines(value_trace((3, "1.5", True, None, -7)))) + b"\n"
    assert load_module._float_tokens(chunk) is None
    with_float = chunk + orjson.dumps({"value": 2.0}) + b"\n"
    tokens = load_module._float_tokens(with_float)
    assert tokens is not None and tokens.to_list()[-1] == "2.0"


def test_strings_that_look_like_numbers_stay_strings(tmp_path):
    """A string that looks like a number reads back as that string, unchanged."""
    values = ("1.0", "1e5", "0.30000000000000004", 7, 7.0)
    path = write_trace(tmp_path / "t.jsonl", value_trace(values).events)
    assert load(path).events.collect()["value"].to_list() == [str(v) for v in values]


def test_a_value_key_inside_a_string_or_a_nested_object_is_not_taken(tmp_path):
    """A "value" key inside a string or a nested object is not taken for the event's value."""
    b = value_trace((2, 2.0, 2.5))
    b.events[0] = {"text": '{"value":1.5}', **b.events[0]}
    b.events[1] = {"text": '{"value":1.5}', **b.events[1]}
    b.events[2] = {"extra": {"value": 9.5}, **b.events[2]}  # before the real one
    path = write_trace(tmp_path / "t.jsonl", b.events)
    assert load(path).events.collect()["value"].to_list() == ["2", "2.0", "2.5"]


def test_line_numbers_count_blank_lines_on_the_fast_path(tmp_path):
    """Blank lines are not counted as lines but still count towards line numbers."""
    b = small()
    no_unit = {k: v for k, v in b.events[1].items() if k != s.UNIT}
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join([*lines(b)[:2], b"", b"  ", orjson.dumps(no_unit)]) + b"\n")
    trace = load(path)
    assert trace.stats.lines == 3 and trace.stats.malformed == 1
    assert trace.stats.malformed_examples == [(str(path), 5, "missing field 'unit'")]


# --- files are closed --------------------------------------------------------------------


@pytest.mark.parametrize("how", ["gzip", "truncated gzip", "plain", "noisy"])
def test_no_file_is_left_open(tmp_path, how):
    """Loading plain, gzip, truncated gzip or noisy traces leaves no file open."""
    import gc
    import warnings

    data = b"".join(orjson.dumps(e) + b"\n" for e in small().events)
    path = tmp_path / "t.jsonl"
    if how == "gzip":
        path.write_bytes(gzip.compress(data))
    elif how == "truncated gzip":  # a killed recorder: the stream ends early
        path.write_bytes(gzip.compress(data * 50)[:-40])
    elif how == "noisy":
        path.write_bytes(b"oops\n" + data)
    else:
        path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        trace = load(path)
        del trace
        gc.collect()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


def test_a_gzip_trace_cut_short_keeps_what_was_decompressed(tmp_path):
    """A gzip trace cut short keeps the events before the cut and says the rest is unreadable."""
    b = TraceBuilder()
    for i in range(3000):
        b.write(f"t{i % 5}", f"v{i % 97}", i * 7)
    data = b"".join(orjson.dumps(e) + b"\n" for e in b.events)
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(gzip.compress(data)[:-200])  # a killed recorder
    trace = load(path)
    assert 2500 < trace.stats.events < 3000
    reasons = [r for _, _, r in trace.stats.malformed_examples]
    assert any(r.startswith("unreadable from here on") for r in reasons)
    assert trace.events.collect()["seq"].to_list() == list(range(trace.stats.events))


def test_concatenated_gzip_members_are_all_read(tmp_path):
    """Every member of a concatenated gzip file is read."""
    ls = lines(small())
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(
        gzip.compress(b"\n".join(ls[:2]) + b"\n") + gzip.compress(b"\n".join(ls[2:]) + b"\n")
    )
    trace = load(path)
    assert (trace.stats.events, trace.stats.malformed) == (4, 0)


def _bound_socket(path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # the socket file stays after the socket is closed


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (os.mkfifo, "is a FIFO"),
        (_bound_socket, "is a socket"),
    ],
    ids=["fifo", "socket"],
)
def test_non_regular_file_is_refused_before_it_is_opened(tmp_path, make, what):
    """A FIFO or socket given as a trace is refused at once (a FIFO would block a read)."""
    path = tmp_path / "special"
    make(path)
    with pytest.raises(TraceError, match=rf"special {what}, not a regular trace file$"):
        load(path)


def test_device_is_refused():
    """A character device such as /dev/zero is refused, not read for ever."""
    with pytest.raises(TraceError, match=r"^/dev/zero is a character device"):
        load("/dev/zero")


def test_line_longer_than_the_limit_is_an_error_naming_file_and_line(tmp_path):
    """A line that runs past LoadOptions.max_line_bytes is an error naming file:line."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines(small())) + b"\n" + b"x" * 5000)
    opts = LoadOptions(max_line_bytes=1000, chunk_bytes=256)
    with pytest.raises(TraceError, match=r"t\.jsonl:5: line longer than 1,000 bytes"):
        load(path, options=opts)


def test_file_without_newlines_is_an_error(tmp_path):
    """A file of one long line and no newline is refused through the careful reader."""
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"x" * 5000)
    with pytest.raises(TraceError, match=r"x\.jsonl:1: line longer than"):
        load(path, options=LoadOptions(max_line_bytes=1000))


def test_lines_within_the_limit_load(tmp_path):
    """Lines at most max_line_bytes long load as usual through the careful reader."""
    path = write_trace(tmp_path / "t.jsonl", small().events)
    longest = max(len(x) for x in lines(small()))
    opts = LoadOptions(max_line_bytes=longest + 1, chunk_bytes=64, fast_path_max_bytes=0)
    assert load(path, options=opts).stats.events == 4


def test_a_file_without_newlines_skips_the_fast_path(tmp_path, monkeypatch):
    """A file with a window of half the line limit and no newline is not given to scan_ndjson."""
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"x" * 5000)
    scanned: list[object] = []
    monkeypatch.setattr(pl, "scan_ndjson", lambda *a, **k: scanned.append(a) or 1 / 0)
    with pytest.raises(TraceError, match="line longer than"):
        load(path, options=LoadOptions(max_line_bytes=1000))
    assert scanned == []


def test_a_normal_file_keeps_the_fast_path(tmp_path, monkeypatch):
    """A file whose lines are all shorter than half the limit is read by the fast path."""
    path = write_trace(tmp_path / "t.jsonl", small().events)
    careful: list[object] = []
    real = pl.read_ndjson  # what the careful reader parses its chunks with
    monkeypatch.setattr(pl, "read_ndjson", lambda *a, **k: careful.append(a) or real(*a, **k))
    longest = max(len(x) for x in lines(small()))
    assert load(path, options=LoadOptions(max_line_bytes=2 * longest + 2)).stats.events == 4
    assert careful == []


@pytest.mark.parametrize("name", ["run[1].jsonl", "what?.jsonl", "a*b.jsonl"])
def test_a_trace_whose_name_has_glob_characters_loads_its_events(tmp_path, name):
    """A file named run[1].jsonl is read as that file, not as a pattern matching nothing."""
    b = small()
    path = b.write_to(tmp_path / name)
    assert load(path).events.collect().height == len(b.events)
