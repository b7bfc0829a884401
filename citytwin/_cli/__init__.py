"""CLI subcommand modules; each defines ``register(subparsers)``. See ``citytwin.cli``."""
