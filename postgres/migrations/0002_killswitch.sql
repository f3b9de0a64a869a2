-- The kill switch (killswitch.Store): the trips in force, one row per
-- scope (the empty string for a field the scope leaves open). Every change
-- notifies the channel "<schema>.kill" at commit, so that every process's
-- trigger re-reads at once.
CREATE TABLE kill_trips (
	tenant text NOT NULL DEFAULT '',
	agent  text NOT NULL DEFAULT '',
	tool   text NOT NULL DEFAULT '',
	who    text NOT NULL,
	why    text NOT NULL,
	at     timestamptz NOT NULL,
	PRIMARY KEY (tenant, agent, tool)
);

CREATE FUNCTION kill_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify(TG_TABLE_SCHEMA || '.kill', '');
	RETURN NULL;
END $$;

CREATE TRIGGER kill_trips_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON kill_trips
	FOR EACH STATEMENT EXECUTE FUNCTION kill_notify();
