"""The watchdog's judgement of a worker group, from samples of its committed offsets, log
ends and state (the clock is the samples': no waiting)."""

from __future__ import annotations

from citywatch.watchdog import GroupSample, ProgressJudge

READINGS = ("city.readings", 0)
CLOCK = ("city.clock", 1)


def sample(at: float, state: str = "Stable", **offsets: tuple[int, int]) -> GroupSample:
    by_name = {"readings": READINGS, "clock": CLOCK}
    return GroupSample(at, state, {by_name[name]: pair for name, pair in offsets.items()})


def test_work_waiting_with_no_progress_is_a_stall_and_progress_ends_it() -> None:
    judge = ProgressJudge(stalled_after_s=60)
    assert judge.judge(sample(0, readings=(10, 10), clock=(5, 5))).status == "ok"
    assert judge.judge(sample(30, readings=(10, 40), clock=(5, 9))).status == "ok"  # behind, not yet long
    stalled = judge.judge(sample(91, readings=(10, 80), clock=(9, 12)))  # since it was last caught up
    assert stalled.status == "stalled" and stalled.lag == 73
    assert stalled.reasons == ("city.readings[0]: 70 records waiting, no progress for 91 s",)
    assert judge.judge(sample(100, readings=(11, 80), clock=(12, 12))).status == "ok"  # one record: progress


def test_a_quiet_city_is_not_a_stalled_one() -> None:
    judge = ProgressJudge(stalled_after_s=60)
    for at in range(0, 600, 10):
        assert judge.judge(sample(at, readings=(10, 10))).status == "ok"  # nothing waiting, nothing to do


def test_a_group_that_never_settles_or_has_no_worker_is_stalled() -> None:
    rebalancing = ProgressJudge(stalled_after_s=60)
    assert rebalancing.judge(sample(0, "PreparingRebalance", readings=(10, 10))).status == "ok"
    assert rebalancing.judge(sample(61, "CompletingRebalance", readings=(10, 10))).reasons == (
        "the group is CompletingRebalance for 61 s",)
    assert rebalancing.judge(sample(62, readings=(10, 10))).status == "ok"
    gone = ProgressJudge(stalled_after_s=60)
    gone.judge(sample(0, "Empty", readings=(10, 10)))
    assert gone.judge(sample(60, "Empty", readings=(10, 10))).reasons == ("the group has no worker for 60 s",)


def test_a_broker_that_cannot_be_asked_is_a_stall_once_it_lasts() -> None:
    judge = ProgressJudge(stalled_after_s=60)
    assert judge.unreachable(0, "KafkaConnectionError").status == "ok"
    assert judge.unreachable(59, "KafkaConnectionError").status == "ok"
    blind = judge.unreachable(60, "KafkaConnectionError")
    assert blind.status == "stalled" and "could not be asked for 60 s" in blind.reasons[0]
    assert judge.judge(sample(61, readings=(10, 10))).status == "ok"
    assert judge.unreachable(62, "again").status == "ok"  # a new blind spell starts from zero
