"""Command-line interface (click only): parses options and hands work to the pipeline and training modules."""

from __future__ import annotations

import click

from deepanon import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deepanon")
def main() -> None:
    """deepanon: find every face in photos and videos and replace it with a new, generated face."""
