"""The Pulumi program (`main.run`) and its resources, one module per platform.

Kept empty on purpose: the dynamic provider's plugin imports `infra.program.admin_api_provider`
(its path is in the state) at the start of every `preview` and `up`, and must not pay for the
whole program's imports.
"""
