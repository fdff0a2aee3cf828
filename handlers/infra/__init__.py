"""Infrastructure under the features: transport and rate limits, per-user ordering, the
update inbox, unparsed updates, the error handler and the outbox delivery loop."""
