-- The state of every person and target, the audit trail of attempts, and the runs.
-- Migrations are never edited once released: add a new file for every change.

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL,               -- plan | sync | fetch
    started_at   TEXT    NOT NULL,               -- RFC 3339, UTC
    finished_at  TEXT,
    status       TEXT    NOT NULL,               -- running | completed | interrupted | failed
    exit_code    INTEGER,
    summary      TEXT                            -- JSON counts, written at the end
);

-- One row per roster person, refreshed on every run that reads the roster.
CREATE TABLE people (
    person_id         TEXT    PRIMARY KEY,
    name              TEXT    NOT NULL DEFAULT '',
    roster_row        INTEGER,
    photo_path        TEXT,                      -- relative to the photo folder
    photo_size        INTEGER,
    photo_mtime_ns    INTEGER,
    photo_hash        TEXT,                      -- blake3 of the source photo bytes
    last_seen_run     INTEGER REFERENCES runs(id),
    updated_at        TEXT    NOT NULL
);

-- One row per person and target.
CREATE TABLE deliveries (
    person_id        TEXT    NOT NULL,
    target           TEXT    NOT NULL,
    state            TEXT    NOT NULL,           -- pending | delivered | failed_permanent | failed_retryable | invalid | skipped
    source_hash      TEXT,                       -- the source photo this state is about
    fingerprint      TEXT,                       -- profile + target settings this state is about
    target_user_id   TEXT,                       -- the id the target knows the person by
    delivered_source_hash TEXT,                  -- the source photo of the last delivery
    delivered_hash   TEXT,                       -- blake3 of the bytes last delivered
    delivered_fingerprint TEXT,                  -- profile + target settings of the last delivery
    delivered_user_id TEXT,                      -- the target user id of the last delivery
    delivered_at     TEXT,
    reason_code      TEXT,
    reason           TEXT,
    remote_id        TEXT,                       -- face_id or the remote user id
    request_id       TEXT,                       -- X-Tt-Logid or similar, for the vendor's support
    attempts         INTEGER NOT NULL DEFAULT 0, -- attempts since the photo last changed
    updated_at       TEXT    NOT NULL,
    PRIMARY KEY (person_id, target)
);

CREATE INDEX deliveries_by_target_state ON deliveries (target, state);

-- The audit trail: one row per request, written before it goes out and completed after.
CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    person_id    TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    sent_hash    TEXT,                           -- blake3 of the bytes sent
    started_at   TEXT    NOT NULL,
    finished_at  TEXT,
    outcome      TEXT    NOT NULL,               -- in_flight | delivered | transient | permanent | fatal | interrupted
    http_status  INTEGER,
    code         TEXT,
    message      TEXT,
    request_id   TEXT,
    remote_id    TEXT,
    duration_ms  INTEGER
);

CREATE INDEX attempts_by_person ON attempts (person_id, target);
CREATE INDEX attempts_in_flight ON attempts (outcome) WHERE outcome = 'in_flight';
