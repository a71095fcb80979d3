"""Persistent state. `history` is the DuckDB trade history (orders, order events, fills with
their FIFO results, candles), written only by the engine's `HistoryWriter` and read through
`HistoryStore.query`, the `analytics` functions or an exported snapshot."""
