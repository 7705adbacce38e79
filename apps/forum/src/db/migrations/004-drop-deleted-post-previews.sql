-- Deleting a post now removes its previews in the same transaction (services/forum.ts). Before,
-- a deleted post kept them: the previews route still listed its links and the worker still
-- fetched its pending ones. This removes what earlier deletes left behind (one pass over the
-- previews, a primary-key lookup each, rather than a scan of every post).
DELETE FROM link_previews WHERE (SELECT deleted FROM posts WHERE posts.id = link_previews.post_id) = 1;
