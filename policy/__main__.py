"""`pulumi preview --policy-pack policy`: the kafka-platform guardrails.

The validators live in kafka_policies.py so tests can import them without starting the pack
(the PolicyPack constructor serves the engine until it is stopped).
"""

from kafka_policies import POLICIES  # type: ignore[import-not-found]
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="kafka-platform", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
