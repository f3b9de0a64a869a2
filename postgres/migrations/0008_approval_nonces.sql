-- The nonces of webhook callbacks answered through the fleet
-- (Approvals.WebhookHandler): a nonce seen before is a replay, whichever
-- process saw it.
CREATE TABLE approval_nonces (
	nonce text PRIMARY KEY,
	at    timestamptz NOT NULL
);
CREATE INDEX approval_nonces_at ON approval_nonces (at);
