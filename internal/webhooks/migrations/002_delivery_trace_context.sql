-- The W3C trace context of the consumer span that recorded the delivery (JSON; null when
-- tracing is off): each attempt's POST is a span of the event's trace.
alter table webhooks.deliveries add column trace_context text;
