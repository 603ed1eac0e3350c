"""Schedules: CLI, command lines, leases (racing schedulers), coalescing, stale locks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from crawler.db.models import Schedule, ScheduleRun
from crawler.db.session import Database
from crawler.engine.scheduling import Scheduler, ScheduleSpec, add_schedule, commands_for
from crawler.engine.seeds import import_seeds
from tests.support.notice_seed import FakeClock
from tests.support.threads import run_in_threads

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


class FakeRunner:
    """Records command lines instead of starting processes."""

    def __init__(self, code: int = 0, delay: float = 0.0) -> None:
        self.code, self.delay = code, delay
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def __call__(self, argv: list[str], heartbeat) -> int:  # type: ignore[no-untyped-def]
        with self.lock:
            self.calls.append(argv)
        time.sleep(self.delay)
        assert heartbeat()
        return self.code


def _add(db: Database, name: str = "hourly", cron: str = "0 * * * *", **kw: object) -> None:
    spec = ScheduleSpec(name, cron, seed_set=kw.pop("seed_set", "main"), **kw)  # type: ignore[arg-type]
    with db.session() as s:
        if spec.seed_set:  # `add` refuses a seed set that does not exist
            import_seeds(s, spec.seed_set, ["http://site.example/"])
        add_schedule(s, spec, T0)


def _runs(db: Database) -> list[ScheduleRun]:
    with db.read_session() as s:
        return list(s.execute(select(ScheduleRun).order_by(ScheduleRun.id)).scalars())


def _schedule(db: Database, name: str = "hourly") -> Schedule:
    with db.read_session() as s:
        return s.execute(select(Schedule).where(Schedule.name == name)).scalar_one()


def test_add_list_remove_and_bad_input(env, cli, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://site.example/\n")
    code, _, err = cli(
        "schedule", "add", "nightly", "--cron", "0 3 * * *", "--seeds-file", str(seeds), "--recheck"
    )
    assert code == 0, err
    assert "recheck --due" in err
    code, out, _ = cli("schedule", "list")
    assert code == 0 and "nightly" in out and "0 3 * * *" in out
    code, _, err = cli("schedule", "add", "bad", "--cron", "61 * * * *", "--set", "main")
    assert code == 2 and "'61 * * * *'" in err and "Traceback" not in err
    code, _, err = cli("schedule", "add", "bad", "--cron", "0 3 * *", "--set", "main")
    assert code == 2 and "cron" in err
    code, _, err = cli(
        "schedule", "add", "two", "--cron", "0 3 * * *", "--set", "a", "--seeds-file", str(seeds)
    )
    assert code == 2
    code, _, err = cli(
        "schedule", "add", "gone", "--cron", "0 3 * * *", "--seeds-file", str(tmp_path / "nope")
    )
    assert code == 2 and "nope" in err
    assert cli("schedule", "add", "nightly", "--cron", "0 4 * * *", "--set", "x")[0] == 2
    assert cli("schedule", "remove", "nightly")[0] == 0
    code, _, err = cli("schedule", "remove", "nightly")
    assert code == 2 and "no schedule" in err


def test_command_lines(db: Database, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("")
    _add(db, "crawl-and-check", policy=policy, recheck=True)
    _add(db, "check-only", seed_set=None, recheck=True)
    crawl, recheck = commands_for(_schedule(db, "crawl-and-check"), "/py")
    assert crawl == [
        "/py",
        "-m",
        "crawler",
        "crawl",
        "--set",
        "main",
        "--policy",
        str(policy),
        "--name",
        "schedule:crawl-and-check",
    ]
    assert recheck == ["/py", "-m", "crawler", "recheck", "--due", "--policy", str(policy)]
    assert commands_for(_schedule(db, "check-only"), "/py") == [
        ["/py", "-m", "crawler", "recheck", "--due"]
    ]


def test_runs_when_due_records_exit_code_and_coalesces_missed_runs(db: Database) -> None:
    _add(db)
    clock, runner = FakeClock(T0), FakeRunner(code=3)
    scheduler = Scheduler(db, clock=clock, runner=runner, python="/py")
    assert scheduler.run_once() == []  # next run is 10:00
    clock.now = T0 + timedelta(hours=10, minutes=5)  # ten runs missed
    (outcome,) = scheduler.run_once()
    assert outcome.exit_code == 3 and len(runner.calls) == 1
    assert scheduler.run_once() == []
    row = _schedule(db)
    assert row.next_run_at == datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
    assert (row.last_run_at, row.lock_owner, row.lock_until) == (clock.now, None, None)
    (run,) = _runs(db)
    assert (run.exit_code, run.started_at, run.finished_at) == (3, clock.now, clock.now)
    assert "crawl --set main" in (run.detail or "")


def test_a_runner_that_cannot_start_is_recorded_and_the_lock_released(db: Database) -> None:
    _add(db)

    def broken(argv: list[str], heartbeat) -> int:  # type: ignore[no-untyped-def]
        raise FileNotFoundError("no such interpreter")

    scheduler = Scheduler(db, clock=FakeClock(T0 + timedelta(hours=1)), runner=broken)
    (outcome,) = scheduler.run_once()
    assert outcome.exit_code == 127
    assert "could not start" in (_runs(db)[0].detail or "")
    assert _schedule(db).lock_owner is None


def test_two_schedulers_racing_run_a_schedule_once(db: Database, db_url: str) -> None:
    _add(db)
    clock = FakeClock(T0 + timedelta(hours=1))
    runner = FakeRunner(delay=0.3)
    machines = [Database(db_url), Database(db_url)]
    schedulers = [
        Scheduler(m, clock=clock, runner=runner, owner=f"m{i}") for i, m in enumerate(machines)
    ]
    barrier = threading.Barrier(2)
    results: list[int] = []

    def go(k: int) -> None:
        barrier.wait()
        results.append(len(schedulers[k].run_once()))

    errors = run_in_threads(go, len(schedulers))
    for m in machines:
        m.dispose()
    assert errors == []
    assert sorted(results) == [0, 1] and len(runner.calls) == 1 and len(_runs(db)) == 1


def test_naive_check_then_run_would_double_run(db: Database) -> None:
    """Why the conditional UPDATE matters: both schedulers see the schedule as due."""
    _add(db)
    clock, runner = FakeClock(T0 + timedelta(hours=1)), FakeRunner()
    a, b = (Scheduler(db, clock=clock, runner=runner, owner=o) for o in ("a", "b"))
    seen_a, seen_b = a.due(), b.due()
    assert seen_a == seen_b != []
    with db.read_session() as s:
        schedule = s.get(Schedule, seen_a[0])
    assert schedule is not None
    a.run(schedule), b.run(schedule)  # naive: run whatever looked due
    assert len(runner.calls) == 2  # the double run
    with db.session() as s:
        s.execute(select(Schedule)).scalar_one().next_run_at = clock.now
    assert a.acquire(seen_a[0]) is not None and b.acquire(seen_b[0]) is None


def test_a_live_lock_blocks_and_a_stale_lock_is_taken_over(db: Database) -> None:
    _add(db)
    now = T0 + timedelta(hours=1)
    with db.session() as s:
        row = s.execute(select(Schedule)).scalar_one()
        row.lock_owner, row.lock_until = "crashed-host:1", now + timedelta(minutes=5)
    runner = FakeRunner()
    clock = FakeClock(now)
    scheduler = Scheduler(db, clock=clock, runner=runner, owner="new")
    assert scheduler.run_once() == [] and runner.calls == []
    clock.now = now + timedelta(minutes=6)  # the dead scheduler's lease has expired
    assert len(scheduler.run_once()) == 1 and len(runner.calls) == 1
    assert _schedule(db).lock_owner is None


def test_heartbeat_extends_only_our_own_lease(db: Database) -> None:
    _add(db)
    clock = FakeClock(T0 + timedelta(hours=1))
    ours = Scheduler(db, clock=clock, owner="ours")
    other = Scheduler(db, clock=clock, owner="other")
    schedule = ours.acquire(ours.due()[0])
    assert schedule is not None
    clock.now += timedelta(minutes=9)
    assert ours.heartbeat(schedule.id) and not other.heartbeat(schedule.id)
    assert _schedule(db).lock_until == clock.now + ours.lease


def test_scheduler_run_once_cli_runs_nothing_when_nothing_is_due(env, cli) -> None:
    code, _, err = cli("scheduler", "run", "--once")
    assert code == 0 and "0 schedules run" in err


def _schedules(db: Database) -> int:
    with db.read_session() as s:
        return len(list(s.execute(select(Schedule.id)).scalars()))


def test_add_refuses_what_can_never_run(env, cli, db: Database, tmp_path: Path) -> None:
    """`schedule add` checks what a run would check (exit 2, nothing stored)."""
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://site.example/\n")
    bad_policy = tmp_path / "bad.toml"
    bad_policy.write_text("[scope]\nmax_pages = -1\n")
    denied = tmp_path / "denied.toml"
    denied.write_text('[scope]\ndeny_domains = ["site.example"]\n')
    bad_seeds = tmp_path / "bad-seeds.txt"
    bad_seeds.write_text("http://site.example/\nftp://x.example/\n")
    cases = [
        (["--set", "no-such-set"], "no seed set named 'no-such-set'"),
        (["--seeds-file", str(seeds), "--policy", str(bad_policy)], "max_pages"),
        (["--recheck", "--policy", str(bad_policy)], "max_pages"),
        (["--seeds-file", str(bad_seeds)], "line 2"),
        (["--seeds-file", str(seeds), "--policy", str(denied)], "out of policy"),
    ]
    for args, named in cases:
        code, _, err = cli("schedule", "add", "s1", "--cron", "0 3 * * *", *args)
        assert code == 2 and named in err, (args, err)
        assert err.strip().count("\n") == 0
    code, _, err = cli("schedule", "add", "s1", "--cron", "0 0 31 2 *", "--seeds-file", str(seeds))
    assert code == 2 and "never fires" in err and "CroniterBadDateError" not in err
    assert _schedules(db) == 0
    assert cli("schedule", "add", "s1", "--cron", "0 0 29 2 *", "--seeds-file", str(seeds))[0] == 0
    assert _schedules(db) == 1
