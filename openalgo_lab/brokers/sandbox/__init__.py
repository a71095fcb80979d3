"""The sandbox broker: simulated market, matching engine, accounts and Indian charges.

`broker.SandboxBroker` is the entry point (registered as the `sandbox` broker)."""
