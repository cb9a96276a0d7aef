"""One module per `faceedge` subcommand: add_arguments(parser) and run(args)."""
