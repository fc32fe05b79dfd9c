"""`migration status` judged from what it read (pure); the real clusters are in
tests/integration/test_cluster_migration.py."""

from __future__ import annotations

from infra.commands.migration import status_exit_code
from infra.live.migration_status import MigrationStatus, MirrorScope, MovingService, judge, to_json, to_text

API = MovingService("api", "source", produces=("orders",), consumes=(), group=None)
NOW_MS = 1_800_000_000_000
MAILER = MovingService("mailer", "source", produces=(), consumes=("orders",), group="shop.mailer")


def _status(
    *services: MovingService,
    mirrored: dict[tuple[str, int], int],
    source_committed: dict[tuple[str, str, int], int] | None = None,
    target_committed: dict[tuple[str, str, int], int] | None = None,
    active_on_source: set[str] | None = None,
    last_copy_ms: int | None = NOW_MS,
    waiting_since_ms: int | None = None,
) -> MigrationStatus:
    scope = MirrorScope(
        ("orders",),
        tuple(services),
        "mm2.shop.dev.offsets",
        "source",
        keep_seconds=3600,
        tolerated_lag_seconds=30,
    )
    return judge(
        scope,
        source_ends={("orders", 0): 10, ("orders", 1): 5},
        target_ends={("orders", 0): 12, ("orders", 1): 5},
        mirrored=mirrored,
        source_committed=source_committed or {},
        target_committed=target_committed or {},
        active={"source": active_on_source or set(), "target": set()},
        first_unmirrored_ms={key: waiting_since_ms for key in (("orders", 0), ("orders", 1))}
        if waiting_since_ms is not None
        else {},
        now_ms=NOW_MS,
        last_copy_ms=last_copy_ms,
    )


def test_lag_counts_what_the_mirror_has_not_committed_as_copied() -> None:
    status = _status(API, MAILER, mirrored={("orders", 0): 7})
    assert [(t.topic, t.source_end, t.lag, t.partitions_never_mirrored) for t in status.topics] == [
        ("orders", 15, 8, 1)
    ]
    assert not status.healthy
    assert "mailer: the mirror still lags on orders" in status.blocked_moves[1]


def test_records_copied_within_the_tolerance_keep_the_mirror_in_sync_but_not_drained() -> None:
    behind = {("orders", 0): 9, ("orders", 1): 5}
    fresh = _status(API, MAILER, mirrored=behind, waiting_since_ms=NOW_MS - 2_000)
    assert (fresh.topics[0].lag, fresh.topics[0].lag_seconds, fresh.in_sync, fresh.drained) == (
        1,
        2,
        True,
        False,
    )
    stale = _status(API, MAILER, mirrored=behind, waiting_since_ms=NOW_MS - 31_000)
    assert (stale.topics[0].lag_seconds, stale.in_sync) == (31, False)


def test_a_consumer_may_move_once_its_group_is_translated_and_stopped_on_the_source() -> None:
    caught_up = {("orders", 0): 10, ("orders", 1): 5}
    committed = {("shop.mailer", "orders", 0): 9, ("shop.mailer", "orders", 1): 5}
    untranslated = _status(API, MAILER, mirrored=caught_up, source_committed=committed)
    assert not untranslated.healthy
    assert any("not yet translated" in step for step in untranslated.blocked_moves)

    translated = {("shop.mailer", "orders", 0): 10, ("shop.mailer", "orders", 1): 5}
    running = _status(
        API,
        MAILER,
        mirrored=caught_up,
        source_committed=committed,
        target_committed=translated,
        active_on_source={"shop.mailer"},
    )
    assert any("still has members on the source" in step for step in running.blocked_moves)

    stopped = _status(
        API, MAILER, mirrored=caught_up, source_committed=committed, target_committed=translated
    )
    assert stopped.healthy
    assert stopped.safe_moves == ("mailer: may move to target",)
    assert stopped.blocked_moves == ("api: mailer still consumes orders on the source",)
    # 1 record behind on the source, 2 on the target: moving now re-reads one record.
    assert [g.rereads for g in stopped.groups] == [1]


def test_a_producer_may_move_once_every_consumer_of_its_topics_is_on_the_target() -> None:
    moved = MovingService("mailer", "target", produces=(), consumes=("orders",), group="shop.mailer")
    status = _status(API, moved, mirrored={("orders", 0): 10, ("orders", 1): 5})
    assert status.safe_moves == (
        "api: may move to target: stop it on the source, start it on the target once the mirror drained "
        "its topics (its topics are drained)",
    )
    assert status.sides == {"api": "source", "mailer": "target"}
    assert not status.source_can_go


