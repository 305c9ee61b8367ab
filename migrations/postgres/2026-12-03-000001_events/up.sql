-- Contract section 9: the outbox, and the webhooks that read it; and atomic audit entries.

-- Every change writes its events here in its own transaction. `seq` orders them: each
-- transaction takes its server's row lock before it draws a `seq`, so one server's events are
-- numbered in commit order; readers of every server's events wait for the transactions that
-- may still commit a smaller `seq` (see `invite_store::repo::events`). The row write before the
-- draw also gives the transaction its id, which those readers rely on.
CREATE TABLE events (
    seq bigserial PRIMARY KEY,
    server_id uuid NOT NULL,
    type text NOT NULL,
    payload jsonb NOT NULL,
    audience text NOT NULL CHECK (audience IN ('members', 'invite_managers')),
    created_at timestamptz NOT NULL
);
-- The events endpoint and the gateway read one server's events after a `seq`.
CREATE INDEX events_server_seq_idx ON events (server_id, seq);

-- Audit entries commit with their change, plainly (contract section 5.3 changed): the accept
-- writes its MemberJoin entry itself, without this function's subtransaction.
DROP FUNCTION record_member_join(uuid, uuid, uuid, jsonb, timestamptz);

CREATE TABLE webhooks (
    id uuid PRIMARY KEY,
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    url text NOT NULL,
    -- Names of the event types delivered, as a JSON array.
    event_types jsonb NOT NULL CHECK (jsonb_typeof(event_types) = 'array'),
    secret text NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL,
    -- Delivery, in `seq` order: every event up to `cursor` is delivered (or not subscribed to).
    cursor bigint NOT NULL,
    -- Failed attempts at the event after `cursor`, since when, and when to try again.
    attempts integer NOT NULL DEFAULT 0,
    failing_since timestamptz,
    next_attempt_at timestamptz,
    -- The instance delivering, until when: one deliverer at a time keeps the order.
    lease_owner uuid,
    lease_until timestamptz,
    disabled_at timestamptz,
    disabled_reason text
);
CREATE INDEX webhooks_server_idx ON webhooks (server_id, created_at);

CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY,
    webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq bigint NOT NULL,
    event_type text NOT NULL,
    attempt integer NOT NULL,
    -- The receiver's status; NULL when it did not answer (refused, timed out).
    status integer,
    error text,
    duration_ms bigint NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
