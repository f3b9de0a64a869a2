-- Late settles (budget.Store.Settle): a hold that expires is charged its
-- amounts and kept, for budget.KeepExpired (24 hours) after its deadline,
-- so that a commit that comes late is still charged in full: what its
-- actual cost exceeds the hold's amounts by is added, as part of the same
-- call. budget_charges.call says whether a charge counts as a call.
ALTER TABLE budget_charges ADD COLUMN call boolean NOT NULL DEFAULT true;

CREATE TABLE budget_expired (
	id       text PRIMARY KEY,
	at       timestamptz NOT NULL,
	deadline timestamptz NOT NULL,
	keys     text[] NOT NULL,
	amounts  bigint[] NOT NULL
);
CREATE INDEX budget_expired_deadline ON budget_expired (deadline);

-- budget_expire charges every hold due at p_at that touches one of p_keys
-- (all holds when p_keys is NULL) its own amounts, as a call, and moves it
-- to budget_expired; it forgets expired holds older than a day.
CREATE OR REPLACE FUNCTION budget_expire(p_at timestamptz, p_keys text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	WITH due AS (
		DELETE FROM budget_holds h
		WHERE h.deadline <= p_at
		  AND (p_keys IS NULL OR EXISTS (
			SELECT 1 FROM budget_hold_entries e WHERE e.hold = h.id AND e.key = ANY (p_keys)))
		RETURNING h.id, h.at, h.deadline
	), ents AS (
		DELETE FROM budget_hold_entries e USING due WHERE e.hold = due.id
		RETURNING e.hold, e.idx, e.key, e.at, e.amount
	), kept AS (
		INSERT INTO budget_expired (id, at, deadline, keys, amounts)
		SELECT d.id, d.at, d.deadline,
		       coalesce(array_agg(e.key ORDER BY e.idx) FILTER (WHERE e.key IS NOT NULL), '{}'),
		       coalesce(array_agg(e.amount ORDER BY e.idx) FILTER (WHERE e.key IS NOT NULL), '{}')
		FROM due d LEFT JOIN ents e ON e.hold = d.id
		GROUP BY d.id, d.at, d.deadline
	)
	INSERT INTO budget_charges (key, at, amount) SELECT key, at, amount FROM ents;
	DELETE FROM budget_expired WHERE deadline <= p_at - interval '24 hours';
END $$;

CREATE OR REPLACE FUNCTION budget_tally(p_key text, p_since timestamptz,
	OUT spent bigint, OUT reserved bigint, OUT calls bigint)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT least(coalesce(c.s, 0), 9223372036854775807)::bigint,
	       least(coalesce(h.s, 0), 9223372036854775807)::bigint,
	       coalesce(c.n, 0)
	FROM (SELECT sum(amount) AS s, count(*) FILTER (WHERE call) AS n FROM budget_charges
	      WHERE key = p_key AND at >= p_since) c,
	     (SELECT sum(amount) AS s FROM budget_hold_entries
	      WHERE key = p_key AND at >= p_since) h
$$;

-- budget_settle ends hold p_id at p_when. p_actual NULL releases it;
-- otherwise each entry is charged its actual amount. A late settle (at or
-- after the deadline, or of an expired hold) charges each entry the larger
-- of its amount and its actual. Result: 0 settled, 1 unknown hold, 2 late
-- (expired), 3 wrong number of amounts, 4 a negative amount.
CREATE OR REPLACE FUNCTION budget_settle(p_id text, p_actual bigint[], p_when timestamptz) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	d timestamptz;
	n int;
	x record;
BEGIN
	SELECT deadline INTO d FROM budget_holds WHERE id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		SELECT * INTO x FROM budget_expired WHERE id = p_id FOR UPDATE;
		IF NOT FOUND THEN
			RETURN 1;
		END IF;
		IF p_actual IS NOT NULL AND coalesce(array_length(p_actual, 1), 0) <> coalesce(array_length(x.keys, 1), 0) THEN
			RETURN 3;
		END IF;
		IF p_actual IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(p_actual) AS a WHERE a < 0) THEN
			RETURN 4;
		END IF;
		IF p_actual IS NOT NULL THEN
			INSERT INTO budget_charges (key, at, amount, call)
				SELECT x.keys[j], x.at, p_actual[j] - x.amounts[j], false
				FROM generate_subscripts(x.keys, 1) AS j WHERE p_actual[j] > x.amounts[j];
		END IF;
		DELETE FROM budget_expired WHERE id = p_id;
		RETURN 2;
	END IF;
	SELECT count(*) INTO n FROM budget_hold_entries WHERE hold = p_id;
	IF p_actual IS NOT NULL AND coalesce(array_length(p_actual, 1), 0) <> n THEN
		RETURN 3;
	END IF;
	IF p_actual IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(p_actual) AS a WHERE a < 0) THEN
		RETURN 4;
	END IF;
	IF p_when >= d THEN
		INSERT INTO budget_charges (key, at, amount)
			SELECT key, at, greatest(amount, coalesce(p_actual[idx + 1], 0)) FROM budget_hold_entries WHERE hold = p_id;
		DELETE FROM budget_holds WHERE id = p_id;
		RETURN 2;
	END IF;
	IF p_actual IS NOT NULL THEN
		INSERT INTO budget_charges (key, at, amount)
			SELECT key, at, p_actual[idx + 1] FROM budget_hold_entries WHERE hold = p_id;
	END IF;
	DELETE FROM budget_holds WHERE id = p_id;
	RETURN 0;
END $$;
