"""Faults inside the recorder leave the program's state as it would be without tracelens."""

from __future__ import annotations

import threading

import pytest

from tracelens.record import locks


def _raise_on(op):
    real = locks.record

    def record(o, *args, **kwargs):
        if o == op:
            raise KeyboardInterrupt
        return real(o, *args, **kwargs)

    return record


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
@pytest.mark.parametrize("how", ["with", "acquire"])
def test_an_interrupt_while_recording_an_acquire_leaves_the_lock_free(
    recording, monkeypatch, kind, how
):
    """KeyboardInterrupt raised in the recording of an acquire: the acquire raises, unheld."""
    recording()
    lock = getattr(threading, kind)()  # the recorded factory, looked up once recording
    monkeypatch.setattr(locks, "record", _raise_on("acquire"))

    with pytest.raises(KeyboardInterrupt):
        if how == "with":
            with lock:
                pass
        else:
            lock.acquire()
    monkeypatch.undo()

    assert lock.acquire(False)  # free: another acquire gets it at once
    lock.release()
    if kind == "RLock":
        with pytest.raises(RuntimeError):
            lock.release()  # and not held twice over


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_an_interrupt_while_recording_a_release_still_releases(recording, monkeypatch, kind):
    """KeyboardInterrupt raised in the recording of a release: the lock is released anyway."""
    recording()
    lock = getattr(threading, kind)()  # the recorded factory, looked up once recording
    lock.acquire()
    monkeypatch.setattr(locks, "record", _raise_on("release"))

    with pytest.raises(KeyboardInterrupt):
        lock.release()
    monkeypatch.undo()

    probe = threading.Thread(target=lambda: box.append(lock.acquire(False)))
    box: list[bool] = []
    probe.start()
    probe.join()
    assert box == [True]
