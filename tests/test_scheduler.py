"""The timing heap under a manual clock: exact run counts, no overlap, bounded concurrency."""

import asyncio
import itertools
from collections import Counter

import pytest

from pulse_agent.clock import ManualClock, settle
from pulse_agent.config.model import CheckSpec
from pulse_agent.schedule import parse_schedule
from pulse_agent.scheduler import Scheduler


def check(name, schedule="1s", enabled=True, url="http://127.0.0.1/"):
    return CheckSpec(name=name, url=url, schedule=parse_schedule(schedule), enabled=enabled)


async def start(scheduler):
    task = asyncio.create_task(scheduler.run())
    await settle()
    return task


async def stop(scheduler, task):
    scheduler.stop()
    await task
    await scheduler.drain(1)


async def test_thousand_checks_every_second_for_ten_seconds_run_exactly_once_per_second():
    clock = ManualClock()
    runs: list[tuple[str, float]] = []
    lags: list[float] = []

    async def runner(spec, due):
        runs.append((spec.name, due))

    scheduler = Scheduler(runner, clock=clock, on_lag=lags.append)
    scheduler.set_checks([check(f"c{i}") for i in range(1000)])
    task = await start(scheduler)
    await clock.advance(10)
    await stop(scheduler, task)

    per_check = Counter(name for name, _ in runs)
    assert len(per_check) == 1000
    assert set(per_check.values()) == {10}
    assert len(set(runs)) == len(runs)  # no duplicate (check, due) pairs
    assert max(lags) == 0.0  # the manual clock starts every run exactly on time
    # every due time of one check is one second after the previous
    dues = sorted(due for name, due in runs if name == "c7")
    assert [round(b - a, 6) for a, b in itertools.pairwise(dues)] == [1.0] * 9


async def test_a_run_still_going_when_due_again_is_skipped_and_counted():
    clock = ManualClock()
    release = asyncio.Event()
    started: list[float] = []
    skipped: list[str] = []

    async def runner(spec, due):
        started.append(due)
        await release.wait()

    scheduler = Scheduler(runner, clock=clock, on_skip=skipped.append)
    slow = check("slow")
    scheduler.set_checks([slow])
    task = await start(scheduler)
    await clock.advance(slow.schedule.next_due(clock.now, "slow") - clock.now)  # the first run starts
    await clock.advance(2.5)  # two more due times pass while it runs
    assert len(started) == 1 and scheduler.inflight == 1
    assert skipped == ["slow"] * 2
    release.set()
    await clock.advance(1)
    assert len(started) == 2
    await stop(scheduler, task)


async def test_global_concurrency_bound():
    clock = ManualClock()
    gate = asyncio.Event()
    peak = 0
    running = 0

    async def runner(spec, due):
        nonlocal peak, running
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1

    scheduler = Scheduler(runner, clock=clock, max_concurrency=5)
    scheduler.set_checks([check(f"c{i}", "10s") for i in range(50)])
    task = await start(scheduler)
    await clock.advance(10)
    assert peak == 5
    gate.set()
    await settle()
    await stop(scheduler, task)
    assert peak == 5


async def test_disabled_checks_never_run_and_set_checks_replaces_the_set():
    clock = ManualClock()
    runs: list[str] = []

    async def runner(spec, due):
        runs.append(spec.name)

    scheduler = Scheduler(runner, clock=clock)
    scheduler.set_checks([check("a"), check("off", enabled=False)])
    task = await start(scheduler)
    await clock.advance(2)
    scheduler.set_checks([check("b")])  # a removed, b added
    await clock.advance(3)
    await stop(scheduler, task)
    assert "off" not in runs
    assert runs.count("a") == 2
    assert runs.count("b") == 3


async def test_unchanged_check_keeps_its_phase_when_the_set_is_replaced():
    clock = ManualClock()
    dues: list[float] = []

    async def runner(spec, due):
        if spec.name == "a":
            dues.append(due)

    scheduler = Scheduler(runner, clock=clock)
    scheduler.set_checks([check("a", "5s")])
    task = await start(scheduler)
    await clock.advance(7)
    scheduler.set_checks([check("a", "5s"), check("b", "5s")])
    await clock.advance(10)
    await stop(scheduler, task)
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(dues)}
    assert len(dues) >= 3 and gaps == {5.0}


