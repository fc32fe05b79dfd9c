"""The Pulumi program's entry point: `pulumi preview|up|refresh|destroy` run this file (Pulumi.yaml
has no `main:`, so the program directory is the project root). The program itself is
`infra/program/main.py`; `python -m infra` is the CLI."""

from infra.program.main import run

run()
