"""Entry point: ``scenario-forge COMMAND``."""

from __future__ import annotations

import typer

from .. import __version__
from . import judge, taxonomy
from .curate import curate
from .evaluate import evaluate
from .experiment import experiment
from .generate import generate
from .lint import lint
from .mix import mix
from .publish import publish
from .train import train

app = typer.Typer(
    name="scenario-forge",
    help="Build beneficial-trait RL data: plan, generate, curate, mix, publish, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion: shells complete flags and choices (docs/cli.md)
)
app.command("generate")(generate)
app.command("curate")(curate)
app.command("mix")(mix)
app.command("publish")(publish)
app.command("train")(train)
app.command("eval")(evaluate)
app.command("experiment")(experiment)
app.command("lint")(lint)
app.add_typer(taxonomy.app, name="taxonomy")
app.add_typer(judge.app, name="judge")


@app.command("version")
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
