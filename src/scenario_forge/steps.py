"""A job's steps, declared once as data, and the direct runner that runs them.

A job (generate, curate, mix, publish, evaluate, train) is an ordered list of named steps over one
state record ``S``: each :class:`Step` is a plain function ``S -> S``; a :class:`ForEach` splits
the state into parts, runs one function per part (each part its own unit of work: a shard, a
split) and merges the results back. :func:`run_steps` runs a list in this process; the Prefect
runner (:func:`scenario_forge.orchestration.prefect_steps.run_steps_as_tasks`) runs the *same*
list with each step a Prefect task of the same name, so the UI shows the stages the CLI runs.

A step may say which fields of the state it ``needs`` and which it ``gives``. Both runners check
the list against the starting state before the first step runs (:func:`check_steps`: a step that
needs a field nothing gave fails then, before any model loads), and after each step that it gave
what it said.

Each runner logs a line as a step starts and ends (and as each part of a fan-out ends), with the
time it took: :func:`run_steps` to the stdlib logger ``scenario_forge.steps``, the Prefect runner to
the run logger of the task or flow it is in (so a deployment run shows stage progress in the UI).
The runner chooses the logger (:func:`logged`); stages themselves do not log.

>>> from dataclasses import dataclass, replace
>>> @dataclass(frozen=True)
... class Count:
...     total: int
...     doubled: int | None = None
>>> job = [
...     Step("double", lambda s: replace(s, doubled=s.total * 2), gives=("doubled",)),
...     ForEach("add-parts", parts=lambda s: [1, 2, 3], run=lambda p: p * 10,
...             merge=lambda s, rs: replace(s, total=s.doubled + sum(rs)), needs=("doubled",)),
... ]
>>> step_names(job)
['double', 'add-parts']
>>> run_steps(job, Count(total=1)).total
62
>>> run_steps(job[1:], Count(total=1))
Traceback (most recent call last):
...
scenario_forge.steps.StepOrderError: step 'add-parts' needs doubled, which neither the starting state nor an earlier step gives
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

from pydantic import BaseModel

from . import progress

S = TypeVar("S")
J = TypeVar("J")
P = TypeVar("P")
R = TypeVar("R")
A = ParamSpec("A")

#: Where the direct runner logs each step (the Prefect runner logs to the run logger instead).
log = logging.getLogger("scenario_forge.steps")

#: A logger as the runners use it: the stdlib one, or Prefect's run logger (a ``LoggerAdapter``).
StepLogger = logging.Logger | logging.LoggerAdapter[logging.Logger]


def logged(name: str, run: Callable[A, R], logger: Callable[[], StepLogger]) -> Callable[A, R]:
    """``run`` that logs ``name`` starting and ending (or failing) with its time to ``logger()``.

    ``logger`` is called when ``run`` is (inside a Prefect task: that task's run logger). The
    wrapper keeps ``run``'s signature (Prefect binds a task's parameters by name).

    >>> import logging, sys
    >>> out = logging.getLogger("doctest.steps")
    >>> out.addHandler(logging.StreamHandler(sys.stdout)); out.setLevel(logging.INFO)
    >>> logged("double", lambda n: n * 2, lambda: out)(21)  # doctest: +ELLIPSIS
    double: started
    double: done in ... s
    42
    """

    @functools.wraps(run)
    def step(*args: A.args, **kwargs: A.kwargs) -> R:
        out = logger()
        out.info("%s: started", name)
        started = time.perf_counter()
        try:
            result = run(*args, **kwargs)
        except BaseException as exc:
            out.warning("%s: failed after %.2f s: %s", name, time.perf_counter() - started, type(exc).__name__)
            raise
        out.info("%s: done in %.2f s", name, time.perf_counter() - started)
        return result

    return step


def _stdlib_logger() -> StepLogger:
    return log


class StepOrderError(RuntimeError):
    """A job's list of steps does not fit together (a bug in the declaration, never user input)."""


def _one_worker(state: object) -> int:
    return 1


def _no_name(part: object) -> str | None:
    return None


@dataclass(frozen=True)
class Step(Generic[S]):
    """One named stage: ``run(state) -> state``.

    ``needs`` / ``gives``: the state fields it reads / sets (checked by :func:`check_steps`).
    ``tags`` mark what the step uses (``"llm"``: it sends requests to a model; Prefect caps
    those with ``prefect concurrency-limit create llm N``)."""

    name: str
    run: Callable[[S], S]
    tags: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    gives: tuple[str, ...] = ()

    def on(
        self, get: Callable[[J], S], put: Callable[[J, S], J], needs: tuple[str, ...] = (), gives: tuple[str, ...] = ()
    ) -> Step[J]:
        """This step over a larger state ``J`` that holds an ``S`` (same name, same tags);
        ``needs`` / ``gives`` are the larger state's fields.

        >>> inc = Step("inc", lambda n: n + 1)
        >>> inc.on(lambda pair: pair[0], lambda pair, n: (n, pair[1])).run((1, "x"))
        (2, 'x')
        """
        run = self.run
        return Step(self.name, lambda state: put(state, run(get(state))), self.tags, needs, gives)


