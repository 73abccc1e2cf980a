"""Sign-in throttling: per user and per address, within a sliding window."""

from citywatch.console.throttle import LoginThrottle


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_user_is_held_back_after_five_failures_until_the_window_passes() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_user=5, per_address=20, window_s=300, clock=clock)
    for _ in range(5):
        assert throttle.retry_after("Ana", "10.0.0.1") is None
        throttle.failed("Ana", "10.0.0.1")
    assert throttle.retry_after("ana", "10.0.0.2") == 300  # names are not case-sensitive
    assert throttle.retry_after("bo", "10.0.0.1") is None
    clock.now = 301
    assert throttle.retry_after("ana", "10.0.0.1") is None


def test_an_address_trying_many_names_is_held_back() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_user=5, per_address=3, window_s=60, clock=clock)
    for name in ("a", "b", "c"):
        throttle.failed(name, "10.9.9.9")
    assert throttle.retry_after("d", "10.9.9.9") == 60


def test_success_clears_the_users_count() -> None:
    throttle = LoginThrottle(per_user=2)
    throttle.failed("ana", "x")
    throttle.succeeded("ana")
    throttle.failed("ana", "x")
    assert throttle.retry_after("ana", "y") is None
