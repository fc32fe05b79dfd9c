"""Run the real Pulumi program under Pulumi's mocks and record what it registers."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

import infra.program.main
from infra.model.stacks import ADMIN_PASSWORD_KEY, SETTINGS_KEY
from infra.plan.model import Plan
from infra.program.previous_deployment import READ_STACK_OUTPUTS

SECRET_SIG = rpc._special_secret_sig
# The monitor of the latest run, to inspect runs that raised.
LAST_MONITOR: list[RecordingMonitor | None] = [None]
MOCK_BOOTSTRAP = "pkc-mock.us-east-1.aws.confluent.cloud:9092"


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    protect: bool
    retain_on_delete: bool
    provider: str  # "<provider urn>::<provider id>" for an explicit provider, else ""
    dependencies: list[str]  # URNs the engine must create first
    inputs: dict[str, Any]
    wire: dict[str, Any]  # the serialized inputs as the engine receives them (secrets marked)
    import_id: str = ""  # the `import` option: adopt this existing resource instead of creating it
    ignore_changes: list[str] = field(default_factory=list)
    custom_timeouts: dict[str, str] = field(default_factory=dict)  # create/update/delete, as given


@dataclass
class Run:
    plan: Plan
    registrations: list[Registration] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)  # the provider component's own stack exports
    stack_reads: list[str] = field(default_factory=list)  # names passed to readStackOutputs

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def counts(self) -> Counter[str]:
        return Counter(r.type for r in self.registrations)

    def one(self, type_: str, name: str) -> Registration:
        matches = [r for r in self.of_type(type_) if r.name == name]
        assert len(matches) == 1, (type_, name, [r.name for r in self.of_type(type_)])
        return matches[0]


class PlatformMocks(pulumi.runtime.Mocks):
    def __init__(self, stack_outputs: dict[str, dict[str, Any]], key_generation: int = 1) -> None:
        self.stack_outputs = stack_outputs
        self.invoked_reads: list[str] = []
        self.key_generation = key_generation  # a new generation is what a replaced API key looks like

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "pulumi:pulumi:StackReference":
            name = str(args.inputs.get("name") or args.resource_id)
            return name, {"name": name, "outputs": self.stack_outputs.get(name, {}), "secretOutputNames": []}
        if args.typ == "confluentcloud:index/kafkaCluster:KafkaCluster":
            outputs |= {
                "bootstrapEndpoint": f"SASL_SSL://{MOCK_BOOTSTRAP}",
                "restEndpoint": "https://pkc-mock.us-east-1.aws.confluent.cloud:443",
                "rbacCrn": "crn://confluent.cloud/organization=o/environment=env-mock/cloud-cluster=lkc-mock",
            }
            resource_id = "lkc-mock"
        if args.typ == "confluentcloud:index/serviceAccount:ServiceAccount":
            resource_id = f"sa-{args.name}"
        if args.typ == "confluentcloud:index/apiKey:ApiKey":
            resource_id = f"KEY{args.name.upper()}" + (
                f"-G{self.key_generation}" if self.key_generation > 1 else ""
            )
            outputs["secret"] = f"mock-api-secret-of-{args.name}"
        if args.resource_id:
            resource_id = args.resource_id  # an imported resource keeps the id it was imported by
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = f"mock-password-of-{args.name}"
        if args.typ == "aws:msk/cluster:Cluster":
            outputs |= {
                "arn": "arn:aws:kafka:us-east-1:123456789012:cluster/mock/1",
                "bootstrapBrokersSaslScram": "b-1.mock:9096,b-2.mock:9096",
                "bootstrapBrokersPublicSaslScram": "b-1-public.mock:9196,b-2-public.mock:9196",
            }
        if args.typ == "aws:secretsmanager/secretVersion:SecretVersion":
            outputs["versionId"] = f"version-of-{args.name}"
        if args.typ.startswith("aws:") and "arn" not in outputs:
            outputs["arn"] = f"arn:aws:mock:::{args.name}"
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        if args.token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": json.dumps(args.args, sort_keys=True, default=str)}
        if args.token == "confluentcloud:index/getKafkaCluster:getKafkaCluster":
            cluster = str(args.args["id"])
            environment = args.args["environment"]["id"]
            return {
                "id": cluster,
                "restEndpoint": f"https://{cluster}.example:443",
                "bootstrapEndpoint": f"SASL_SSL://{cluster}.example:9092",
                "rbacCrn": f"crn://confluent.cloud/organization=o/environment={environment}/cloud-cluster={cluster}",
            }
        if args.token == "confluentcloud:index/getSchemaRegistryCluster:getSchemaRegistryCluster":
            environment = args.args["environment"]["id"]
            return {
                "id": "lsrc-mock",
                "apiVersion": "srcm/v3",
                "kind": "Cluster",
                "restEndpoint": "https://psrc-mock.us-east-1.aws.confluent.cloud",
                "resourceName": f"crn://confluent.cloud/organization=o/environment={environment}/schema-registry=lsrc-mock",
            }
        if args.token == READ_STACK_OUTPUTS:
            # What the engine answers (pkg/resource/deploy/builtins.go): {} before a first deployment.
            name = str(args.args["name"])
            self.invoked_reads.append(name)
            return {"name": name, "outputs": self.stack_outputs.get(name, {}), "secretOutputNames": []}
        return {}


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: PlatformMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        self.recorded.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=self.make_urn(request.parent, request.type, request.name),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                provider=request.provider,
                dependencies=list(request.dependencies),
                inputs=reveal(rpc.deserialize_properties(request.object)),
                wire=json_format.MessageToDict(request.object),
                import_id=request.importId,
                ignore_changes=list(request.ignoreChanges),
                custom_timeouts={
                    name: value
                    for name in ("create", "update", "delete")
                    if (value := getattr(request.customTimeouts, name))
                },
            )
        )
        return super().RegisterResource(request)


def stack_settings(project_dir: Path, stack: str) -> dict[str, Any]:
    import yaml

    document = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text())
    settings: dict[str, Any] = document["config"][SETTINGS_KEY]
    return settings


MOCK_ADMIN_PASSWORD = "mock-admin-password"  # pragma: allowlist secret


def run_program(
    project_dir: Path,
    stack: str,
    *,
    settings: dict[str, Any] | None = None,
    stack_outputs: dict[str, dict[str, Any]] | None = None,
    record: bool = True,
    key_generation: int = 1,
    preview: bool = False,
    secret_config: dict[str, str] | None = None,
) -> Run:
    """Evaluate the program for ``stack`` with that stack file's real settings (or ``settings``).

    ``record=False`` keeps Pulumi's plain mock monitor (benchmarks: no recording overhead).
    """
    mocks = PlatformMocks(stack_outputs or {}, key_generation)
    monitor = RecordingMonitor(mocks) if record else MockMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks, project="kafka-platform", stack=stack, preview=preview, monitor=monitor, organization="acme"
    )
    data = settings if settings is not None else stack_settings(project_dir, stack)
    config = {SETTINGS_KEY: json.dumps(data)}
    if data.get("kafka", {}).get("provider") == "kafka":
        config[ADMIN_PASSWORD_KEY] = MOCK_ADMIN_PASSWORD
    config |= secret_config or {}
    pulumi.runtime.set_all_config(config, secret_keys=[ADMIN_PASSWORD_KEY, *(secret_config or {})])
    holder: dict[str, Any] = {}
    LAST_MONITOR[0] = monitor if isinstance(monitor, RecordingMonitor) else None

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        # No cluster behind the mocks: the namespace and Deployment check is tested on its own.
        plan, access = infra.program.main.run(
            project_dir,
            kubernetes_check=lambda _plan: None,
            kafka_check=lambda _plan, _previous, _dir: None,
            registry_check=lambda _plan, _previous: None,
        )
        holder["plan"] = plan
        exports = pulumi.Output.from_input(access.exports).apply(lambda values: holder.update(exports=values))
        return pulumi.Output.all(access.bootstrap_servers, access.cluster_id, exports)

    program()
    recorded = monitor.recorded if isinstance(monitor, RecordingMonitor) else []
    return Run(
        plan=holder["plan"],
        registrations=list(recorded),
        exports=holder.get("exports", {}),
        stack_reads=list(mocks.invoked_reads),
    )


def reveal(value: Any) -> Any:
    """The plain values behind secret markers, for asserting on what a resource receives."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == SECRET_SIG:
            return reveal(value["value"])
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def is_secret_on_the_wire(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == SECRET_SIG
