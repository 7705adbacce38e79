-- FTS5 merges an index's segments inside the transaction that writes a new one. For posts_fts
-- that is the indexer's batch (migration 003), on the event loop: at the forum bench's reply
-- rate on `large`, one batch in ~100 took 20-210 ms of CPU merging (profiled: the half-load
-- phase's worst stalls). With automerge off, a batch only writes its segment; the checkpoint
-- worker merges them in bounded steps under a pause in writes (db/checkpoint-worker.mjs).
-- usermerge 16: the worker's 'merge' steps wait for 16 segments on a level and merge them at
-- once. Each merge has a fixed cost (~25 ms a merge on `large`, however few pages it writes), and
-- at FTS5's 4 the worker spent 1.2 s in 30 s merging at 330 replies/s; at 16, 0.37 s, in ~13
-- pauses. A search reads up to 15 segments a level instead of 3 (in the search worker).
-- crisismerge bounds the segments on one level if the worker does not run (':memory:', a
-- worker that died): the 64th merges them in the writer's transaction, as FTS5 always did.
INSERT INTO posts_fts (posts_fts, rank) VALUES ('automerge', 0);
INSERT INTO posts_fts (posts_fts, rank) VALUES ('usermerge', 16);
INSERT INTO posts_fts (posts_fts, rank) VALUES ('crisismerge', 64);
