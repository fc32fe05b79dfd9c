"""MirrorMaker 2 in dedicated mode, run from Apache Kafka's own jars (`org.apache.kafka:connect-mirror`
from Maven Central, cached beside the broker's): for `kafka-platform migration mirror` on a laptop or
a CI runner, and for the integration tests.

The properties come from the plan's renderer and never hold a password: they read
``${env:MIRROR_SOURCE_PASSWORD}`` and ``${env:MIRROR_TARGET_PASSWORD}`` through Kafka's
EnvVarConfigProvider (KIP-887), so the passwords reach the process only through its environment.
Readiness is read where MirrorMaker itself reports it: the Connect status topic on the target.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException, Message, TopicPartition

from infra.live.kafka_broker import (
    KAFKA_VERSION,
    LOG4J,
    LOG4J2,
    LOG4J_VERSION,
    Broker,
    cache_dir,
    maven_jars,
    maven_pom,
    running_pid,
    stop_detached,
    stop_process,
)
from infra.plan.migration import MIRROR_SOURCE_PASSWORD_ENV, MIRROR_TARGET_PASSWORD_ENV

MIRROR_MAKER_MAIN = "org.apache.kafka.connect.mirror.MirrorMaker"
MIRROR_PID_FILE = "mirror-maker.pid"
PROPERTIES_FILE = "mm2.properties"
LOG_FILE = "mirror-maker.log"
# MirrorMaker's own defaults (MirrorMakerConfig.workerConfig) when the properties name none.
DEFAULT_STATUS_TOPIC = "mm2-status.{source}.internal"
DEFAULT_OFFSETS_TOPIC = "mm2-offsets.{source}.internal"
# The connectors a one-way flow runs; heartbeats are optional.
REQUIRED_CONNECTORS = ("MirrorSourceConnector", "MirrorCheckpointConnector")
READY_WITHIN_S = 120

MIRROR_POM = maven_pom(
    "mirror-maker",
    [
        ("org.apache.kafka", "connect-mirror", KAFKA_VERSION),
        # connect-mirror logs through SLF4J 1.7 (as Kafka's own distribution does).
        (LOG4J, "log4j-slf4j-impl", LOG4J_VERSION),
        (LOG4J, "log4j-core", LOG4J_VERSION),
    ],
)

# INFO for the Mirror connectors: their task lines are what a person running `migration mirror`
# reads. DEBUG for the two classes that create MirrorMaker's topics: they report a refused
# CreateTopics ("Not authorized to create topic(s) ...", a missing CREATE grant) at DEBUG only.
MIRROR_LOG4J2 = (
    LOG4J2
    + """logger.mirror.name = org.apache.kafka.connect.mirror
logger.mirror.level = INFO
logger.mirrorutils.name = org.apache.kafka.connect.mirror.MirrorUtils
logger.mirrorutils.level = DEBUG
logger.topicadmin.name = org.apache.kafka.connect.util.TopicAdmin
logger.topicadmin.level = DEBUG
"""
)


class MirrorMakerFailed(RuntimeError):
    """MirrorMaker exited, a connector or task failed, or it was not running in time."""


def mirror_maker_dir() -> Path:
    return cache_dir().parent / f"mirror-maker-{KAFKA_VERSION}"


def fetch_mirror_maker_jars() -> Path:
    """connect-mirror, connect-runtime and their dependencies from Maven Central, fetched once."""
    return maven_jars(
        mirror_maker_dir(),
        MIRROR_POM,
        f"connect-mirror-{KAFKA_VERSION}.jar",
        what=f"MirrorMaker 2 (connect-mirror {KAFKA_VERSION})",
    )


@dataclass(frozen=True)
class MirrorPasswords:
    """The mirror principal's password on each cluster; they reach MirrorMaker only as env vars."""

    source: str = field(repr=False)
    target: str = field(repr=False)

    def environment(self) -> dict[str, str]:
        return {MIRROR_SOURCE_PASSWORD_ENV: self.source, MIRROR_TARGET_PASSWORD_ENV: self.target}


def properties_of(text: str) -> dict[str, str]:
    """The keys and values of a .properties text (``key = value`` lines; comments skipped)."""
    found = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        found[key.strip()] = value.strip()
    return found


def internal_topic(properties: Mapping[str, str], key: str, default: str) -> str:
    """Where a flow source->target keeps one of its Connect topics (``status.storage.topic``,
    ``offset.storage.topic``) on the target, as MirrorMaker resolves it: the target's own setting,
    then the top-level one, then its default for the source alias."""
    source = _flow(properties)[0]
    target = _flow(properties)[1]
    return properties.get(f"{target}.{key}") or properties.get(key) or default.format(source=source)


