-- Accounts
CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  username      TEXT    NOT NULL COLLATE NOCASE UNIQUE,
  password_hash TEXT    NOT NULL,
  created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
  token_hash BLOB    PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE INDEX sessions_user ON sessions(user_id);

-- Forum
CREATE TABLE forums (
  id          INTEGER PRIMARY KEY,
  slug        TEXT    NOT NULL UNIQUE,
  name        TEXT    NOT NULL,
  description TEXT    NOT NULL DEFAULT '',
  position    INTEGER NOT NULL DEFAULT 0,
  topic_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX forums_position ON forums(position, id);

CREATE TABLE topics (
  id         INTEGER PRIMARY KEY,
  forum_id   INTEGER NOT NULL REFERENCES forums(id),
  author_id  INTEGER NOT NULL REFERENCES users(id),
  title      TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  post_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX topics_forum_updated ON topics(forum_id, updated_at DESC, id DESC);
CREATE INDEX topics_author ON topics(author_id);

CREATE TABLE posts (
  id          INTEGER PRIMARY KEY,
  topic_id    INTEGER NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
  parent_id   INTEGER REFERENCES posts(id),
  author_id   INTEGER NOT NULL REFERENCES users(id),
  body        TEXT    NOT NULL,
  depth       INTEGER NOT NULL DEFAULT 0,
  reply_count INTEGER NOT NULL DEFAULT 0,
  deleted     INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX posts_topic_created ON posts(topic_id, created_at, id);
CREATE INDEX posts_author_created ON posts(author_id, created_at DESC);
CREATE INDEX posts_parent ON posts(parent_id, created_at, id);
-- Root posts of a topic, in order: the first page of a threaded topic reads only these.
CREATE INDEX posts_topic_roots ON posts(topic_id, created_at, id) WHERE parent_id IS NULL;

-- Wiki
CREATE TABLE pages (
  id                  INTEGER PRIMARY KEY,
  namespace           TEXT    NOT NULL,
  title               TEXT    NOT NULL,
  content             TEXT    NOT NULL,
  current_revision_id INTEGER,
  author_id           INTEGER NOT NULL REFERENCES users(id),
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX pages_namespace_title ON pages(namespace, title);
CREATE INDEX pages_author ON pages(author_id);

CREATE TABLE revisions (
  id         INTEGER PRIMARY KEY,
  page_id    INTEGER NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
  parent_id  INTEGER REFERENCES revisions(id),
  author_id  INTEGER NOT NULL REFERENCES users(id),
  content    TEXT    NOT NULL,
  comment    TEXT    NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE INDEX revisions_page_created ON revisions(page_id, created_at DESC, id DESC);
CREATE INDEX revisions_parent ON revisions(parent_id);
CREATE INDEX revisions_author ON revisions(author_id);

CREATE TABLE categories (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);

CREATE TABLE page_categories (
  page_id     INTEGER NOT NULL REFERENCES pages(id) ON DELETE CASCADE,
  category_id INTEGER NOT NULL REFERENCES categories(id),
  PRIMARY KEY (page_id, category_id)
) WITHOUT ROWID;
CREATE INDEX page_categories_category ON page_categories(category_id, page_id);

-- Full-text search: external-content FTS5 tables kept in sync by triggers.
CREATE VIRTUAL TABLE posts_fts USING fts5(body, content='posts', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
  INSERT INTO posts_fts(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
  INSERT INTO posts_fts(posts_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER posts_fts_update AFTER UPDATE OF body ON posts BEGIN
  INSERT INTO posts_fts(posts_fts, rowid, body) VALUES ('delete', old.id, old.body);
  INSERT INTO posts_fts(rowid, body) VALUES (new.id, new.body);
END;

CREATE VIRTUAL TABLE pages_fts USING fts5(title, content, content='pages', content_rowid='id', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER pages_fts_insert AFTER INSERT ON pages BEGIN
  INSERT INTO pages_fts(rowid, title, content) VALUES (new.id, new.title, new.content);
END;
CREATE TRIGGER pages_fts_delete AFTER DELETE ON pages BEGIN
  INSERT INTO pages_fts(pages_fts, rowid, title, content) VALUES ('delete', old.id, old.title, old.content);
END;
CREATE TRIGGER pages_fts_update AFTER UPDATE OF title, content ON pages BEGIN
  INSERT INTO pages_fts(pages_fts, rowid, title, content) VALUES ('delete', old.id, old.title, old.content);
  INSERT INTO pages_fts(rowid, title, content) VALUES (new.id, new.title, new.content);
END;
