-- The trace context (a W3C version-00 traceparent, always 55 characters) of the request that
-- queued a preview, so the worker's upstream call continues that request's trace (issue 4:
-- "the link-preview upstream call traced"). NULL for a row queued outside a request or before
-- this column existed: the worker starts a new trace for it. ADD COLUMN with a NULL default
-- rewrites no row, and the CHECK holds for every existing row (all NULL), so this is safe on a
-- database with previews in it. The length check bounds what a row can hold whatever writes it.
ALTER TABLE link_previews ADD COLUMN traceparent TEXT CHECK (traceparent IS NULL OR length(traceparent) = 55);