def _flow(properties: Mapping[str, str]) -> tuple[str, str]:
    """The one enabled flow (source alias, target alias) of the properties."""
    for key, value in properties.items():
        if key.endswith(".enabled") and "->" in key and value.strip().lower() == "true":
            source, target = key.removesuffix(".enabled").split("->", 1)
            return source.strip(), target.strip()
    raise MirrorMakerFailed(
        "the MirrorMaker properties enable no flow (no '<source>-><target>.enabled = true')"
    )


def command(work: Path, properties_text: str) -> list[str]:
    """Write the properties and the logging setup into ``work``; the java command that runs them."""
    lib = fetch_mirror_maker_jars()
    work.mkdir(parents=True, exist_ok=True)
    (work / PROPERTIES_FILE).write_text(properties_text)
    (work / "log4j2.properties").write_text(MIRROR_LOG4J2)
    java = shutil.which("java") or "java"
    return [
        java,
        "-Xms128m",
        "-Xmx512m",
        "-XX:+UseSerialGC",
        f"-Dlog4j2.configurationFile={work / 'log4j2.properties'}",
        "-cp",
        f"{lib}/*",
        MIRROR_MAKER_MAIN,
        str(work / PROPERTIES_FILE),
    ]


def _environment(passwords: MirrorPasswords) -> dict[str, str]:
    return {**os.environ, **passwords.environment()}


