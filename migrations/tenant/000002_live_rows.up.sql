-- Live-row counters for the stored-rows quota. Each user's count lives on
-- the user's scope row, which every commit of that user already locks, so
-- keeping it costs no contention between users; the tenant's total is the
-- sum over its users.
ALTER TABLE _sync_scope ADD COLUMN live_rows bigint NOT NULL DEFAULT 0;

UPDATE _sync_scope s SET live_rows = r.n
FROM (SELECT user_id, count(*) AS n FROM _sync_row_state WHERE NOT deleted GROUP BY user_id) r
WHERE r.user_id = s.user_id;

CREATE FUNCTION _sync_count_live_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE _sync_scope s SET live_rows = s.live_rows + d.n
        FROM (SELECT user_id, count(*) AS n FROM _sync_new WHERE NOT deleted GROUP BY user_id) d
        WHERE s.user_id = d.user_id;
    ELSE
        UPDATE _sync_scope s SET live_rows = s.live_rows + d.n
        FROM (SELECT n.user_id, sum((NOT n.deleted)::int - (NOT o.deleted)::int) AS n
              FROM _sync_new n JOIN _sync_old o USING (user_id, table_name, key_text)
              GROUP BY n.user_id) d
        WHERE s.user_id = d.user_id AND d.n <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER _sync_count_live_rows_ins AFTER INSERT ON _sync_row_state
    REFERENCING NEW TABLE AS _sync_new FOR EACH STATEMENT EXECUTE FUNCTION _sync_count_live_rows();
CREATE TRIGGER _sync_count_live_rows_upd AFTER UPDATE ON _sync_row_state
    REFERENCING OLD TABLE AS _sync_old NEW TABLE AS _sync_new FOR EACH STATEMENT EXECUTE FUNCTION _sync_count_live_rows();
