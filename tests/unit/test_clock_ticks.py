"""Clock ticks: each worker ticks only the clock partitions it consumes, so a partition gets
one tick per interval however many workers run."""

from faust.types import TP

from citywatch.agents.housekeeping import owned_partitions


def test_a_worker_ticks_only_the_clock_partitions_it_consumes() -> None:
    assignment = {TP("cw.clock", 3), TP("cw.clock", 1), TP("cw.readings", 0),
                  TP("cw-rule-state-changelog", 2)}
    assert owned_partitions(assignment, "cw.clock") == [1, 3]
    assert owned_partitions(set(), "cw.clock") == []
