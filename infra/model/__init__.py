"""What a team writes, validated: topology.yaml and Pulumi.<stack>.yaml as typed models.

The bottom layer: it imports nothing else from `infra`. Layers above it, in order: plan, render,
live, program, commands.
"""
