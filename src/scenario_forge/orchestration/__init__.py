"""What the Prefect flows in ``flows/`` need beyond the stage functions.

- :mod:`.runners`: where shard tasks run (threads, a Dask or a Ray cluster), chosen by a flow
  parameter so one deployment serves a laptop and a cluster;
- :mod:`.shards`: submitting shard tasks with small, un-introspected inputs and collecting them in
  completion order;
- :mod:`.artifacts`: the progress, counts and report artifacts a run leaves in the Prefect UI;
- :mod:`.local_api`: the Prefect API a CLI command talks to (a configured server, or a temporary
  one that neither Ctrl-C nor ``kill -9`` can orphan).

Importing this package does not import Prefect; its modules do, when used.
"""

from .runners import TaskRunnerConfig

__all__ = ["TaskRunnerConfig"]
