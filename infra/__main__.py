"""`python -m infra ...` runs the CLI; Pulumi (Pulumi.yaml `main: infra/`) runs the program.

Pulumi executes this file by path, so there is no package context (``__package__`` is
empty); `python -m infra` always runs it as part of the `infra` package.
"""

import sys

if __package__:
    from infra.cli import main

    sys.exit(main())
else:
    from infra.program import run

    run()