async def test_a_failing_runner_does_not_stop_the_scheduler():
    clock = ManualClock()
    calls = 0

    async def runner(spec, due):
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    scheduler = Scheduler(runner, clock=clock)
    scheduler.set_checks([check("a")])
    task = await start(scheduler)
    await clock.advance(3)
    await stop(scheduler, task)
    assert calls == 3 and scheduler.inflight == 0


async def test_drain_cancels_runs_past_the_budget():
    clock = ManualClock()

    async def runner(spec, due):
        await asyncio.sleep(3600)

    scheduler = Scheduler(runner, clock=clock)
    scheduler.set_checks([check("a")])
    task = await start(scheduler)
    await clock.advance(1)
    scheduler.stop()
    await task
    assert await scheduler.drain(0.05) == 1
    assert scheduler.inflight == 0


@pytest.mark.parametrize("n", [1, 10])
async def test_stop_before_anything_is_due(n):
    clock = ManualClock()
    scheduler = Scheduler(lambda spec, due: asyncio.sleep(0), clock=clock)
    scheduler.set_checks([check(f"c{i}", "1h") for i in range(n)])
    task = await start(scheduler)
    await stop(scheduler, task)
    assert task.done()


async def test_checks_added_or_changed_by_a_reload_run_at_once_then_on_their_grid():
    from tests.conftest import spec

    clock = ManualClock(1_800_000_000.0)
    runs: list[tuple[str, float]] = []

    async def runner(s, due):
        runs.append((s.name, due))

    scheduler = Scheduler(runner, clock=clock)
    kept = spec("http://127.0.0.1/", name="kept", schedule=parse_schedule("60s"))
    scheduler.set_checks([kept])
    task = asyncio.create_task(scheduler.run())
    added = spec("http://127.0.0.1/", name="added", schedule=parse_schedule("60s"))
    cron = spec("http://127.0.0.1/", name="cron", schedule=parse_schedule("0 * * * *"))
    scheduler.set_checks([kept, added, cron], soon=True)
    await clock.advance(0.1)
    assert [name for name, _ in runs] == ["added"]  # at once; kept keeps its phase, cron its times
    first = runs[0][1]
    await clock.advance(60)
    later = [due for name, due in runs if name == "added"][1:]
    assert later == [parse_schedule("60s").next_due(first, "added")]  # then on its grid
    scheduler.stop()
    await task


async def test_updates_by_difference_run_what_setting_the_whole_set_runs():
    """A worker hands its scheduler only what changed (new, edited, disabled, removed): the runs are those
    of a scheduler given the whole set each time."""

    async def runs_of(by_difference: bool) -> list[tuple[str, float]]:
        clock = ManualClock()
        runs: list[tuple[str, float]] = []

        async def runner(spec, due):
            runs.append((spec.name, due))

        scheduler = Scheduler(runner, clock=clock)
        steps = [  # (changed, removed): the whole set after each is kept alongside
            ([check("a"), check("b", "2s"), check("c"), check("off", enabled=False)], []),
            ([check("b", "3s"), check("d", "2s")], ["c"]),  # b edited, d added, c removed
            ([check("a", enabled=False), check("off")], []),  # a disabled, off enabled
            ([check("a")], ["d"]),
        ]
        whole: dict[str, CheckSpec] = {}
        task = await start(scheduler)
        for changed, removed in steps:
            for name in removed:
                del whole[name]
            whole.update((c.name, c) for c in changed)
            if by_difference:
                scheduler.update(changed, removed, soon=True)
            else:
                scheduler.set_checks(list(whole.values()), soon=True)
            await clock.advance(4.5)
        await stop(scheduler, task)
        return runs

    by_difference = await runs_of(True)
    assert by_difference == await runs_of(False)
    assert {name for name, _ in by_difference} == {"a", "b", "c", "d", "off"}
