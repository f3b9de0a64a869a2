-- The audit log (audit.Store): one row per line, per log, in chain order.
-- The table is append-only: triggers refuse UPDATE, DELETE and TRUNCATE
-- (for every role, the owner included; only a superuser who disables the
-- triggers gets past them), and every INSERT must extend the chain: seq
-- the next one, "seq", "log" and "prev" inside the line matching, "prev"
-- the SHA-256 of the previous line. Writers take the log's advisory lock
-- (audit_head) before they read the head, so they take turns.
CREATE TABLE audit_log (
	log  text NOT NULL,
	seq  bigint NOT NULL CHECK (seq >= 0),
	line bytea NOT NULL,
	PRIMARY KEY (log, seq)
);

-- Checkpoints kept outside a log (an audit.Sink): signed notes of a log's
-- size and head. Append-only too.
CREATE TABLE audit_checkpoints (
	log  text NOT NULL,
	size bigint NOT NULL,
	head text NOT NULL,
	at   timestamptz NOT NULL,
	note text NOT NULL,
	PRIMARY KEY (log, size, at)
);

CREATE FUNCTION audit_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'agentguard: % is append-only: % refused', TG_TABLE_NAME, TG_OP
		USING ERRCODE = 'insufficient_privilege';
END $$;

-- Statement triggers: every UPDATE, DELETE or TRUNCATE is refused, even
-- one that matches no row.
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();

-- audit_head takes the log's lock for the rest of the transaction and
-- returns its size (the next seq) and head (the SHA-256 of the last line,
-- NULL when the log is empty).
CREATE FUNCTION audit_head(p_log text, OUT size bigint, OUT head bytea)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended('agentguard.audit.' || current_schema() || '.' || p_log, 0));
	SELECT l.seq + 1, sha256(l.line) INTO size, head
		FROM audit_log l WHERE l.log = p_log ORDER BY l.seq DESC LIMIT 1;
	IF NOT FOUND THEN
		size := 0;
		head := NULL;
	END IF;
END $$;

-- audit_chain refuses an INSERT that does not extend the chain.
CREATE FUNCTION audit_chain() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	h record;
	j jsonb;
	want text;
BEGIN
	SELECT * INTO h FROM audit_head(NEW.log);
	BEGIN
		j := convert_from(NEW.line, 'UTF8')::jsonb;
	EXCEPTION WHEN others THEN
		RAISE EXCEPTION 'agentguard: audit line % of log % is not JSON', NEW.seq, NEW.log
			USING ERRCODE = 'check_violation';
	END;
	want := coalesce(encode(h.head, 'hex'), repeat('0', 64));
	IF NEW.seq <> h.size OR (j->>'seq') IS DISTINCT FROM NEW.seq::text OR (j->>'log') IS DISTINCT FROM NEW.log
		OR (j->>'prev') IS DISTINCT FROM want THEN
		RAISE EXCEPTION 'agentguard: audit line % of log % does not extend the chain (size %, head %)', NEW.seq, NEW.log, h.size, want
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END $$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
	FOR EACH ROW EXECUTE FUNCTION audit_chain();
