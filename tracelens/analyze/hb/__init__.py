"""The predictive analyses: happens-before (FastTrack), lock sets, lock order, deadlocks.

Predictive: they report what another interleaving of the same run can do, not only
what this one did. The package, from the bottom up (each module imports only those
above it):

* ``clocks``: the vector-clock walk over synchronisation events, one method per edge
  kind (acquire, release, fork, join, send, receive), and ``known``, the query of
  what a unit knew of another at a point;
* ``locksets``: the locks each unit holds, final holders, nested acquires;
* ``shared``: the shared pass (``tables``) that runs both once per trace;
* ``pairs``: pairs of racing accesses into finding rows;
* the leaves, each a function of the shared pass: ``datarace.data_race``,
  ``lockset.inconsistent_locking``, ``lockorder.lock_order_inversion``,
  ``deadlock.deadlock``, ``deadlock.hang``;
* ``analysis``: ``run``, the analysis protocol's entry for all four (and ``predictive``,
  its rows in one frame).
"""

from __future__ import annotations

from tracelens.analyze.hb.analysis import KINDS, predictive, run
from tracelens.analyze.hb.datarace import data_race
from tracelens.analyze.hb.deadlock import deadlock, hang
from tracelens.analyze.hb.lockorder import lock_order_inversion
from tracelens.analyze.hb.lockset import inconsistent_locking
from tracelens.analyze.hb.shared import Tables, clear_cache, tables

__all__ = [
    "KINDS",
    "Tables",
    "clear_cache",
    "data_race",
    "deadlock",
    "hang",
    "inconsistent_locking",
    "lock_order_inversion",
    "predictive",
    "run",
    "tables",
]
