"""`python -m infra ...` runs the CLI (the Pulumi program's entry point is the root __main__.py)."""

import sys

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
