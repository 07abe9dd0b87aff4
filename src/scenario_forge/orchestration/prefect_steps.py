"""The Prefect runner of a job's steps: the same list :func:`scenario_forge.steps.run_steps` runs,
each step a Prefect task of the same name (call it inside a flow).

Every task receives its input wrapped in :func:`prefect.utilities.annotations.quote`, so Prefect
does not walk a whole job state (thousands of rows, arrays) looking for futures. A
:class:`~scenario_forge.steps.ForEach` runs its parts one after another as tasks named by
``part_name``, unless the caller passes a :data:`FanOut` that submits them elsewhere (the generate
job's shards go to a thread pool, a Dask or a Ray cluster: see :mod:`.shards`).

Steps log through Prefect's run logger (:func:`run_logger`: the task's inside a task, the flow's
for a fan-out as a whole), so a deployment run shows each stage starting and ending in the UI;
the direct runner logs the same lines to the stdlib logger.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..steps import AnyStep, ForEach, Step, StepLogger, check_given, check_steps, log, logged, part_label

if TYPE_CHECKING:
    from prefect import Task

S = TypeVar("S")

#: ``fan_out(task, parts) -> results in part order``: how a :class:`ForEach`'s part tasks run.
FanOut = Callable[["Task[..., Any]", Sequence[Any]], list[Any]]


def _unwrap(value: Any) -> Any:
    from prefect.utilities.annotations import BaseAnnotation

    return value.unwrap() if isinstance(value, BaseAnnotation) else value


def run_logger() -> StepLogger:
    """The current task's or flow's run logger (what the Prefect UI shows); outside any run, the
    direct runner's stdlib logger."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return log


def step_task(step: Step[S]) -> Task[[S], S]:
    """``step`` as a Prefect task named ``step.name`` (no result cache: the data on disk is the record)."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    return task(name=step.name, tags=list(step.tags), cache_policy=NO_CACHE)(logged(step.name, step.run, run_logger))


def part_task(each: ForEach[Any, Any, Any]) -> Task[..., Any]:
    """One part of ``each`` as a Prefect task named ``each.name``; its runs are named by ``part_name``."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    def run_name(parameters: dict[str, Any]) -> str:
        (part,) = parameters.values()
        return part_label(each, _unwrap(part))

    def run_part(part: Any) -> Any:
        return logged(part_label(each, part), each.run, run_logger)(part)

    # Prefect binds a task's parameters by name: the part task keeps the part function's own.
    functools.update_wrapper(run_part, each.run)
    # Prefect's protocol for a name callback also lists a classmethod no function has (a stubs gap).
    named = task(name=each.name, tags=list(each.tags), cache_policy=NO_CACHE, task_run_name=run_name)  # type: ignore[arg-type]
    return named(run_part)


def one_after_another(task: Task[..., Any], parts: Sequence[Any]) -> list[Any]:
    """The default fan-out: each part's task in order, in the flow's thread."""
    from prefect.utilities.annotations import quote

    return [task(quote(part)) for part in parts]


def _fan_out(each: ForEach[S, Any, Any], fan_out: FanOut, state: S) -> S:
    return each.merge(state, fan_out(part_task(each), list(each.parts(state))))


def run_steps_as_tasks(steps: Sequence[AnyStep[S]], state: S, *, fan_out: FanOut | None = None) -> S:
    """Run ``steps`` in order inside the current flow, each as a task; return the final state."""
    from prefect.utilities.annotations import quote

    from .. import progress

    check_steps(steps, state)  # a list that does not fit together fails before any task starts
    for step in steps:
        progress.report("step", name=step.name)
        if isinstance(step, ForEach):
            fan = functools.partial(_fan_out, step, fan_out or one_after_another)
            state = logged(step.name, fan, run_logger)(state)
        else:
            state = step_task(step)(quote(state))  # type: ignore[arg-type]  # quote() unwraps when the task runs
        state = check_given(step, state)
    return state
