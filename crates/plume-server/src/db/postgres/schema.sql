-- Plume schema, version 2 (PostgreSQL). Times are milliseconds since the Unix epoch, as in
-- SQLite, so rows move between the backends unchanged. Every integer is BIGINT.
CREATE TABLE IF NOT EXISTS plume_schema (
    version BIGINT NOT NULL
);

-- The database's clock in milliseconds: leases and rate limits are timed by it, never by a
-- node's clock, so skew between hosts cannot let one node take another's live lease.
CREATE OR REPLACE FUNCTION plume_now_ms() RETURNS BIGINT
    LANGUAGE SQL VOLATILE
    AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$;

CREATE TABLE IF NOT EXISTS users (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Keys are stored as SHA-256 hex of the whole key; the prefix only helps an operator tell
-- keys apart. A key is shown once, at creation.
CREATE TABLE IF NOT EXISTS api_keys (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    key_hash    TEXT   NOT NULL UNIQUE,
    key_prefix  TEXT   NOT NULL,
    disabled    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS credit_accounts (
    user_id     BIGINT PRIMARY KEY REFERENCES users(id),
    balance     BIGINT NOT NULL CHECK (balance >= 0),
    updated_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS tasks (
    id               BIGSERIAL PRIMARY KEY,
    user_id          BIGINT NOT NULL REFERENCES users(id),
    category         TEXT   NOT NULL,
    task_type        BIGINT,
    title            TEXT,
    project_id       TEXT,
    widget_mapping   JSONB,
    content          JSONB  NOT NULL,
    status           BIGINT NOT NULL CHECK (status BETWEEN 1 AND 6),
    progress         BIGINT NOT NULL DEFAULT 0,
    output           JSONB,
    error_code       TEXT,
    error_message    TEXT,
    last_error       TEXT,
    credits_cost     BIGINT NOT NULL CHECK (credits_cost >= 0),
    idempotency_key  TEXT,
    request_hash     TEXT,
    upstream_job     JSONB,
    input_files      JSONB,
    attempts         BIGINT NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    next_attempt_at  BIGINT NOT NULL DEFAULT 0,
    deadline_at      BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_idempotency ON tasks (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_runnable ON tasks (category, id) WHERE status < 3;
CREATE INDEX IF NOT EXISTS tasks_deadline ON tasks (deadline_at) WHERE status < 3;
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, id);
CREATE INDEX IF NOT EXISTS tasks_by_user ON tasks (user_id, id);

CREATE TABLE IF NOT EXISTS ledger (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    task_id     BIGINT REFERENCES tasks(id),
    kind        TEXT   NOT NULL CHECK (kind IN ('topup', 'reserve', 'capture', 'refund')),
    amount      BIGINT NOT NULL CHECK (amount > 0),
    created_at  BIGINT NOT NULL
);
-- No task entry can be written twice.
CREATE UNIQUE INDEX IF NOT EXISTS ledger_once_per_task ON ledger (task_id, kind) WHERE task_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ledger_by_user ON ledger (user_id);

-- Per-key token buckets shared by every node.
CREATE TABLE IF NOT EXISTS rate_buckets (
    key_id       BIGINT PRIMARY KEY,
    tokens       DOUBLE PRECISION NOT NULL,
    allowed      BOOLEAN NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- Every node LISTENs on plume_tasks. The payload is "<id> <category> <runnable 0|1>": sent when
-- a task is created, changes status or progress, or loses its lease (it is runnable again).
-- Lease renewals change none of these and stay quiet.
CREATE OR REPLACE FUNCTION plume_task_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT'
       OR NEW.status <> OLD.status
       OR NEW.progress <> OLD.progress
       OR NEW.lease_owner IS DISTINCT FROM OLD.lease_owner THEN
        PERFORM pg_notify('plume_tasks', NEW.id || ' ' || NEW.category || ' ' ||
            CASE WHEN NEW.status = 1 OR (NEW.status = 2 AND NEW.lease_owner IS NULL) THEN '1' ELSE '0' END);
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS tasks_notify ON tasks;
CREATE TRIGGER tasks_notify AFTER INSERT OR UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION plume_task_notify();
