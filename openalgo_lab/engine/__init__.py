"""The engine: OpenAlgo actions, accounts, risk, the order journal and the event bus."""
