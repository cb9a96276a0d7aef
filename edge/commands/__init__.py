"""One module per `faceedge` subcommand: add_arguments(parser) and run(args)."""

from __future__ import annotations

import importlib


def add_module_subcommands(parser, table: dict[str, tuple[str, str]], dest: str,
                           argv: list[str] | None = None) -> None:
    """Subcommands `name -> (module, help)`; each module brings add_arguments(parser) and run(args).

    With `argv`, only the module of the subcommand named there is imported, so `faceedge run`
    never loads the trainers (torch is an optional extra, absent from runtime installs).
    """
    chosen = None if argv is None else next((arg for arg in argv if arg in table), "")
    sub = parser.add_subparsers(dest=dest, required=True, metavar=dest.upper())
    for name, (module, help_text) in table.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(_module=module)
        if chosen is None or name == chosen:
            importlib.import_module(module).add_arguments(command)


def run_module(args) -> int:
    """Run the innermost chosen subcommand's module."""
    return importlib.import_module(args._module).run(args) or 0
