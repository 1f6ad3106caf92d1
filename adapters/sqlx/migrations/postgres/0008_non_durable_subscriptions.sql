-- seedwork: subscriptions that go away with their last consumer.
--
-- A subscription made with `SubscriptionOptions::durable(false)` exists only while a consumer
-- is attached: the transport deletes it, with the messages it had not delivered, when its last
-- consumer detaches, or when another attach finds its consumers' leases run out (its process
-- died). Every existing subscription is durable, as before (1).
ALTER TABLE seedwork_subscriptions
    ADD COLUMN durable BIGINT NOT NULL DEFAULT 1 CHECK (durable IN (0, 1));
