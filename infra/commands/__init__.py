"""One module per `python -m infra` command; `infra.cli` wires them into the parser."""
