"""Schedules: cron-timed crawls and rechecks, run as separate processes under a DB lease.

- Cron expressions are standard five-field ones, evaluated in UTC (no DST surprises).
  All times come from one injectable clock.
- A run of schedule S starts only after one atomic conditional UPDATE succeeds::

      UPDATE schedules SET lock_owner = me, lock_until = now + lease,
                           last_run_at = now, next_run_at = <next cron time after now>
       WHERE id = S AND enabled AND next_run_at <= now
         AND (lock_owner IS NULL OR lock_until < now)

  Two schedulers, on one machine or many, can never both win it (SQLite serialises
  writers; PostgreSQL re-checks the WHERE clause after the row lock). Setting
  `next_run_at` to the next time *after now* coalesces missed runs: a scheduler that was
  down for ten periods runs once, not ten times.
- While the child process runs, the lease is renewed every `heartbeat` seconds. A
  scheduler that dies leaves a lock that expires after `lease`; the next scheduler then
  takes over (a restart needs nothing else).
- Each run is a `ScheduleRun` row: start, end, exit code and the command lines.
- `--exchange NAME` adds `python -m crawler exchange fetch NAME`, run first.
- A crawl schedule runs `python -m crawler crawl --set SET | --seeds-file FILE
  [--policy FILE] --name schedule:NAME`; `--recheck` adds `python -m crawler recheck --due
  [--policy FILE]` after it (or is the only step when no seeds are given). The exit code
  recorded is the first non-zero one.
"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from croniter import CroniterError, croniter
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from crawler.db.audit import Event, record
from crawler.db.models import Schedule, ScheduleRun
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.errors import UsageError

Clock = Callable[[], datetime]
Heartbeat = Callable[[], bool]
Runner = Callable[[list[str], Heartbeat], int]

LEASE = timedelta(minutes=10)
HEARTBEAT_SECONDS = 60.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_cron(expr: str) -> str:
    """The expression, or UsageError naming it (exit 2): also one that never fires."""
    text = " ".join(expr.split())
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise UsageError(f"--cron {expr[:80]!r}: not a five-field cron expression (UTC)")
    try:
        next_after(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CroniterError:
        raise UsageError(f"--cron {text!r}: never fires (no such date)") from None
    return text


def next_after(cron: str, when: datetime) -> datetime:
    """The first cron time strictly after `when` (UTC in, UTC out)."""
    result: datetime = croniter(cron, when).get_next(datetime)
    return result


def _existing(option: str, path: Path | None) -> str | None:
    if path is None:
        return None
    resolved = path.expanduser().resolve()
    if not resolved.is_file():
        raise UsageError(f"{option} {path}: no such file")
    return str(resolved)


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    cron: str
    seed_set: str | None = None
    seeds_file: Path | None = None
    policy: Path | None = None
    recheck: bool = False
    exchange: str | None = None


def _checked(spec: ScheduleSpec) -> ScheduleSpec:
    if not _NAME.fullmatch(spec.name):
        raise UsageError(f"schedule name {spec.name[:80]!r}: use letters, digits, '.', '_', '-'")
    if spec.seed_set and spec.seeds_file:
        raise UsageError("give --set or --seeds-file, not both")
    if not (spec.seed_set or spec.seeds_file or spec.recheck or spec.exchange):
        raise UsageError(
            "give --set SET or --seeds-file FILE (or --recheck, or --exchange NAME, alone)"
        )
    return spec


def check_runnable(session: Session, spec: ScheduleSpec) -> None:
    """What a run would refuse, refused now (exit 2): the policy file, the seed file's
    lines, the seed set's existence and seeds the policy leaves nothing of."""
    from crawler.engine.runner import accepted_seeds
    from crawler.engine.seeds import read_seed_file, seeds_of_set
    from crawler.policy import PolicyError, load_policy

    try:
        policy = load_policy(spec.policy)
    except PolicyError as exc:
        raise UsageError(str(exc)) from exc
    seeds: list[str] | None = None
    if spec.seeds_file is not None:
        seeds = read_seed_file(spec.seeds_file)
    elif spec.seed_set is not None:
        seeds = seeds_of_set(session, spec.seed_set)
    if seeds is not None:
        accepted_seeds(seeds, policy)


