"""Operations that commute (``docs/analysis.md``): correct programs stay quiet, and each
one's racy twin (a whole-container read or an order-dependent operation racing with
them, or two writes of one key) stays reported. Programs run under ``tracelens run``.
"""

from __future__ import annotations

import pytest

import tracelens
from tests.helpers import read_trace
from tests.record.test_instrument import _found, _run
from tracelens import schema as s

WORKERS = """
import threading
from collections import deque

{setup}

def work(i):
    {body}

threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
{before_join}
for t in threads:
    t.join()
{after}
"""


def _program(setup: str, body: str, before_join: str = "", after: str = "") -> str:
    return WORKERS.format(setup=setup, body=body, before_join=before_join, after=after)


CASES = {
    # (setup, worker body, main before join, main after join)
    "dict_distinct_keys": ("results = {}", 'results[f"job_{i}"] = i', "", "print(len(results))"),
    "dict_same_key": ("results = {}", 'results["job"] = i', "", ""),
    "dict_iterated_while_inserting": (
        "results = {}",
        'results[f"job_{i}"] = i',
        "for k in results: pass",
        "",
    ),
    "dict_setdefault_and_pop": (
        "results = {}",
        'results.setdefault(f"a_{i}", i)\n    results.pop(f"a_{i}")',
        "",
        "",
    ),
    "list_appends": ("results = []", "results.append(i)", "", "print(len(results))"),
    "list_count_while_appending": ("results = []", "results.append(i)", "results.count(0)", ""),
    "list_len_while_appending": ("results = []", "results.append(i)", "n = len(results)", ""),
    "list_len_while_appending_locked": (
        "results = []\nLOCK = threading.Lock()",
        "with LOCK:\n        results.append(i)",
        "with LOCK:\n    n = len(results)",
        "",
    ),
    "defaultdict_counts_distinct_keys": (
        "from collections import defaultdict\nresults = defaultdict(int)",
        'results[f"job_{i}"] += 1',
        "",
        "print(len(results))",
    ),
    "defaultdict_iterated_while_counting": (
        "from collections import defaultdict\nresults = defaultdict(int)",
        'results[f"job_{i}"] += 1',
        "for k in results: pass",
        "",
    ),
    "dict_truth_while_inserting": ("results = {}", "results[i] = i", "n = 1 if results else 0", ""),
    "list_pop_while_appending": ("results = [0] * 10", "results.append(i)", "results.pop()", ""),
    "set_distinct_adds": ("seen = set()", "seen.add(i)", "", "print(sorted(seen))"),
    "set_same_element": ("seen = set()", "seen.add(1)", "", ""),
    "set_iterated_while_adding": ("seen = set()", "seen.add(i)", "for x in seen: pass", ""),
    "deque_appends_and_poplefts": (
        "d = deque(range(100))",
        "d.append(i) if i else d.popleft()",
        "",
        "print(len(d))",
    ),
    "deque_two_poplefts": ("d = deque(range(100))", "d.popleft()", "", ""),
    "deque_appendleft_and_popleft": (
        "d = deque(range(100))",
        "d.appendleft(i) if i else d.popleft()",
        "",
        "",
    ),
}


@pytest.mark.parametrize(
    ("case", "race"),
    [
        ("dict_distinct_keys", None),
        ("dict_same_key", "results['job']"),
        ("dict_iterated_while_inserting", "results"),
        ("dict_setdefault_and_pop", None),
        ("list_appends", None),
        ("list_count_while_appending", "results"),
        ("list_len_while_appending", "results"),
        ("list_len_while_appending_locked", None),
        ("dict_truth_while_inserting", "results"),
        ("defaultdict_counts_distinct_keys", None),
        ("defaultdict_iterated_while_counting", "results"),
        ("list_pop_while_appending", "results"),
        ("set_distinct_adds", None),
        ("set_same_element", "seen[1]"),
        ("set_iterated_while_adding", "seen"),
        ("deque_appends_and_poplefts", None),
        ("deque_two_poplefts", "d<left>"),
        ("deque_appendleft_and_popleft", "d<left>"),
    ],
)
def test_commuting_operations_are_quiet_and_their_racy_twins_reported(tmp_path, case, race):
    """Commuting operations from several threads report nothing; each racy twin is a data race."""
    found = _found(_run(tmp_path, _program(*CASES[case])))
    races = {var for kind, var in found if kind == "data_race"}
    if race is None:
        assert found == set()
    else:
        assert race in races


def _kinds(path):
    return [(e["event"], e["var"], e.get(s.KIND)) for e in read_trace(path) if "var" in e]


C = s.Kind.COMMUTING


class TestWatchRecordsCommutingWrites:
    def test_an_insert_writes_the_key_set_commuting(self, recording):
        """A new key of a watched dict writes the key set as a commuting write."""
        path = recording()
        d = tracelens.watch({}, "d")
        d["k"] = 1
        tracelens.shutdown()

        assert _kinds(path) == [("write", "d['k']", None), ("write", "d", C)]

    def test_clear_is_a_plain_write(self, recording):
        """clear() does not commute with inserts: a plain write of the key set."""
        path = recording()
        d = tracelens.watch({"k": 1}, "d")
        d.clear()
        tracelens.shutdown()

        assert _kinds(path) == [("write", "d", None)]

    def test_append_is_commuting_and_pop_is_not(self, recording):
        """A watched list's append writes it commuting, its pop plainly."""
        path = recording()
        lst = tracelens.watch([], "l")
        lst.append(1)
        lst.pop()
        tracelens.shutdown()

        assert _kinds(path) == [("write", "l", C), ("write", "l", None)]

    def test_set_add_writes_the_element_and_the_set(self, recording):
        """add() of a new element writes s[x] and the set (commuting), of a present one s[x]."""
        path = recording()
        st = tracelens.watch(set(), "s")
        st.add(1)
        st.add(1)
        tracelens.shutdown()

        assert _kinds(path) == [
            ("write", "s[1]", None),
            ("write", "s", C),
            ("write", "s[1]", None),
        ]
