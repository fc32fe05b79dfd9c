"""The pure resolution of a topology and a stack's settings into a Plan: final names, ACLs or role
bindings, env flags, credential generations, and the review of a change between two plans.

Imports only `infra.model`; no Pulumi and no broker.
"""
