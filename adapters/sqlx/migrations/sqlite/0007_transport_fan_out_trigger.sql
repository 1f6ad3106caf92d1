-- seedwork: a message appended to the topic log is added to its topic's subscriptions by
-- SQLite itself.
--
-- The transport appended a transaction's messages in one statement and fanned them out to the
-- subscriptions with a second. On SQLite each statement is a hand-off to the connection's
-- worker thread, which costs more than the work in it; a trigger does the fan-out inside the
-- append, in the same transaction, so every subscription that exists when a message is
-- appended still receives it, and none created later does.
CREATE TRIGGER IF NOT EXISTS seedwork_topic_log_fan_out
AFTER INSERT ON seedwork_topic_log
BEGIN
    INSERT INTO seedwork_subscription_messages (subscription_id, sequence, message_key)
    SELECT id, NEW.sequence, NEW.message_key
    FROM seedwork_subscriptions WHERE topic = NEW.topic;
END;
