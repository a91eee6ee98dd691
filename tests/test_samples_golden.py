"""Golden tests: each bundled sample trace reports exactly the bug its example program has."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelens.analyze import analyze, load

SAMPLES = Path(__file__).resolve().parents[1] / "sample_logs"


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        # the article's unlocked update: seen lost, and predicted
        ("article_racy", {("data_race", "model['weight']"), ("lost_update", "model['weight']")}),
        # its locked fix, read after the joins without the lock: clean
        ("article_locked", set()),
        # check-then-act on a cache
        (
            "lazy_init",
            {
                ("data_race", "cache['client']"),
                ("lost_update", "cache['client']"),
                ("inconsistent_locking", "cache['client']"),
            },
        ),
        # a read-modify-write across an await, in two tasks of one thread
        ("async_lost_update", {("data_race", "stats['hits']"), ("lost_update", "stats['hits']")}),
        # a thread pool's workers bump a shared counter
        ("pool_counter", {("data_race", "counter['n']"), ("lost_update", "counter['n']")}),
        # the producer writes the dict after put(): not ordered with the consumer's read
        ("queue_handoff", {("data_race", "result['status']")}),
        # a consumer checks len(buffer) without holding the Condition's lock
        ("condition_buffer", {("data_race", "buffer")}),
        # the configuration is loaded after Event.set(), not before
        ("event_handoff", {("data_race", "config['url']")}),
        # a dict iterated while another thread inserts: a race on its key set
        ("dict_iteration", {("data_race", "registry")}),
    ],
)
def test_sample_reports_its_examples_bug(sample, expected):
    """The sample's findings, by kind and variable, are exactly the example's bug."""
    report = analyze(load(SAMPLES / f"{sample}.jsonl.gz"))

    assert {(f.kind, f.var) for f in report.findings} == expected
