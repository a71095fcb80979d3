"""The `openalgo-lab` command.

    openalgo-lab demo [--days N] [--seed S] [--[no-]progress]
                                                  seed paper-trading history through the engine
    openalgo-lab instruments search QUERY [-e EXCHANGE] [-n LIMIT]
    openalgo-lab accounts                         accounts, mode, broker login and funds
    openalgo-lab accounts set-broker ACCOUNT zerodha --api-key K [--api-secret S]
                 [--option base_url=URL ...]      give an account a live broker (secrets encrypted)
    openalgo-lab accounts login ACCOUNT [REDIRECT_URL_OR_REQUEST_TOKEN]
                                                  the broker's daily login (prints the login URL)
    openalgo-lab journal [--in-flight] [-n LIMIT] recent and in-flight orders from the journal
    openalgo-lab apikey create [--account A] [--scope trading|read] [--label L]
    openalgo-lab apikey list | revoke KEY_ID

The data directory is `OPENALGO_LAB_DATA_DIR` (or `--data-dir`), as for the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openalgo_lab.domain.enums import Exchange
from openalgo_lab.domain.errors import OpenAlgoError
from openalgo_lab.engine.settings import EngineSettings, SettingsError


def _settings(args: argparse.Namespace) -> EngineSettings:
    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir).expanduser()
    return EngineSettings.from_env(**overrides)


def cmd_demo(args: argparse.Namespace) -> int:
    from openalgo_lab.demo import run_demo

    settings = _settings(args)
    # the bar goes to stderr (shown on a terminal or with --progress); stdout keeps the summary
    report = run_demo(settings.data_dir, days=args.days, seed=args.seed, progress=args.progress)
    first, last = report.days[0], report.days[-1]
    print(
        f"{report.orders} orders, {report.trades} fills over {len(report.days)} trading days "
        f"({first} to {last}) in {settings.data_dir}"
    )
    if report.errors:
        print(f"{len(report.errors)} requests were refused, e.g.: {report.errors[0]}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from openalgo_lab.instruments.sample import sample_master

    exchange = Exchange(args.exchange.upper()) if args.exchange else None
    for inst in sample_master().search(args.query, exchange=exchange, limit=args.limit):
        expiry = inst.expiry_str or "-"
        print(
            f"{inst.exchange.value:<10} {inst.symbol:<28} {inst.instrumenttype.value:<5} "
            f"lot {inst.lotsize:<5} tick {inst.tick_size:<5} {expiry:<10} {inst.name}"
        )
    return 0


def _with_engine(args: argparse.Namespace, work: object) -> int:
    from openalgo_lab.engine.engine import Engine

    async def run() -> int:
        engine = Engine(_settings(args))
        await engine.start(background=False)
        try:
            return await work(engine)  # type: ignore[operator, no-any-return]
        finally:
            await engine.stop()

    return asyncio.run(run())


def cmd_accounts(args: argparse.Namespace) -> int:
    command = getattr(args, "accounts_command", None)
    if command == "set-broker":
        return _accounts_set_broker(args)
    if command == "login":
        return _accounts_login(args)

    async def show(engine: object) -> int:
        from openalgo_lab.engine.engine import Engine

        assert isinstance(engine, Engine)
        for name, account in engine.accounts.items():
            funds = (await engine.call("funds", {}, account=name)).body.get("data", {})
            login = ""
            if account.live is not None:
                login = "logged in" if account.live.logged_in else "logged out"
            print(
                f"{name:<12} {account.mode:<8} broker {account.broker_name:<8} {login:<10} "
                f"available ₹{funds.get('availablecash', 0):,.2f} "
                f"used ₹{funds.get('utiliseddebits', 0):,.2f}"
            )
        return 0

    return _with_engine(args, show)


def _live_accounts(args: argparse.Namespace) -> Any:
    """The state database's live-broker side, without the engine (works beside a server)."""
    from openalgo_lab.domain.clock import SystemClock
    from openalgo_lab.engine.live import LiveAccounts

    state, settings = _state(args)
    return state, LiveAccounts(state, settings.data_dir, clock=SystemClock())


def _accounts_set_broker(args: argparse.Namespace) -> int:
    from getpass import getpass

    from openalgo_lab.domain.errors import ValidationError

    options: dict[str, str] = {}
    for item in args.option:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValidationError("option", f"{item!r} is not NAME=VALUE")
        options[name.strip()] = value.strip()
    secret = args.api_secret or getpass(f"{args.broker} api_secret (not shown): ")
    state, live = _live_accounts(args)
    try:
        live.configure(
            args.account, args.broker, api_key=args.api_key, api_secret=secret, options=options
        )
    finally:
        state.close()
    print(
        f"account {args.account}: broker {args.broker} configured (credentials encrypted); "
        f"log in with: openalgo-lab accounts login {args.account}"
    )
    return 0


