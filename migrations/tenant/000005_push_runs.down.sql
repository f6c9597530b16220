DELETE FROM _sync_push_session;
DROP TABLE _sync_push_run;

CREATE TABLE _sync_push_row (
    push_id          uuid NOT NULL,
    row_ordinal      bigint NOT NULL,
    table_name       text NOT NULL,
    key_text         text NOT NULL,
    op               text NOT NULL,
    base_row_version bigint NOT NULL,
    cols             text NOT NULL DEFAULT '',
    payload          jsonb,
    PRIMARY KEY (push_id, row_ordinal)
);