@dataclass(frozen=True)
class ForEach(Generic[S, P, R]):
    """A fan-out stage: ``run(part)`` for each of ``parts(state)``, then ``merge(state, results)``.

    Results reach ``merge`` in the order of the parts. ``workers(state)`` parts run at once in the
    direct runner (default 1: one after another). ``part_name(part)`` names one part's task run
    (``shard-00007-1a2b3c4d``); a part should carry only what its work needs, since a distributed
    runner ships it to another process."""

    name: str
    parts: Callable[[S], Sequence[P]]
    run: Callable[[P], R]
    merge: Callable[[S, list[R]], S]
    tags: tuple[str, ...] = ()
    workers: Callable[[S], int] = _one_worker
    part_name: Callable[[P], str | None] = _no_name
    needs: tuple[str, ...] = ()
    gives: tuple[str, ...] = ()

    def on(
        self, get: Callable[[J], S], put: Callable[[J, S], J], needs: tuple[str, ...] = (), gives: tuple[str, ...] = ()
    ) -> ForEach[J, P, R]:
        """This fan-out over a larger state ``J`` that holds an ``S`` (see :meth:`Step.on`)."""
        parts, merge, workers = self.parts, self.merge, self.workers
        return ForEach(
            self.name,
            parts=lambda state: parts(get(state)),
            run=self.run,
            merge=lambda state, results: put(state, merge(get(state), results)),
            tags=self.tags,
            workers=lambda state: workers(get(state)),
            part_name=self.part_name,
            needs=needs,
            gives=gives,
        )


#: One entry of a job's list: a step or a fan-out over the job's state ``S``.
AnyStep = Step[S] | ForEach[S, Any, Any]

#: A runner: ``runner(steps, state) -> final state`` (:func:`run_steps`, or the Prefect runner).
#: A job's ``*_with(config, runner)`` function does what both share (locks, staging) around it.
Runner = Callable[[Sequence[AnyStep[S]], S], S]


def step_names(steps: Sequence[AnyStep[Any]]) -> list[str]:
    """The names of a job's steps, in order (what the CLI reports and the Prefect UI shows)."""
    return [s.name for s in steps]


def on(
    steps: Sequence[AnyStep[S]],
    get: Callable[[J], S],
    put: Callable[[J, S], J],
    needs: tuple[str, ...] = (),
    gives: tuple[str, ...] = (),
) -> list[AnyStep[J]]:
    """Every step of ``steps`` over a larger state (see :meth:`Step.on`), each needing ``needs``
    and giving ``gives`` of it."""
    return [s.on(get, put, needs, gives) for s in steps]


def given(state: object) -> set[str]:
    """The fields of a dataclass or pydantic ``state`` that hold a value (not ``None``).

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Job:
    ...     config: str
    ...     result: int | None = None
    >>> sorted(given(Job("c")))
    ['config']
    """
    if isinstance(state, BaseModel):
        names = list(type(state).model_fields)
    elif dataclasses.is_dataclass(state):
        names = [f.name for f in dataclasses.fields(state)]
    else:
        return set()
    return {n for n in names if getattr(state, n) is not None}


def check_steps(steps: Sequence[AnyStep[S]], state: S) -> None:
    """Fail if a step needs a field that neither ``state`` nor an earlier step gives."""
    have = given(state)
    for step in steps:
        missing = [n for n in step.needs if n not in have]
        if missing:
            raise StepOrderError(
                f"step {step.name!r} needs {', '.join(missing)}, which neither the starting state nor an earlier step gives"
            )
        have |= set(step.gives)


def check_given(step: AnyStep[S], state: S) -> S:
    """``state`` after ``step``, checked to hold every field the step said it gives."""
    missing = [n for n in step.gives if getattr(state, n, None) is None]
    if missing:
        raise StepOrderError(f"step {step.name!r} did not give {', '.join(missing)}")
    return state


def part_label(each: ForEach[Any, P, Any], part: P) -> str:
    """What logs call one part of ``each``: its ``part_name``, else the fan-out's name."""
    return each.part_name(part) or each.name


def _map_parts(each: ForEach[S, P, R], state: S) -> list[R]:
    parts = list(each.parts(state))
    workers = max(1, min(each.workers(state), len(parts)))

    def run(part: P) -> R:
        return logged(part_label(each, part), each.run, _stdlib_logger)(part)

    if workers == 1:
        return [run(p) for p in parts]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run, p) for p in parts]
        # Every part ends before a failure is raised: what could finish is saved.
        errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        return [f.result() for f in futures]


def _fan_out(each: ForEach[S, Any, Any], state: S) -> S:
    return each.merge(state, _map_parts(each, state))


def iter_steps(steps: Sequence[AnyStep[S]], state: S) -> Iterator[tuple[str, S]]:
    """Run the steps in order in this process, yielding ``(step name, state after it)``."""
    check_steps(steps, state)
    for step in steps:
        progress.report("step", name=step.name)
        if isinstance(step, ForEach):
            state = logged(step.name, functools.partial(_fan_out, step), _stdlib_logger)(state)
        else:
            state = logged(step.name, step.run, _stdlib_logger)(state)
        yield step.name, check_given(step, state)


def run_steps(steps: Sequence[AnyStep[S]], state: S) -> S:
    """Run the steps in order in this process and return the final state (the direct runner)."""
    final = state
    for _, final in iter_steps(steps, state):
        pass
    return final
