-- The Brain index: one row per entity file under Brain/entities/ (the files are the
-- truth; this is rebuilt from them), and a full-text index over name, tags and body.
CREATE TABLE IF NOT EXISTS brain_entities (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,          -- relative to the vault: Brain/entities/…/x.md
    para_id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',    -- JSON array of strings
    frontmatter TEXT NOT NULL DEFAULT '{}', -- JSON object: the file's other frontmatter keys
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_brain_para_id ON brain_entities(para_id);
CREATE INDEX IF NOT EXISTS idx_brain_name_lower ON brain_entities(name_lower);

-- rowid = brain_entities.id
CREATE VIRTUAL TABLE IF NOT EXISTS brain_fts USING fts5(name, tags, body, tokenize = 'unicode61 remove_diacritics 2');