def _accounts_login(args: argparse.Namespace) -> int:
    from openalgo_lab.domain.calendar import IST
    from openalgo_lab.domain.errors import NotFoundError

    state, live = _live_accounts(args)
    try:
        broker = live.build(args.account)
        if broker is None:
            raise NotFoundError(
                f"Account {args.account!r} has no live broker; "
                f"configure one with: openalgo-lab accounts set-broker {args.account} ..."
            )
        answer = args.token
        if not answer:
            print(f"Log in to {broker.name} at:\n  {broker.login_url()}")
            answer = input("Then paste the address your browser was sent to: ")

        async def login() -> None:
            try:
                await broker.complete_login(answer)
            finally:
                await broker.aclose()

        asyncio.run(login())
        stored = live.stored(args.account)
    finally:
        state.close()
    until = f"{stored.expires_at.astimezone(IST):%Y-%m-%d %H:%M} IST" if stored else "?"
    who = stored.user_id if stored else "?"
    print(f"account {args.account}: logged in to {broker.name} as {who} until {until}")
    return 0


def cmd_journal(args: argparse.Namespace) -> int:
    async def show(engine: object) -> int:
        from openalgo_lab.engine.engine import Engine

        assert isinstance(engine, Engine) and engine.journal is not None
        records = (
            engine.journal.in_flight() if args.in_flight else engine.journal.recent(args.limit)
        )
        if not records:
            print("no in-flight orders" if args.in_flight else "the journal is empty")
        for r in records:
            print(
                f"{r.created_at:%Y-%m-%d %H:%M:%S} {r.account:<10} {r.action:<16} "
                f"{r.status:<12} {r.orderid or '-':<16} {r.idempotency_key[:24]:<24} "
                f"{r.reason}"
            )
        return 0

    return _with_engine(args, show)


def _state(args: argparse.Namespace) -> Any:
    """The state database alone: key management works while a server holds the engine lock
    (SQLite in WAL mode and PostgreSQL both take a second connection)."""
    from openalgo_lab.store.state import StateStore

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    state = StateStore(settings.state_url)
    state.migrate()
    return state, settings


def cmd_apikey(args: argparse.Namespace) -> int:
    from openalgo_lab.store import apikeys
    from openalgo_lab.store.state_crypto import load_or_create_pepper

    state, settings = _state(args)
    try:
        if args.apikey_command == "create":
            key = apikeys.create_key(
                state,
                args.account,
                args.scope,
                args.label,
                pepper=load_or_create_pepper(settings.data_dir),
            )
            print(key)  # only the key on stdout, so `KEY=$(openalgo-lab apikey create)` works
        elif args.apikey_command == "list":
            for info in apikeys.list_keys(state):
                state_text = "active" if info.active else f"revoked {info.revoked_at:%Y-%m-%d}"
                print(
                    f"{info.key_id:<14} {info.account:<12} {info.scope:<8} {state_text:<18} "
                    f"{info.label}"
                )
        else:
            info = apikeys.revoke_key(state, args.key_id)
            print(f"revoked {info.key_id}")
    finally:
        state.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openalgo-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="data directory (default: OPENALGO_LAB_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="seed paper-trading history through the engine")
    demo.add_argument("--days", type=int, default=5, choices=range(1, 31), metavar="1..30")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar on stderr (default: only when stderr is a terminal)",
    )
    demo.set_defaults(func=cmd_demo)
    inst = sub.add_parser("instruments", help="the master contract")
    inst_sub = inst.add_subparsers(dest="instruments_command", required=True)
    search = inst_sub.add_parser("search", help="search symbols and names")
    search.add_argument("query")
    search.add_argument("-e", "--exchange", choices=[e.value for e in Exchange], type=str.upper)
    search.add_argument("-n", "--limit", type=int, default=20)
    search.set_defaults(func=cmd_search)
    accounts = sub.add_parser("accounts", help="accounts, brokers and logins")
    accounts.set_defaults(func=cmd_accounts)
    accounts_sub = accounts.add_subparsers(dest="accounts_command")
    set_broker = accounts_sub.add_parser("set-broker", help="give an account a live broker")
    set_broker.add_argument("account")
    set_broker.add_argument("broker", help="an installed broker adapter, e.g. zerodha")
    set_broker.add_argument("--api-key", required=True)
    set_broker.add_argument("--api-secret", help="asked for (not echoed) when left out")
    set_broker.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE", help="adapter option"
    )
    set_broker.set_defaults(func=cmd_accounts)
    login = accounts_sub.add_parser("login", help="the broker's daily login")
    login.add_argument("account")
    login.add_argument("token", nargs="?", help="the redirect URL or its request_token")
    login.set_defaults(func=cmd_accounts)
    journal = sub.add_parser("journal", help="recent and in-flight orders")
    journal.add_argument("--in-flight", action="store_true")
    journal.add_argument("-n", "--limit", type=int, default=20)
    journal.set_defaults(func=cmd_journal)
    apikey = sub.add_parser("apikey", help="API keys for the REST API and webhooks")
    apikey_sub = apikey.add_subparsers(dest="apikey_command", required=True)
    create = apikey_sub.add_parser("create", help="create a key and print it (only once)")
    create.add_argument("--account", default="default")
    create.add_argument("--scope", choices=["trading", "read"], default="trading")
    create.add_argument("--label", default="")
    create.set_defaults(func=cmd_apikey)
    apikey_sub.add_parser("list", help="keys, their scope and state").set_defaults(func=cmd_apikey)
    revoke = apikey_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_apikey)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (OpenAlgoError, SettingsError) as err:
        print(f"openalgo-lab: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
