"""A step's progress artifact: one update per interval at most (each is a request to the Prefect
server on the step's own thread), yet it ends where the step ended: 100% when it finished, the
last count when it failed."""

from __future__ import annotations

from prefect import flow

from hubpress.orchestration import artifacts


def progress_of(artifact_id) -> float:
    """Read through the REST API (this Prefect client sends nulls its own server refuses)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    response = httpx.get(f"{PREFECT_API_URL.value()}/artifacts/{artifact_id}")
    response.raise_for_status()
    return response.json()["data"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_quick_step_sends_its_end_not_each_advance(prefect_harness):
    clock = Clock()

    @flow
    def quick_step():
        progress = artifacts.Progress(10, "Building 10 shard(s)", clock=clock)
        for _ in range(9):
            progress.advance()
        held_back = progress_of(progress.id)  # nine advances within the interval: none sent
        clock.now += artifacts.PROGRESS_INTERVAL
        progress.advance()  # the last one is always sent
        progress.close()
        return held_back, progress_of(progress.id)

    assert quick_step() == (0.0, 100.0)


def test_a_long_step_moves_once_per_interval_and_a_failed_one_shows_where_it_stopped(prefect_harness):
    clock = Clock()

    @flow
    def failing_step():
        progress = artifacts.Progress(10, "Uploading 10 file(s)", clock=clock)
        seen = []
        for _ in range(3):
            clock.now += artifacts.PROGRESS_INTERVAL
            progress.advance()
            seen.append(progress_of(progress.id))
        progress.advance()  # within the interval: held back
        seen.append(progress_of(progress.id))
        progress.close()  # the step failed here
        seen.append(progress_of(progress.id))
        return seen

    assert failing_step() == [10.0, 20.0, 30.0, 30.0, 40.0]
