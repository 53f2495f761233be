-- Ids a target looked up by e-mail or mobile (Feishu's batch_get_id), with the time of the
-- answer, so that a nightly run asks again only for new people and answers past their age.
-- A new state `removed` (sync --prune) needs no schema change: deliveries.state is text.

CREATE TABLE identities (
    target       TEXT    NOT NULL,
    contact      TEXT    NOT NULL,               -- email:<address> | mobile:<number>, normalized
    namespace    TEXT    NOT NULL,               -- the settings the answer is valid under (app, id type)
    status       TEXT    NOT NULL,               -- found | not_found | resigned
    user_id      TEXT,                           -- the target's id, when found
    resolved_at  TEXT    NOT NULL,               -- RFC 3339, UTC
    PRIMARY KEY (target, contact)
);
