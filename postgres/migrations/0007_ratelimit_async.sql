-- Rate-limit takes commit without waiting for the WAL flush
-- (synchronous_commit off for the take's transaction only): a crash of the
-- server can lose the last fraction of a second of takes, which only
-- refills the buckets a little, and every take saves a disk flush. The
-- ledger, the kill switch, the approvals and the audit log stay durable.
CREATE OR REPLACE FUNCTION rate_take(p_at_us bigint, p_keys text[], p_interval_us bigint[], p_burst int[],
	OUT refused int, OUT retry_us bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	k text;
	i int;
	tat numeric;
	nxt numeric[] := '{}';
	over numeric;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	FOR k IN SELECT DISTINCT x FROM unnest(p_keys) AS x ORDER BY 1 LOOP
		PERFORM pg_advisory_xact_lock(hashtextextended('agentguard.rate.' || current_schema() || '.' || k, 0));
	END LOOP;
	FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
		SELECT greatest(b.tat_us, p_at_us) INTO tat FROM rate_buckets b WHERE b.key = p_keys[i];
		IF NOT FOUND THEN
			tat := p_at_us;
		END IF;
		over := tat + p_interval_us[i] - p_at_us - p_burst[i]::numeric * p_interval_us[i];
		IF over > 0 THEN
			refused := i - 1;
			retry_us := least(over, 9223372036854775)::bigint;
			RETURN;
		END IF;
		nxt := nxt || (tat + p_interval_us[i]);
	END LOOP;
	INSERT INTO rate_buckets (key, tat_us)
		SELECT p_keys[j], least(nxt[j], 9223372036854775807)::bigint FROM generate_subscripts(p_keys, 1) AS j
		ON CONFLICT (key) DO UPDATE SET tat_us = excluded.tat_us;
	refused := -1;
	retry_us := 0;
END $$;