@dataclass
class RunningMirror:
    """A MirrorMaker this process started (``process``) or found by its pid file (``pid``)."""

    work: Path
    log: Path
    pid: int
    process: subprocess.Popen[bytes] | None = None

    def exited(self) -> int | None:
        if self.process is not None:
            return self.process.poll()
        return None if running_pid(self.work, MIRROR_PID_FILE) is not None else 0

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (its tasks commit what they copied), SIGKILL after ``timeout`` seconds."""
        if self.process is not None:
            stop_process(self.process, timeout)
            (self.work / MIRROR_PID_FILE).unlink(missing_ok=True)
        else:
            stop_detached(self.work, timeout, pid_name=MIRROR_PID_FILE)


def start(
    work: Path,
    properties_text: str,
    passwords: MirrorPasswords,
    target_admin: Broker,
    *,
    within: float = READY_WITHIN_S,
    detached: bool = False,
) -> RunningMirror:
    """Start MirrorMaker with these properties and wait until its connectors and the source
    connector's tasks run (read from the status topic on the target through ``target_admin``).
    Detached: it outlives this process (`stop_mirror` ends it by its pid file)."""
    started_ms = int(time.time() * 1000)
    mirror = launch(work, properties_text, passwords, detached=detached)
    try:
        wait_until_mirroring(mirror, properties_of(properties_text), target_admin, started_ms, within)
    except BaseException:
        mirror.stop()
        raise
    return mirror


def launch(
    work: Path, properties_text: str, passwords: MirrorPasswords, *, detached: bool = False
) -> RunningMirror:
    """Start MirrorMaker without waiting for it (its log in ``work``)."""
    if running_pid(work, MIRROR_PID_FILE) is not None:
        raise MirrorMakerFailed(f"a MirrorMaker from {work} is already running; stop it first")
    argv = command(work, properties_text)
    log = work / LOG_FILE
    with log.open("w") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_environment(passwords),
            start_new_session=detached,
        )
    (work / MIRROR_PID_FILE).write_text(f"{process.pid}\n")
    return RunningMirror(work, log, process.pid, process)


def stop_mirror(work: Path) -> bool:
    """Stop the MirrorMaker started detached from ``work``; False when none ran."""
    return stop_detached(work, pid_name=MIRROR_PID_FILE)


def run_foreground(work: Path, properties_text: str, passwords: MirrorPasswords) -> int:
    """Run MirrorMaker in the foreground, its log on this terminal, until it exits or Ctrl-C."""
    argv = command(work, properties_text)
    process = subprocess.Popen(argv, env=_environment(passwords))
    try:
        return process.wait()
    except KeyboardInterrupt:
        stop_process(process)
        return 0


@contextmanager
def running_mirror(
    work: Path,
    properties_text: str,
    passwords: MirrorPasswords,
    target_admin: Broker,
    within: float = READY_WITHIN_S,
) -> Iterator[RunningMirror]:
    """MirrorMaker running (ready) for the block; stopped after it."""
    mirror = start(work, properties_text, passwords, target_admin, within=within)
    try:
        yield mirror
    finally:
        mirror.stop()


# --- readiness: the Connect status topic -----------------------------------------------------


@dataclass(frozen=True)
class ConnectorStates:
    """What the status topic says since a moment: the last state of each connector and task."""

    connectors: dict[str, str]
    tasks: dict[str, str]  # "<connector>-<n>" -> state
    traces: dict[str, str]  # connector or task -> the trace of its failure

    def failed(self) -> list[str]:
        states = {**self.connectors, **self.tasks}
        return [
            f"{name}: {self.traces.get(name, 'FAILED')}"
            for name, state in sorted(states.items())
            if state == "FAILED"
        ]

    def mirroring(self) -> bool:
        """Both connectors running, and the source connector with at least one running task."""
        if any(self.connectors.get(name) != "RUNNING" for name in REQUIRED_CONNECTORS):
            return False
        source_tasks = [
            state for name, state in self.tasks.items() if name.startswith("MirrorSourceConnector-")
        ]
        return bool(source_tasks) and all(state == "RUNNING" for state in source_tasks)


def read_topic(broker: Broker, topic: str, since_ms: int | None = None, timeout: float = 10) -> list[Message]:
    """Every record of one of MirrorMaker's Connect topics (written at or after ``since_ms``), to
    its end as it was when asked: empty when the topic does not exist. Read with an assigned
    consumer: it joins and commits nothing. TimeoutError when the end is not reached in time."""
    consumer = broker.reader("mirror-topics")
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=timeout) for p in partitions}
        if since_ms is None:
            starts = [TopicPartition(topic, p, low) for p, (low, _) in ends.items()]
        else:
            stamps = [TopicPartition(topic, p.partition, since_ms) for p in partitions]
            starts = consumer.offsets_for_times(stamps, timeout=timeout)
        wanted = [tp for tp in starts if 0 <= tp.offset < ends[tp.partition][1]]
        consumer.assign(wanted)
        left = {tp.partition for tp in wanted}
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            records.append(message)
            if message.offset() + 1 >= ends[message.partition()][1]:
                left.discard(message.partition())
        if left:
            raise TimeoutError(f"reading {topic} to its end took longer than {timeout:g} s")
        return records
    finally:
        consumer.close()


def read_connector_states(
    target_admin: Broker, status_topic: str, since_ms: int, timeout: float = 10
) -> ConnectorStates:
    """The states written to the status topic at or after ``since_ms`` (earlier runs' states are
    not this run's)."""
    connectors: dict[str, str] = {}
    tasks: dict[str, str] = {}
    traces: dict[str, str] = {}
    try:
        records = read_topic(target_admin, status_topic, since_ms, timeout)
    except (KafkaException, TimeoutError) as error:
        reason = error.args[0].str() if isinstance(error, KafkaException) else str(error)
        raise MirrorMakerFailed(f"cannot read MirrorMaker's status topic {status_topic}: {reason}") from None
    for message in records:
        key = (message.key() or b"").decode()
        value = message.value()
        document = json.loads(value) if value else {}
        state = document.get("state")
        if not state:
            continue
        if key.startswith("status-connector-"):
            name = key.removeprefix("status-connector-")
            connectors[name] = state
        elif key.startswith("status-task-"):
            name = key.removeprefix("status-task-")
            tasks[name] = state
        else:
            continue
        if document.get("trace"):
            traces[name] = str(document["trace"]).splitlines()[0]
    return ConnectorStates(connectors, tasks, traces)


def wait_until_mirroring(
    mirror: RunningMirror,
    properties: Mapping[str, str],
    target_admin: Broker,
    since_ms: int,
    within: float = READY_WITHIN_S,
) -> None:
    """Until the status topic says this run's connectors and source tasks run; MirrorMakerFailed
    at once when it exits or one of them fails, or after ``within`` seconds."""
    status_topic = internal_topic(properties, "status.storage.topic", DEFAULT_STATUS_TOPIC)
    deadline = time.monotonic() + within
    states = ConnectorStates({}, {}, {})
    while time.monotonic() < deadline:
        code = mirror.exited()
        if code is not None:
            raise MirrorMakerFailed(
                f"MirrorMaker exited with {code}: {last_error(mirror.log)} (log: {mirror.log})"
            )
        states = read_connector_states(target_admin, status_topic, since_ms)
        if states.failed():
            raise MirrorMakerFailed(f"MirrorMaker failed: {'; '.join(states.failed())} (log: {mirror.log})")
        if states.mirroring():
            return
        time.sleep(1)
    shown = ", ".join(
        f"{name} {state}" for name, state in sorted({**states.connectors, **states.tasks}.items())
    )
    raise MirrorMakerFailed(
        f"MirrorMaker was not mirroring within {within:g} s (status topic {status_topic}: "
        f"{shown or 'nothing yet'}; {last_error(mirror.log)}; log: {mirror.log})"
    )


def last_error(log: Path) -> str:
    """MirrorMaker's first ERROR line (the cause; later ones are its consequences)."""
    if not log.is_file():
        return "no log"
    for line in log.read_text(errors="replace").splitlines():
        if " ERROR " in line:
            return line.split(" ERROR ", 1)[1].strip()
    return "no error in its log"
