"""The program run as the official Python language host runs it: the release's own
`pulumi-language-python-exec` (from the SDK's Go module, `make engine`), with the virtualenv's
Python, in the program directory of the real `Pulumi.yaml`, given the run's settings as command
line flags and its config as `PULUMI_CONFIG`, and its exit code read back.

The language host itself (`pulumi-language-python`) cannot be built here (its Go module is not
served), so this stands in for the few lines of its `Run` that start the program
(pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go at v3.259.0: `Run`,
`constructArguments`, `constructConfig`, `constructConfigSecretKeys`, exit code 32 = bail). The
Automation API's in-process language server is swapped for it, so no program runs inside the
test process: the engine runs `__main__.py` at the project root as `pulumi up` in a clone does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from pulumi.automation import _stack
from pulumi.automation._server import LanguageServer
from pulumi.runtime.proto import language_pb2

# The release's exec script: exit code 32 says it has already shown the user an error.
BAILED = 32


class ReleaseProgramServer(LanguageServer):
    """A language runtime whose `Run` starts the program the way the official language host does."""

    exec_script: Path

    def Run(self, request: Any, context: Any) -> Any:
        info = request.info
        program_dir = Path(info.program_directory or request.pwd)
        options = dict(info.options.items()) if info.HasField("options") else {}
        virtualenv = Path(str(options.get("virtualenv", ".venv")))
        if not virtualenv.is_absolute():
            virtualenv = Path(info.root_directory) / virtualenv  # as the host's toolchain resolves it
        flags = {
            "monitor": request.monitor_address,
            "engine": request.args[0] if request.args else "",
            "project": request.project,
            "root_directory": info.root_directory,
            "stack": request.stack,
            "pwd": request.pwd,
            "dry_run": "true" if request.dryRun else "false",
            "parallel": str(request.parallel),
            "organization": request.organization,
        }
        command = [str(virtualenv / "bin" / "python"), "-u", str(self.exec_script)]
        for name, value in flags.items():
            if value:
                command += [f"--{name}", value]
        command.append(info.entry_point or ".")
        env = {
            **os.environ,
            "PATH": f"{virtualenv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "PULUMI_CONFIG": json.dumps(dict(request.config)),
            "PULUMI_CONFIG_SECRET_KEYS": json.dumps(list(request.configSecretKeys)),
        }
        env.pop("PYTHONHOME", None)
        program = subprocess.Popen(command, cwd=program_dir, env=env)
        while True:
            try:
                code = program.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                # The host ends the program when the engine's request ends (the CLI failed or
                # was cancelled): an interrupt first, a kill 5 s later.
                if not context.is_active():
                    program.send_signal(signal.SIGINT)
                    try:
                        program.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        program.kill()
                    return language_pb2.RunResponse(error="the engine ended the run")
        if code == BAILED:
            return language_pb2.RunResponse(error="", bail=True)
        if code != 0:
            return language_pb2.RunResponse(error=f"program exited with non-zero exit code: {code}")
        return language_pb2.RunResponse()


def run_programs_with(exec_script: Path) -> None:
    """From now on, every stack operation of the Automation API in this process runs its program
    with the release's exec script instead of in process."""
    ReleaseProgramServer.exec_script = exec_script
    _stack.LanguageServer = ReleaseProgramServer  # type: ignore[attr-defined]
