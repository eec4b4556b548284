"""The stream worker: the Faust agent and the batch pipeline (validate, fetch, cache, classify, persist, publish),
dead letters, trend windows and alerts."""
