-- Facts about the database itself. `seed` records the demo seeding: 'started' in the seed's first
-- transaction (under the write lock, so two instances never both seed), 'done' in its last, so a
-- seed that was interrupted is told apart from user data at the next start.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
