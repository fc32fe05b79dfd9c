"""`python -m infra ...` runs the CLI; Pulumi (Pulumi.yaml `main: infra/`) runs the program.

Pulumi executes this file by path, so there is no package context (``__package__`` is
empty); `python -m infra` always runs it as part of the `infra` package.
"""

import sys

if __package__:
    try:
        from infra.cli import main
    except ModuleNotFoundError as missing:
        print(
            f"{missing}: the CLI runs inside the project virtualenv. Run `make venv`, then "
            "`source .venv/bin/activate` (or call .venv/bin/kafka-platform).",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(main())
else:
    from infra.program.main import run

    run()
