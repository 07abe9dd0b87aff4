"""Entry point: ``scenario-forge COMMAND``."""

from __future__ import annotations

import typer

from .. import __version__
from . import taxonomy
from .generate import generate

app = typer.Typer(
    name="scenario-forge",
    help="Build beneficial-trait RL data: plan, generate, curate, mix, publish, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("generate")(generate)
app.add_typer(taxonomy.app, name="taxonomy")


@app.command("version")
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
