-- Which face model embedded the vectors this database holds: vectors are
-- only comparable with vectors of the same model and weights, so a gateway
-- serving another model, or a gallery made with one, is refused.
CREATE TABLE model (
    one            boolean PRIMARY KEY DEFAULT true CHECK (one),  -- a single row
    name           text    NOT NULL,
    weights_sha256 text    NOT NULL,
    dim            int     NOT NULL CHECK (dim > 0)
);
