-- Posts are indexed for search in batches after they commit (services/search-indexer.ts), not by
-- a trigger inside each write: FTS5 writes a new segment and merges at every commit, which made
-- a reply's commit 2-3x as expensive (0.13 ms against 0.07 ms per reply on `large`; batched, the
-- index costs ~1.3 us a post). `indexed_through` is the high-water mark: every post with a
-- smaller or equal id is in posts_fts, and it moves in the same transaction that indexes.
CREATE TABLE search_state (
  name            TEXT PRIMARY KEY,
  indexed_through INTEGER NOT NULL
);
-- The old trigger indexed every existing post.
INSERT INTO search_state (name, indexed_through) VALUES ('posts', (SELECT coalesce(max(id), 0) FROM posts));

DROP TRIGGER posts_fts_insert;
DROP TRIGGER posts_fts_update;
DROP TRIGGER posts_fts_delete;

-- Only rows already indexed are touched in the index; a newer row is indexed later with the body
-- it has then. FTS5's 'delete' must get exactly the indexed values, so it never runs for a row
-- that is not in the index.
CREATE TRIGGER posts_fts_update AFTER UPDATE OF body ON posts
  WHEN old.id <= (SELECT indexed_through FROM search_state WHERE name = 'posts') BEGIN
  INSERT INTO posts_fts(posts_fts, rowid, body) VALUES ('delete', old.id, old.body);
  INSERT INTO posts_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts
  WHEN old.id <= (SELECT indexed_through FROM search_state WHERE name = 'posts') BEGIN
  INSERT INTO posts_fts(posts_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
-- A row id at or below the mark can come back (SQLite reuses the largest rowid after a delete):
-- that row is indexed at once, as before, since the indexer only looks past the mark.
CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts
  WHEN new.id <= (SELECT indexed_through FROM search_state WHERE name = 'posts') BEGIN
  INSERT INTO posts_fts(rowid, body) VALUES (new.id, new.body);
END;