def test_the_source_can_go_when_all_moved_and_the_mirror_was_idle_for_keep() -> None:
    on_target = [MovingService(s.name, "target", s.produces, s.consumes, s.group) for s in (API, MAILER)]
    caught_up = {("orders", 0): 10, ("orders", 1): 5}
    assert not _status(*on_target, mirrored=caught_up, last_copy_ms=NOW_MS - 3_599_000).source_can_go
    done = _status(*on_target, mirrored=caught_up, last_copy_ms=NOW_MS - 3_600_000)
    assert done.source_can_go
    assert "the source can go" in to_text(done, "dev")
    assert '"source_can_go": true' in to_json(done)
    assert not _status(*on_target, mirrored={("orders", 0): 9}, last_copy_ms=NOW_MS - 7_200_000).source_can_go


def test_a_mirror_that_never_committed_a_copy_never_lets_the_source_go() -> None:
    # Retention may have emptied the source's topics: idleness is the mirror's own last commit,
    # and a mirror with none (never ran, or its offsets topic was lost) is not known to be idle.
    on_target = [MovingService(s.name, "target", s.produces, s.consumes, s.group) for s in (API, MAILER)]
    caught_up = {("orders", 0): 10, ("orders", 1): 5}
    unknown = _status(*on_target, mirrored=caught_up, last_copy_ms=None)
    assert (unknown.idle_seconds, unknown.source_can_go) == (None, False)
    assert "(it has committed no copy yet, lag 0)" in to_text(unknown, "dev")


def test_a_partition_whose_offsets_past_the_mirror_hold_only_a_commit_marker_is_drained() -> None:
    # A transactional producer's last commit marker takes offset 9 of partition 0: the mirror
    # copied every record (next 9), and a read_committed reader finds nothing from there.
    moved = MovingService("mailer", "target", produces=(), consumes=("orders",), group="shop.mailer")
    scope = MirrorScope(("orders",), (API, moved), "mm2.shop.dev.offsets", "source", 3600, 30)

    def judged(first_unmirrored_ms: dict[tuple[str, int], int | None]) -> MigrationStatus:
        return judge(
            scope,
            source_ends={("orders", 0): 10, ("orders", 1): 5},
            target_ends={("orders", 0): 9, ("orders", 1): 5},
            mirrored={("orders", 0): 9, ("orders", 1): 5},
            source_committed={},
            target_committed={},
            active={"source": set(), "target": set()},
            first_unmirrored_ms=first_unmirrored_ms,
            now_ms=NOW_MS,
            last_copy_ms=NOW_MS,
        )

    drained = judged({("orders", 0): None})
    assert (drained.topics[0].lag, drained.drained, drained.in_sync) == (0, True, True)
    assert drained.safe_moves[0].endswith("(its topics are drained)")
    # A committed record after the mirror's position is still lag; one not read in time is unknown.
    waiting = judged({("orders", 0): NOW_MS - 1_000})
    assert (waiting.topics[0].lag, waiting.drained, waiting.in_sync) == (1, False, True)
    unread = judged({})
    assert (unread.drained, unread.in_sync) == (False, False)


def test_a_consumer_with_per_instance_groups_is_never_called_translated() -> None:
    # Its pods on the target join groups named after themselves: no translated offset exists.
    per_pod = MovingService(
        "indexer", "source", produces=(), consumes=("orders",), group="shop.indexer.", group_is_prefix=True
    )
    status = _status(API, per_pod, mirrored={("orders", 0): 10, ("orders", 1): 5})
    assert status.groups == ()
    assert status.per_instance_groups == {"indexer": "shop.indexer."}
    assert status.safe_moves == (
        "indexer: may move to target; its groups are per instance (shop.indexer.*), not translated: "
        "new groups start at auto.offset.reset (earliest: re-read, never lost)",
    )
    assert "  shop.indexer.* (indexer): per instance, not translated: new groups start at" in to_text(
        status, "dev"
    )
    assert '"indexer": "shop.indexer."' in to_json(status)


def test_a_pipeline_gates_on_exit_0_and_waits_on_3() -> None:
    caught_up = {("orders", 0): 10, ("orders", 1): 5}
    lagging = _status(API, MAILER, mirrored={("orders", 0): 7})
    assert [status_exit_code(lagging, require) for require in ("in-sync", "source-can-go", "mailer")] == [
        3,
        3,
        3,
    ]
    moved = MovingService("mailer", "target", produces=(), consumes=("orders",), group="shop.mailer")
    in_sync = _status(API, moved, mirrored=caught_up, last_copy_ms=NOW_MS)
    assert [
        status_exit_code(in_sync, require) for require in ("in-sync", "source-can-go", "api", "mailer")
    ] == [
        0,
        3,  # api is still on the source
        0,  # every consumer of its topic moved: it may go now
        0,  # moved already
    ]
    on_target = [MovingService(s.name, "target", s.produces, s.consumes, s.group) for s in (API, MAILER)]
    done = _status(*on_target, mirrored=caught_up, last_copy_ms=NOW_MS - 3_600_000)
    assert status_exit_code(done, "source-can-go") == 0
