-- The system of record: every tenant's collections, persons, memberships and
-- face vectors, and the change log that the indexers follow.

CREATE TABLE collections (
    tenant  text   NOT NULL,
    id      text   NOT NULL,
    name    text   NOT NULL,
    data    jsonb  NOT NULL,  -- the API's collection fields
    created bigint GENERATED ALWAYS AS IDENTITY,  -- listing order
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, name)
);

CREATE TABLE persons (
    tenant  text   NOT NULL,
    id      text   NOT NULL,
    data    jsonb  NOT NULL,  -- the API's person fields but its collections
    -- The change-log position of the last write that changed this person's
    -- answer (its memberships included): cached answers carry it.
    version bigint NOT NULL,
    created bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE memberships (
    tenant     text NOT NULL,
    collection text NOT NULL,
    person     text NOT NULL,
    created    bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (tenant, collection, person),
    FOREIGN KEY (tenant, collection) REFERENCES collections (tenant, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant, person) REFERENCES persons (tenant, id) ON DELETE CASCADE
);
CREATE INDEX memberships_by_person ON memberships (tenant, person);

CREATE TABLE faces (
    tenant  text  NOT NULL,
    person  text  NOT NULL,
    face_id text  NOT NULL,
    vector  bytea NOT NULL CHECK (length(vector) > 0 AND length(vector) % 4 = 0),  -- little-endian float32
    created bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (tenant, person, face_id),
    FOREIGN KEY (tenant, person) REFERENCES persons (tenant, id) ON DELETE CASCADE
);

-- One row per (collection, person) a write touched; person NULL: the
-- collection itself went. Writers number their rows under one advisory lock
-- held to commit, so sequence order is commit order and a follower reading
-- `seq > last` never skips a row that commits late.
CREATE SEQUENCE changes_seq;
CREATE TABLE changes (
    seq        bigint PRIMARY KEY,
    tenant     text   NOT NULL,
    collection text   NOT NULL,
    person     text
);
