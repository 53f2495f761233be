-- The face hash of each photo the pipeline has looked at (issue 16, `duplicate_photo`), by the
-- photo file's content hash (blake3, hex, as people.photo_hash): a photo is decoded for its face
-- once, and a nightly run compares every roster person's face from here without decoding.
-- face_hash is the 64 bits of photo::FaceHash as a signed integer; NULL: no face was found (or
-- the file does not decode), so the photo takes no part in the duplicate check.

CREATE TABLE face_hashes (
    source_hash  TEXT    NOT NULL PRIMARY KEY,
    face_hash    INTEGER
);
