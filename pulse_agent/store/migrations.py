"""The database's schema, one migration at a time: a file of any earlier release is brought up to this one."""

from __future__ import annotations

import duckdb

# Append-only: a released migration is never edited, a new one is added at the end.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE results (
        ts               TIMESTAMPTZ NOT NULL,  -- run start
        check_name       VARCHAR     NOT NULL,
        ok               BOOLEAN     NOT NULL,
        degraded         BOOLEAN     NOT NULL,
        status_code      SMALLINT,
        response_time_ms DOUBLE,
        error_kind       VARCHAR,
        error            VARCHAR,
        attempts         SMALLINT    NOT NULL,
        scheduled_ts     TIMESTAMPTZ
    );
    """,
    """
    ALTER TABLE results ADD COLUMN dns_ms DOUBLE;
    ALTER TABLE results ADD COLUMN connect_ms DOUBLE;
    ALTER TABLE results ADD COLUMN tls_ms DOUBLE;
    ALTER TABLE results ADD COLUMN first_byte_ms DOUBLE;
    ALTER TABLE results ADD COLUMN cert_expires TIMESTAMPTZ;
    """,
    """
    ALTER TABLE results ADD COLUMN maintenance BOOLEAN NOT NULL DEFAULT false;
    CREATE TABLE incidents (
        id                 VARCHAR PRIMARY KEY,
        check_name         VARCHAR     NOT NULL,
        opened_at          TIMESTAMPTZ NOT NULL,  -- first failing run of the streak that opened it
        resolved_at        TIMESTAMPTZ,           -- first ok run of the streak that resolved it
        first_error_kind   VARCHAR,
        first_error        VARCHAR,
        last_notified_at   TIMESTAMPTZ NOT NULL,
        notifications_sent INTEGER     NOT NULL DEFAULT 0  -- deliveries, one per URL
    );
    CREATE TABLE alert_state (
        check_name    VARCHAR PRIMARY KEY,
        transition_ts TIMESTAMPTZ NOT NULL,  -- the run that caused the last recorded event
        degraded      BOOLEAN     NOT NULL
    );
    CREATE TABLE outbox (
        id              BIGINT PRIMARY KEY,
        created_at      TIMESTAMPTZ NOT NULL,
        check_name      VARCHAR     NOT NULL,
        incident_id     VARCHAR,
        event           VARCHAR     NOT NULL,
        notifier        VARCHAR     NOT NULL,
        url_key         VARCHAR     NOT NULL,  -- hash of the URL; the URL itself (a secret) stays in the config
        url_hint        VARCHAR     NOT NULL,  -- the URL with secrets masked
        kind            VARCHAR     NOT NULL,  -- Apprise notify type
        title           VARCHAR     NOT NULL,
        body            VARCHAR     NOT NULL,
        attempts        INTEGER     NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMPTZ NOT NULL,
        delivered_at    TIMESTAMPTZ,
        dead_at         TIMESTAMPTZ,  -- gave up: the dead letters
        last_error      VARCHAR
    );
    """,
    """
    CREATE TABLE config_versions (
        applied_at TIMESTAMPTZ NOT NULL,
        digest     VARCHAR     NOT NULL,  -- content hash of the config file(s)
        source     VARCHAR     NOT NULL,
        reason     VARCHAR     NOT NULL,  -- start, file, sighup, api
        checks     INTEGER     NOT NULL,
        added      VARCHAR[]   NOT NULL,  -- check names
        removed    VARCHAR[]   NOT NULL,
        changed    VARCHAR[]   NOT NULL,
        unchanged  INTEGER     NOT NULL
    );
    """,
    """
    CREATE TABLE results_hourly (
        hour             TIMESTAMPTZ NOT NULL,  -- start of the hour (UTC)
        check_name       VARCHAR     NOT NULL,
        runs             INTEGER     NOT NULL,  -- maintenance runs excluded, as in reports
        ok_runs          INTEGER     NOT NULL,
        degraded_runs    INTEGER     NOT NULL,
        failures_by_kind MAP(VARCHAR, INTEGER) NOT NULL,
        p50_ms           DOUBLE,
        p95_ms           DOUBLE,
        p99_ms           DOUBLE,
        max_ms           DOUBLE,
        PRIMARY KEY (hour, check_name)
    );
    """,
    # A mergeable latency sketch per hour and check (store/sketch.py), so percentiles outlive raw
    # results. NULL: rolled up before sketches; filled from the raw rows still stored by the agent's
    # storage maintenance, an hour per transaction (store/retention.py backfill_sketches), not here:
    # a big file would keep the agent from starting for minutes.
    """
    ALTER TABLE results_hourly ADD COLUMN latency_sketch MAP(SMALLINT, INTEGER);
    """,
    # Daily rollups of complete UTC days, merged from the hourly ones (store/retention.py), so
    # reports over weeks and months read 24x fewer rows and sketches; filled by the next roll-up.
    """
    CREATE TABLE results_daily (
        day              TIMESTAMPTZ NOT NULL,  -- start of the UTC day
        check_name       VARCHAR     NOT NULL,
        runs             INTEGER     NOT NULL,
        ok_runs          INTEGER     NOT NULL,
        degraded_runs    INTEGER     NOT NULL,
        failures_by_kind MAP(VARCHAR, INTEGER) NOT NULL,
        max_ms           DOUBLE,
        latency_sketch   MAP(SMALLINT, INTEGER),
        p50_ms           DOUBLE,  -- from the merged sketch (within 1 %)
        p95_ms           DOUBLE,
        p99_ms           DOUBLE,
        PRIMARY KEY (day, check_name)
    );
    """,
    # The protocol of each result's final response (docs/probes.md, "Transports").
    """
    ALTER TABLE results ADD COLUMN http_version VARCHAR;  -- 1.0, 1.1, 2
    ALTER TABLE results ADD COLUMN tls_version VARCHAR;   -- 1.2, 1.3; NULL over http
    """,
    # Facts of the check kinds beyond HTTP (DNS answers, ICMP round trips, a push's exit code):
    # one JSON column rather than a column per kind, documented in docs/probes.md.
    """
    ALTER TABLE results ADD COLUMN details JSON;
    """,
    # Push checks (probe/push.py): what the agent knows of each between pings, so a ping received
    # before a restart still counts and a restart neither hides nor invents a missed due time.
    """
    CREATE TABLE push_state (
        check_name VARCHAR PRIMARY KEY,
        since      TIMESTAMPTZ NOT NULL,  -- when the agent began to watch it
        last_ping  TIMESTAMPTZ,           -- the last success or failure ping
        accounted  TIMESTAMPTZ,           -- the latest due time met or reported late
        started    TIMESTAMPTZ            -- a /start not followed by its end yet
    );
    """,
    # silences, pauses, acks, held and grouped alerts (#21)
    """
    CREATE TABLE silences (
        id         VARCHAR PRIMARY KEY,
        matchers   VARCHAR[]   NOT NULL,  -- check=api, team=~pay.*
        starts_at  TIMESTAMPTZ NOT NULL,
        ends_at    TIMESTAMPTZ NOT NULL,  -- set to the expiry time when expired early
        reason     VARCHAR     NOT NULL,
        author     VARCHAR     NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE paused_checks (
        check_name VARCHAR PRIMARY KEY,
        paused_at  TIMESTAMPTZ NOT NULL,
        author     VARCHAR,
        reason     VARCHAR
    );
    ALTER TABLE incidents ADD COLUMN acked_at TIMESTAMPTZ;
    ALTER TABLE incidents ADD COLUMN acked_by VARCHAR;
    ALTER TABLE incidents ADD COLUMN held VARCHAR;  -- why its failure message was not sent (silence, depends_on)
    ALTER TABLE incidents ADD COLUMN source VARCHAR;    -- NULL: the check's own; slo:page, slo:ticket, rule
    ALTER TABLE incidents ADD COLUMN instance VARCHAR;  -- of a rule: its row's labels (JSON), the instance's identity
    ALTER TABLE outbox ADD COLUMN suppressed VARCHAR;  -- recorded, not sent: the silence or dependency that held it
    ALTER TABLE outbox ADD COLUMN group_key VARCHAR;   -- for a notifier with group_by: the group it waits in
    ALTER TABLE outbox ADD COLUMN line VARCHAR;        -- its line in a grouped message
    ALTER TABLE outbox ADD COLUMN grouped_into BIGINT; -- the id of the grouped message that carried it
    """,
    # Prefix sketches (store/prefix.py): an hour's within its UTC day, a day's within its UTC month;
    # NULL until storage maintenance fills them (store/retention.py fill_prefixes).
    """
    ALTER TABLE results_hourly ADD COLUMN latency_cum MAP(SMALLINT, INTEGER);
    ALTER TABLE results_daily ADD COLUMN latency_cum MAP(SMALLINT, INTEGER);
    """,
)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply the migrations the file has not seen; return its schema version."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
    # fetchall, not fetchone: DuckDB 2 refuses new work while a result is unfinished.
    [(current,)] = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()
    for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
        con.execute("BEGIN")
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
        con.execute("COMMIT")
    return len(MIGRATIONS)
