-- The budget ledger (budget.Store): open holds, their entries, and the
-- charges of settled and expired holds. An account is a key; its usage in a
-- window is the sum of its charges and of its open holds' entries whose
-- time is at or after the window's start.
CREATE TABLE budget_holds (
	id       text PRIMARY KEY,
	at       timestamptz NOT NULL,
	deadline timestamptz NOT NULL
);
CREATE INDEX budget_holds_deadline ON budget_holds (deadline);

CREATE TABLE budget_hold_entries (
	hold   text NOT NULL REFERENCES budget_holds (id) ON DELETE CASCADE,
	idx    int NOT NULL,
	key    text NOT NULL,
	at     timestamptz NOT NULL,
	amount bigint NOT NULL CHECK (amount >= 0),
	PRIMARY KEY (hold, idx)
);
CREATE INDEX budget_hold_entries_key ON budget_hold_entries (key, at) INCLUDE (amount);

CREATE TABLE budget_charges (
	key    text NOT NULL,
	at     timestamptz NOT NULL,
	amount bigint NOT NULL CHECK (amount >= 0)
);
CREATE INDEX budget_charges_key ON budget_charges (key, at) INCLUDE (amount);

-- budget_expire charges every hold due at p_at that touches one of p_keys
-- (all holds when p_keys is NULL) its own amounts, as a call, and removes
-- it. A hold is removed by exactly one transaction (its row lock decides),
-- and its charges commit with its removal.
CREATE FUNCTION budget_expire(p_at timestamptz, p_keys text[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	WITH due AS (
		DELETE FROM budget_holds h
		WHERE h.deadline <= p_at
		  AND (p_keys IS NULL OR EXISTS (
			SELECT 1 FROM budget_hold_entries e WHERE e.hold = h.id AND e.key = ANY (p_keys)))
		RETURNING h.id
	), ents AS (
		DELETE FROM budget_hold_entries e USING due WHERE e.hold = due.id
		RETURNING e.key, e.at, e.amount
	)
	INSERT INTO budget_charges (key, at, amount) SELECT key, at, amount FROM ents;
END $$;

-- budget_tally returns what account p_key holds in the window from
-- p_since, in one snapshot: spent and calls (charges) and reserved (open
-- holds), each saturated at the largest bigint.
CREATE FUNCTION budget_tally(p_key text, p_since timestamptz,
	OUT spent bigint, OUT reserved bigint, OUT calls bigint)
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
	SELECT least(coalesce(c.s, 0), 9223372036854775807)::bigint,
	       least(coalesce(h.s, 0), 9223372036854775807)::bigint,
	       coalesce(c.n, 0)
	FROM (SELECT sum(amount) AS s, count(*) AS n FROM budget_charges
	      WHERE key = p_key AND at >= p_since) c,
	     (SELECT sum(amount) AS s FROM budget_hold_entries
	      WHERE key = p_key AND at >= p_since) h
$$;

-- budget_reserve records the hold p_id if every entry fits, atomically.
-- It locks the accounts (transaction advisory locks, in key order, so
-- reservers never deadlock), expires due holds, and checks each entry.
-- full is -2 for a duplicate ID, -1 when the hold was recorded (used then
-- holds each entry's usage before it), or the 0-based index of the first
-- entry that does not fit (with its spent and reserved).
CREATE FUNCTION budget_reserve(p_id text, p_at timestamptz, p_deadline timestamptz,
	p_keys text[], p_since timestamptz[], p_limit bigint[], p_amount bigint[],
	OUT full_entry int, OUT spent bigint, OUT reserved bigint, OUT used bigint[])
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	k text;
	i int;
	t record;
	u numeric;
BEGIN
	FOR k IN SELECT DISTINCT x FROM unnest(p_keys) AS x ORDER BY 1 LOOP
		PERFORM pg_advisory_xact_lock(hashtextextended('agentguard.budget.' || current_schema() || '.' || k, 0));
	END LOOP;
	PERFORM budget_expire(p_at, p_keys);
	IF EXISTS (SELECT 1 FROM budget_holds WHERE id = p_id) THEN
		full_entry := -2;
		RETURN;
	END IF;
	used := '{}';
	FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
		SELECT * INTO t FROM budget_tally(p_keys[i], p_since[i]);
		u := least(t.spent::numeric + t.reserved, 9223372036854775807);
		IF u >= p_limit[i] OR u + p_amount[i] > p_limit[i] THEN
			full_entry := i - 1;
			spent := t.spent;
			reserved := t.reserved;
			used := NULL;
			RETURN;
		END IF;
		used := used || u::bigint;
	END LOOP;
	INSERT INTO budget_holds (id, at, deadline) VALUES (p_id, p_at, p_deadline);
	INSERT INTO budget_hold_entries (hold, idx, key, at, amount)
		SELECT p_id, j - 1, p_keys[j], p_at, p_amount[j] FROM generate_subscripts(p_keys, 1) AS j;
	full_entry := -1;
END $$;

-- budget_settle ends hold p_id at p_when. p_actual NULL releases it;
-- otherwise each entry is charged its actual amount. At or after the
-- deadline the hold's own amounts are charged instead. Result: 0 settled,
-- 1 unknown hold, 2 expired (charged its estimate), 3 wrong number of
-- amounts, 4 a negative amount.
CREATE FUNCTION budget_settle(p_id text, p_actual bigint[], p_when timestamptz) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	d timestamptz;
	n int;
BEGIN
	SELECT deadline INTO d FROM budget_holds WHERE id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		RETURN 1;
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
			SELECT key, at, amount FROM budget_hold_entries WHERE hold = p_id;
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

-- budget_usage expires the due holds of p_keys, then reports each account
-- (ord is the 1-based index of the query).
CREATE FUNCTION budget_usage(p_at timestamptz, p_keys text[], p_since timestamptz[])
	RETURNS TABLE (ord int, spent bigint, reserved bigint, calls bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	PERFORM budget_expire(p_at, p_keys);
	RETURN QUERY SELECT j, t.spent, t.reserved, t.calls
		FROM generate_subscripts(p_keys, 1) AS j, LATERAL budget_tally(p_keys[j], p_since[j]) AS t;
END $$;
