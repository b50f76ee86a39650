-- A calibration fitted on the operator's own labelled faces (`facesearch
-- calibrate`) for the model whose vectors this database holds; NULL: the
-- model's own (its spec's or its model file's). Gateways re-read it every
-- few seconds.
ALTER TABLE model ADD COLUMN calibration jsonb;
ALTER TABLE model ADD COLUMN calibrated_at timestamptz;
