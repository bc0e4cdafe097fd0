"""Subcommands that live in their own modules (one module per command family).

Each module named in ``MODULES`` has ``register(subparsers)``: it adds its parser(s) and
sets ``handler=<function(args)>`` with ``set_defaults``. Heavy imports belong inside the
handler, so that ``bertdistill --help`` stays fast. ``bertdistill.cli`` walks this list;
adding a command family means adding a module and one line here.
"""

from __future__ import annotations

import argparse
import importlib

MODULES: tuple[str, ...] = (
    "bertdistill.commands.cache",
    "bertdistill.commands.corpus",
    "bertdistill.commands.augment",
    "bertdistill.commands.general",
    "bertdistill.commands.export",
    "bertdistill.commands.benchmark",
    "bertdistill.commands.report",
    "bertdistill.commands.embed_eval",
)


def register_all(subparsers: argparse._SubParsersAction) -> None:
    for name in MODULES:
        importlib.import_module(name).register(subparsers)
