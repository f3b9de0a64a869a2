-- Grants (approval.Store): remembered approvals, each a JSON permit.
CREATE TABLE approval_grants (
	id      text PRIMARY KEY,
	created timestamptz NOT NULL,
	permit  jsonb NOT NULL
);

-- Pending approvals: the card of every call waiting for a person, and the
-- answer once given. An answer is written once (answer IS NULL guards it)
-- and taken once by the waiting process (taken guards it). Every answer
-- notifies the channel "<schema>.approval" with the request's ID.
CREATE TABLE approval_pending (
	id       text PRIMARY KEY,
	hash     text NOT NULL,
	card     jsonb NOT NULL,
	created  timestamptz NOT NULL,
	deadline timestamptz NOT NULL,
	answer   jsonb,
	answered timestamptz,
	taken    boolean NOT NULL DEFAULT false
);
CREATE INDEX approval_pending_created ON approval_pending (created, id) WHERE answer IS NULL;

CREATE FUNCTION approval_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.answer IS NOT NULL AND OLD.answer IS NULL THEN
		PERFORM pg_notify(TG_TABLE_SCHEMA || '.approval', NEW.id);
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER approval_pending_notify AFTER UPDATE ON approval_pending
	FOR EACH ROW EXECUTE FUNCTION approval_notify();
