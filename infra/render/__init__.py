"""Files and text made from a Plan: the local compose file, alert rules, env output, plan tables.

Imports `infra.model` and `infra.plan` only.
"""
