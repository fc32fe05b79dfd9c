"""The running cluster, through confluent-kafka's AdminClient: read it, compare it with a plan
(drift), apply or import, read consumer lag, and run the local broker.

Imports the layers below it (model, plan, render); no Pulumi.
"""