def add_schedule(
    session: Session, spec: ScheduleSpec, now: datetime, actor: str = "system"
) -> Schedule:
    spec, cron = _checked(spec), check_cron(spec.cron)
    if session.execute(select(Schedule.id).where(Schedule.name == spec.name)).first():
        raise UsageError(f"schedule {spec.name!r} already exists (remove it first)")
    _existing("--seeds-file", spec.seeds_file)
    _existing("--policy", spec.policy)
    check_runnable(session, spec)
    row = Schedule(
        name=spec.name,
        cron=cron,
        seed_set=spec.seed_set,
        seeds_file=_existing("--seeds-file", spec.seeds_file),
        policy_path=_existing("--policy", spec.policy),
        recheck=spec.recheck,
        exchange=_exchange_name(session, spec.exchange),
        enabled=True,
        created_at=now,
        next_run_at=next_after(cron, now),
    )
    session.add(row)
    session.flush()
    details = {
        "name": row.name,
        "cron": cron,
        "commands": [shlex.join(c) for c in commands_for(row)],
    }
    record(session, Event(actor, "schedule.added", "schedule", row.id, details))
    return row


def _exchange_name(session: Session, name: str | None) -> str | None:
    from crawler.matching.exchanges import get_exchange

    return None if name is None else get_exchange(session, name).name


def list_schedules(session: Session) -> list[Schedule]:
    return list(session.execute(select(Schedule).order_by(Schedule.name)).scalars())


def remove_schedule(session: Session, name: str, actor: str = "system") -> None:
    row = session.execute(select(Schedule).where(Schedule.name == name)).scalar()
    if row is None:
        raise UsageError(f"no schedule named {name[:80]!r}")
    record(session, Event(actor, "schedule.removed", "schedule", row.id, {"name": name}))
    session.delete(row)


def commands_for(schedule: Schedule, python: str = sys.executable) -> list[list[str]]:
    """The command lines one run of `schedule` executes, in order."""
    base = [python, "-m", "crawler"]
    policy = ["--policy", schedule.policy_path] if schedule.policy_path else []
    steps: list[list[str]] = []
    if schedule.exchange:  # lists first, so the crawl matches against them
        steps.append([*base, "exchange", "fetch", schedule.exchange])
    if schedule.seed_set or schedule.seeds_file:
        target = (
            ["--set", schedule.seed_set]
            if schedule.seed_set
            else ["--seeds-file", str(schedule.seeds_file)]
        )
        steps.append([*base, "crawl", *target, *policy, "--name", f"schedule:{schedule.name}"])
    if schedule.recheck:
        steps.append([*base, "recheck", "--due", *policy])
    return steps


# --- running -----------------------------------------------------------------------------


def run_process(argv: list[str], heartbeat: Heartbeat) -> int:
    """The real runner: a child process; the lease is renewed while it runs."""
    with subprocess.Popen(argv) as child:
        while True:
            try:
                return child.wait(timeout=HEARTBEAT_SECONDS)
            except subprocess.TimeoutExpired:
                heartbeat()


def default_owner() -> str:
    return f"{socket.gethostname()[:80]}:{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class RunOutcome:
    schedule: str
    exit_code: int
    run_id: int


