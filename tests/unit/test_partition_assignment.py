"""Every worker gets work for any number of workers up to the partition count, with the
standby setting CityWatch runs (broker.standby_replicas), on Faust's own assignor: from a
fresh group, and when one worker joins a group that already split the partitions (the
assignment is sticky, which is where Faust's default of one standby leaves the newcomer
idle: a third worker on 4 partitions got nothing)."""

from __future__ import annotations

import pytest
from faust.assignor.client_assignment import CopartitionedAssignment
from faust.assignor.copartitioned_assignor import CopartitionedAssignor

from citywatch.settings import BrokerSettings

PARTITIONS = (2, 4, 8, 12, 16)


def assign(partitions: int, workers: int, replicas: int,
           before: dict[str, list[int]] | None = None) -> dict[str, list[int]]:
    clients = {f"w{i}": CopartitionedAssignment(actives=set((before or {}).get(f"w{i}", ())), standbys=set(),
                                                topics={"readings"}) for i in range(workers)}
    result = CopartitionedAssignor({"readings"}, clients, partitions, replicas).get_assignment()
    return {name: sorted(a.actives) for name, a in result.items()}


def idle(assignment: dict[str, list[int]]) -> list[str]:
    return [name for name, actives in assignment.items() if not actives]


@pytest.mark.parametrize("partitions", PARTITIONS)
def test_no_worker_is_left_idle(partitions: int) -> None:
    replicas = BrokerSettings().standby_replicas
    for workers in range(1, partitions + 1):
        fresh = assign(partitions, workers, replicas)
        assert not idle(fresh), (partitions, workers, fresh)
        assert sorted(p for a in fresh.values() for p in a) == list(range(partitions))
        if workers > 1:
            joined = assign(partitions, workers, replicas, before=assign(partitions, workers - 1, replicas))
            assert not idle(joined), (partitions, workers, joined)


def test_faust_default_of_one_standby_leaves_a_joining_worker_idle() -> None:
    """Why the setting is not Faust's default (the table in docs/scaling.md)."""
    joined = assign(4, 3, 1, before=assign(4, 2, 1))
    assert idle(joined) == ["w2"]
