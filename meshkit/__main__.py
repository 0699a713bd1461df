"""`python -m meshkit ...` is the `meshkit` command, for a shell where the
venv's bin/ is not on PATH (a JupyterHub terminal, a notebook's `!` line)."""

from meshkit.cli import main

main()
