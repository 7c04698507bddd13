-- Signalbox schema version 5: a builder's builds in id order straight from an index.

-- `builders/N/builds` lists a builder's builds by id (the REST default order). The unique
-- (builderid, number) index finds them but cannot give that order, so every page sorted all
-- of the builder's builds first; this one reads the page and stops.
CREATE INDEX builds_builderid_id ON builds (builderid, id);