@dataclass
class Scheduler:
    """Runs due schedules. Several may run at once, on any machines sharing the database."""

    db: Database
    clock: Clock = utcnow
    runner: Runner = run_process
    owner: str = field(default_factory=default_owner)
    lease: timedelta = LEASE
    python: str = sys.executable
    workers: int = 4

    def due(self) -> list[int]:
        now = self.clock()
        with self.db.read_session() as s:
            query = select(Schedule.id).where(
                Schedule.enabled.is_(True), Schedule.next_run_at <= now, _lock_free(now)
            )
            return list(s.execute(query.order_by(Schedule.next_run_at, Schedule.id)).scalars())

    def acquire(self, schedule_id: int) -> Schedule | None:
        """The schedule if this scheduler won its lease (and advanced its next run)."""
        now = self.clock()
        with self.db.session() as s:
            cron = s.execute(select(Schedule.cron).where(Schedule.id == schedule_id)).scalar()
            if cron is None:
                return None
            won = s.execute(
                update(Schedule)
                .where(
                    Schedule.id == schedule_id,
                    Schedule.enabled.is_(True),
                    Schedule.next_run_at <= now,
                    _lock_free(now),
                )
                .values(
                    lock_owner=self.owner,
                    lock_until=now + self.lease,
                    last_run_at=now,
                    next_run_at=next_after(cron, now),
                )
                .execution_options(synchronize_session=False)
            )
            if won.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return s.get(Schedule, schedule_id)

    def heartbeat(self, schedule_id: int) -> bool:
        """Extend our lease; False if it was lost (expired and taken by another)."""
        with self.db.session() as s:
            renewed = s.execute(
                update(Schedule)
                .where(Schedule.id == schedule_id, Schedule.lock_owner == self.owner)
                .values(lock_until=self.clock() + self.lease)
                .execution_options(synchronize_session=False)
            )
            return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]

    def release(self, schedule_id: int) -> None:
        with self.db.session() as s:
            s.execute(
                update(Schedule)
                .where(Schedule.id == schedule_id, Schedule.lock_owner == self.owner)
                .values(lock_owner=None, lock_until=None)
                .execution_options(synchronize_session=False)
            )

    def _start_run(self, schedule: Schedule, commands: Sequence[list[str]]) -> int:
        with self.db.session() as s:
            run = ScheduleRun(
                schedule_id=schedule.id,
                started_at=self.clock(),
                detail="\n".join(shlex.join(c) for c in commands),
            )
            s.add(run)
            s.flush()
            return run.id

    def _finish_run(self, run_id: int, code: int, note: str | None) -> None:
        with self.db.session() as s:
            run = s.get(ScheduleRun, run_id)
            if run is not None:
                run.finished_at, run.exit_code = self.clock(), code
                if note:
                    run.detail = f"{run.detail}\n{note}"

    def _execute(self, commands: Sequence[list[str]], schedule_id: int) -> tuple[int, str | None]:
        code, note = 0, None
        for argv in commands:
            try:
                step = self.runner(list(argv), lambda: self.heartbeat(schedule_id))
            except Exception as exc:  # noqa: BLE001 - a failed start is this run's result, not the scheduler's
                step, note = 127, f"could not start: {type(exc).__name__}: {exc}"[:500]
            code = code or step
        return code, note

    def run(self, schedule: Schedule) -> RunOutcome:
        """One run of a schedule whose lease we hold; the lease is released at the end."""
        commands = commands_for(schedule, self.python)
        run_id = self._start_run(schedule, commands)
        try:
            code, note = self._execute(commands, schedule.id)
            self._finish_run(run_id, code, note)
        finally:
            self.release(schedule.id)
        return RunOutcome(schedule.name, code, run_id)

    def run_once(self) -> list[RunOutcome]:
        """Run everything due now (concurrently, at most `workers` at a time) and wait."""
        won = [s for s in (self.acquire(i) for i in self.due()) if s is not None]
        if not won:
            return []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self.run, won))

    def run_forever(self, stop: threading.Event, tick: float = 30.0) -> None:
        """Start due runs every `tick` seconds until `stop` is set; then wait for them."""
        running: set[Future[RunOutcome]] = set()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            while not stop.is_set():
                running = {f for f in running if not f.done()}
                for schedule_id in self.due()[: max(self.workers - len(running), 0)]:
                    schedule = self.acquire(schedule_id)
                    if schedule is not None:
                        running.add(pool.submit(self.run, schedule))
                stop.wait(tick)


def _lock_free(now: datetime) -> ColumnElement[bool]:
    return or_(Schedule.lock_owner.is_(None), Schedule.lock_until < now)


def describe_commands(schedule: Schedule) -> str:
    return " && ".join(shlex.join(c[1:]) for c in commands_for(schedule, "python"))
