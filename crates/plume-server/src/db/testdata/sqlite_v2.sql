-- Plume schema, version 2 (SQLite). Times are milliseconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Keys are stored as SHA-256 hex of the whole key; the prefix only helps an operator tell
-- keys apart. A key is shown once, at creation.
CREATE TABLE IF NOT EXISTS api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    key_hash    TEXT    NOT NULL UNIQUE,
    key_prefix  TEXT    NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS credit_accounts (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id),
    balance     INTEGER NOT NULL CHECK (balance >= 0),
    updated_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    task_id     INTEGER REFERENCES tasks(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('topup', 'reserve', 'capture', 'refund')),
    amount      INTEGER NOT NULL CHECK (amount > 0),
    created_at  INTEGER NOT NULL
);
-- No task entry can be written twice.
CREATE UNIQUE INDEX IF NOT EXISTS ledger_once_per_task ON ledger (task_id, kind) WHERE task_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ledger_by_user ON ledger (user_id);

CREATE TABLE IF NOT EXISTS tasks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          INTEGER NOT NULL REFERENCES users(id),
    category         TEXT    NOT NULL,
    task_type        INTEGER,
    title            TEXT,
    project_id       TEXT,
    widget_mapping   TEXT,
    content          TEXT    NOT NULL,
    status           INTEGER NOT NULL CHECK (status BETWEEN 1 AND 6),
    progress         INTEGER NOT NULL DEFAULT 0,
    output           TEXT,
    error_code       TEXT,
    error_message    TEXT,
    last_error       TEXT,
    credits_cost     INTEGER NOT NULL CHECK (credits_cost >= 0),
    idempotency_key  TEXT,
    request_hash     TEXT,
    upstream_job     TEXT,
    input_files      TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    deadline_at      INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_idempotency ON tasks (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_runnable ON tasks (category, status, id) WHERE status < 3;
CREATE INDEX IF NOT EXISTS tasks_deadline ON tasks (deadline_at) WHERE status < 3;
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, id);
