-- ml_outlier compares an entity with the peers of its principal type (a partner's
-- network with partners' networks, not with customers'): training vectors carry the
-- principal type. Rows written before this have none and are replaced at the next
-- baseline refresh.
ALTER TABLE ml_training ADD COLUMN IF NOT EXISTS ptype VARCHAR;
