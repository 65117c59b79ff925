-- The scheduler's ledger: one row per run of a scheduled agent (scheduled, manual, or
-- a missed occurrence run late or recorded as skipped), and each agent's pause state.
CREATE TABLE IF NOT EXISTS scheduled_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    trigger TEXT NOT NULL,          -- schedule | manual | missed
    scheduled_for TEXT,             -- the occurrence (RFC 3339, UTC); null for manual runs
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT NOT NULL,          -- running | completed | completed_no_output | error | interrupted | skipped
    session_id TEXT,
    output_path TEXT,               -- vault-relative
    error TEXT
);
CREATE INDEX IF NOT EXISTS idx_scheduled_runs_agent ON scheduled_runs(agent, id);
CREATE INDEX IF NOT EXISTS idx_scheduled_runs_occurrence ON scheduled_runs(agent, scheduled_for);

CREATE TABLE IF NOT EXISTS scheduled_agents (
    name TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL,       -- when the scheduler first saw it
    schedule_sig TEXT,              -- its schedule as last planned (text, zone, on/off)
    planned_since TEXT,             -- since when that schedule holds: occurrences before
                                    -- it (or before a resume) are never "missed"
    paused_at TEXT,                 -- set after consecutive failures; cleared on resume
    pause_reason TEXT,
    resumed_at TEXT,
    resumed_after_run INTEGER NOT NULL DEFAULT 0  -- failures count from runs after this id
);
