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

-- Task changes reach the other nodes by NOTIFY on plume_tasks, sent by the node after its
-- transaction committed (db/postgres/mod.rs), not by a trigger: a NOTIFY inside a transaction
-- holds PostgreSQL's global notify lock through the commit, which would serialize every create
-- and settle of the whole cluster.
DROP TRIGGER IF EXISTS tasks_notify ON tasks;
DROP FUNCTION IF EXISTS plume_task_notify();

-- Create in one round trip: the user's credit account row is locked for as long as the
-- transaction runs, so everything between that lock and the commit happens here, in the
-- database, instead of across several client round trips. Returns what happened, the balance
-- (for 'insufficient') and the task id ('created', 'existing').
CREATE OR REPLACE FUNCTION plume_create_task(
    p_user BIGINT, p_category TEXT, p_type BIGINT, p_title TEXT, p_project TEXT,
    p_widget JSONB, p_content JSONB, p_cost BIGINT, p_key TEXT, p_hash TEXT,
    p_deadline BIGINT, p_now BIGINT, p_inputs JSONB, p_window BIGINT)
RETURNS TABLE (out_outcome TEXT, out_balance BIGINT, out_task BIGINT)
LANGUAGE plpgsql
AS $$
DECLARE
    v_balance BIGINT;
    v_id BIGINT;
    v_hash TEXT;
BEGIN
    SELECT c.balance INTO v_balance FROM credit_accounts c WHERE c.user_id = p_user FOR UPDATE;
    IF p_key IS NOT NULL THEN
        -- A key older than the window is free again.
        UPDATE tasks SET idempotency_key = NULL
         WHERE user_id = p_user AND idempotency_key = p_key AND created_at < p_now - p_window;
        SELECT t.id, t.request_hash INTO v_id, v_hash
          FROM tasks t WHERE t.user_id = p_user AND t.idempotency_key = p_key;
        IF v_id IS NOT NULL THEN
            RETURN QUERY SELECT CASE WHEN v_hash = p_hash THEN 'existing' ELSE 'conflict' END,
                                NULL::BIGINT, v_id;
            RETURN;
        END IF;
    END IF;
    IF v_balance IS NULL THEN
        RETURN QUERY SELECT 'no_account'::TEXT, NULL::BIGINT, NULL::BIGINT;
        RETURN;
    END IF;
    IF v_balance < p_cost THEN
        RETURN QUERY SELECT 'insufficient'::TEXT, v_balance, NULL::BIGINT;
        RETURN;
    END IF;
    UPDATE credit_accounts SET balance = credit_accounts.balance - p_cost, updated_at = p_now
     WHERE user_id = p_user;
    INSERT INTO tasks (user_id, category, task_type, title, project_id, widget_mapping, content,
                       status, credits_cost, idempotency_key, request_hash, deadline_at,
                       created_at, input_files)
    VALUES (p_user, p_category, p_type, p_title, p_project, p_widget, p_content, 1, p_cost,
            p_key, p_hash, p_deadline, p_now, p_inputs)
    RETURNING id INTO v_id;
    IF p_cost > 0 THEN
        INSERT INTO ledger (user_id, task_id, kind, amount, created_at)
        VALUES (p_user, v_id, 'reserve', p_cost, p_now);
    END IF;
    RETURN QUERY SELECT 'created'::TEXT, v_balance - p_cost, v_id;
END
$$;
