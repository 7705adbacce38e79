-- Link previews: a durable queue. Rows are written in the same transaction as their post, so a
-- preview can't be lost by a crash or an upstream outage; the worker drains what is due.
CREATE TABLE link_previews (
  id              INTEGER PRIMARY KEY,
  post_id         INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
  url             TEXT    NOT NULL,
  status          TEXT    NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
  title           TEXT,
  error           TEXT,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  UNIQUE (post_id, url)
);
CREATE INDEX link_previews_due ON link_previews(next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX link_previews_post ON link_previews(post_id, id);
