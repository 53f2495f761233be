-- What each attempt was: a change at the target (upload, remove) or a read about one person
-- (check: the pre-flight's check of one user; download: `fetch`). A read is recorded in the same
-- audit trail, with the outcome `found` or `not_found` when the target answered, but leaves the
-- person's delivery state and deliveries.attempts alone.
--
-- Existing rows are uploads or removals, told apart by what they sent: every upload recorded
-- the hash of the bytes it sent (sent_hash), and no removal ever did (sync --prune recorded its
-- deletions with sent_hash NULL, with the outcome `removed` when they succeeded). So a row
-- without a sent_hash is a removal, whatever its outcome; every other row is an upload.

ALTER TABLE attempts ADD COLUMN kind TEXT NOT NULL DEFAULT 'upload'; -- upload | remove | check | download

UPDATE attempts SET kind = 'remove' WHERE sent_hash IS NULL;
