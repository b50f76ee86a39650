-- A collection in S shards, each person's faces in one of them
-- (facesearch_common/placement.py: person_shard), fixed at creation.
ALTER TABLE collections ADD COLUMN shards int NOT NULL DEFAULT 1 CHECK (shards BETWEEN 1 AND 256);
ALTER TABLE memberships ADD COLUMN shard int NOT NULL DEFAULT 0 CHECK (shard >= 0);
CREATE INDEX memberships_by_shard ON memberships (tenant, collection, shard);
