"""The ``secagg`` command's subcommands, one module per command group.

:mod:`secagg.apps.cli` holds the top-level group and the entry point, adds these commands
to it and re-exports every name it defined before they moved here (2026-12-06), so
callers and tests that import from it are unchanged. The modules here never import
:mod:`secagg.apps.cli`: a command can be read, tested and imported alone, with no cycle.
"""
