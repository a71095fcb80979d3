"""The Engine: the one owner of trading state (see DESIGN.md, "one owner of trading state").

Every caller (REST, webhooks, widgets, the embedded client) goes through `Engine.call`, which
finds the action, builds its context (account, routing), runs it, and returns OpenAlgo's
envelope with the HTTP status to answer with. Errors are mapped here, once: a domain error
becomes its status and message; anything unexpected becomes a 500 with a generic message and a
log entry, never a crashed server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from openalgo_lab.brokers.sandbox import persist
from openalgo_lab.brokers.sandbox.broker import SandboxBroker
from openalgo_lab.brokers.sandbox.market import MarketData, SimulatedMarket
from openalgo_lab.domain.calendar import IST, MarketCalendar
from openalgo_lab.domain.clock import Clock, SystemClock
from openalgo_lab.domain.enums import OrderStatus
from openalgo_lab.domain.errors import NotFoundError, OpenAlgoError
from openalgo_lab.domain.models import Order, OrderEvent
from openalgo_lab.engine.accounts import LiveBroker, TradingAccount
from openalgo_lab.engine.actions import ACTIONS, ActionContext, Payload
from openalgo_lab.engine.batching import BatchThread
from openalgo_lab.engine.events import EventBus
from openalgo_lab.engine.live import LiveAccounts
from openalgo_lab.engine.ordering import OrderRouter
from openalgo_lab.engine.risk import RiskLimits
from openalgo_lab.engine.settings import EngineSettings
from openalgo_lab.engine.strategy_books import StrategyBooks
from openalgo_lab.engine.timing import PHASES
from openalgo_lab.instruments.master import MasterContract
from openalgo_lab.instruments.sample import reference_prices, sample_master
from openalgo_lab.store.lock import DataDirLock
from openalgo_lab.store.state import StateStore
from openalgo_lab.store.state_journal import Journal

if TYPE_CHECKING:
    from openalgo_lab.brokers.base import Broker
    from openalgo_lab.store.history import HistoryStore, HistoryWriter
    from openalgo_lab.store.history_rows import RequestRow

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL = 1.0  # seconds between saves of a changed sandbox
SNAPSHOT_KEY = "sandbox:{}"
SETTLE_INTERVAL = 5.0  # seconds between looks for orders whose placement outcome is unknown
RECONCILE_TIMEOUT = 30.0  # seconds a live broker may take to show its order book on start
LIVE_SYNC_INTERVAL = 5.0  # seconds between looks for brokers configured by another process
MEMORY_ENTRIES = 20_000  # journal entries looked at on start to restore today's orders

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """An action's answer: the HTTP status and OpenAlgo's JSON body, and where the call's
    time went (seconds per phase: "engine" for the whole call, and "risk", "journal" and
    "broker" for orders)."""

    status: int
    body: JSON
    timings: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return self.body.get("status") == "success"


class Engine:
    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        clock: Clock | None = None,
        master: MasterContract | None = None,
        market: MarketData | None = None,
    ) -> None:
        self.settings = settings or EngineSettings.from_env()
        self.clock = clock or SystemClock()
        self.calendar = MarketCalendar(hours=self.settings.market_hours)
        today = self.clock.now().astimezone(IST).date()
        self.master = master or sample_master(today)
        self.market = market or SimulatedMarket(
            reference_prices(), seed=self.settings.seed, calendar=self.calendar
        )
        self.events = EventBus()
        self.router = OrderRouter(
            self,
            RiskLimits(
                max_order_value=self.settings.max_order_value,
                max_order_quantity=self.settings.max_order_quantity,
            ),
        )
        self.strategy_books = StrategyBooks()
        self.journal: Journal | None = None  # opened by start()
        self.history: HistoryWriter | None = None  # opened by start()
        self.history_store: HistoryStore | None = None
        self.state: StateStore | None = None  # opened by start()
        self.accounts: dict[str, TradingAccount] = {}
        self._lock: DataDirLock | None = None
        self._dirty: set[str] = set()
        self._saver: asyncio.Task[None] | None = None
        self._transitions: BatchThread[tuple[int, str, str, datetime]] | None = None
        self._requests: BatchThread[RequestRow] | None = None  # the traffic log
        self.live_accounts: LiveAccounts | None = None  # opened by start()
        self._live_tasks: dict[str, asyncio.Task[None]] = {}
        self._settler: asyncio.Task[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        self._live_configs: dict[str, str] = {}  # account -> fingerprint its adapter was built on
        self._background = False
        for name in self.settings.accounts:
            self.add_account(name)

    @property
    def today(self) -> date:
        return self.clock.now().astimezone(IST).date()

    # -- accounts ---------------------------------------------------------------------------
    def add_account(self, name: str, *, analyze: bool = True) -> TradingAccount:
        if name in self.accounts:
            raise ValueError(f"account {name!r} exists")
        sandbox = SandboxBroker(
            master=self.master,
            market=self.market,
            clock=self.clock,
            calendar=self.calendar,
            capital=self.settings.capital,
            step_interval=self.settings.step_interval,
        )
        account = TradingAccount(name=name, sandbox=sandbox, analyze=analyze)
        self.accounts[name] = account
        sandbox.exchange.subscribe(
            lambda event: self._on_order_event(account, event, mode="analyze")
        )
        return account

    def set_analyze(self, name: str, analyze: bool) -> None:
        """Switch an account between paper and live; remembered across restarts for
        accounts with a live broker (OpenAlgo keeps its analyzer switch the same way)."""
        self.account(name).analyze = analyze
        if self.live_accounts is not None:
            self.live_accounts.set_analyze(name, analyze)

    async def kill(
        self,
        name: str,
        *,
        enabled: bool = True,
        cancel_orders: bool = True,
        close_positions: bool = True,
    ) -> dict[str, Any]:
        """The kill switch: block new orders of an account and optionally cancel its working
        orders and close its positions. `enabled=False` lifts the block."""
        account = self.account(name)
        if not enabled:
            self.router.killed.discard(name)
            return {"enabled": False}
        self.router.killed.add(name)
        cancelled: list[str] = []
        closed = 0
        broker = account.order_broker
        if cancel_orders:
            cancelled, _ = await broker.cancel_all_orders()
        if close_positions:
            closed = len(await broker.close_all_positions())
        return {"enabled": True, "cancelled_orders": cancelled, "exit_orders": closed}

    def journal_count(self, account: str) -> int:
        return self.journal.count(account) if self.journal is not None else 0

    # -- events from the brokers ------------------------------------------------------------
    def _on_order_event(self, account: TradingAccount, event: OrderEvent, *, mode: str) -> None:
        """Every order change and fill: to the bus (widgets, websockets), the strategy books,
        the history database (batched, off this path) and the journal's transitions. `mode`
        is that of the broker the event came from (sandbox: analyze, live adapter: live)."""
        order, trade = event.order, event.trade
        self._dirty.add(account.name)
        if order.tag in self.router.unsettled:
            self._settle(order.tag, order)
        self.events.publish("order", account.name, event)
        if self._transitions is not None and order.tag:
            entry = self.router.entries_by_tag.get(order.tag)
            if entry is not None:
                detail = f"trade {trade.quantity} @ {trade.price}" if trade else order.orderid
                self._transitions.submit((entry, order.status.value, detail, order.updated_at))
        if trade is not None:
            self.strategy_books.record(account.name, trade)
            self.events.publish("trade", account.name, trade)
        if self.history is not None:
            self._record_history(account, event, mode)

    def account(self, name: str | None = None) -> TradingAccount:
        if name is None:
            return next(iter(self.accounts.values()))
        found = self.accounts.get(name)
        if found is None:
            raise NotFoundError(f"Account {name!r} not found")
        return found

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, *, background: bool = True) -> None:
        """Open the data directory (one engine per directory), the state database and the
        journal; restore the sandboxes; reconcile orders left in flight; then start matching
        (unless `background=False`, for tools that drive the clock themselves)."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = DataDirLock(self.settings.lock_path).acquire()
        try:
            self.state = StateStore(self.settings.state_url)
            self.state.migrate()
            self.journal = Journal(self.state)
            self._transitions = BatchThread(self.journal.transitions, name="journal-transitions")
            self._transitions.start()
            self.live_accounts = LiveAccounts(
                self.state, self.settings.data_dir, clock=self.clock, calendar=self.calendar
            )
            self._load_live_accounts()
            self._restore_sandboxes()
            await self.reconcile()
            self._open_history()
            self._restore_order_memory()
        except BaseException:
            await self._close_live()
            self._close_stores()
            raise
        if background:
            self._background = True
            for account in self.accounts.values():
                await account.sandbox.start()
                if account.live is not None:
                    await self._connect_live(account)
            self._saver = asyncio.create_task(self._save_loop(), name="sandbox-snapshots")
            self._settler = asyncio.create_task(self._settle_loop(), name="order-settler")
            self._syncer = asyncio.create_task(self._live_sync_loop(), name="live-accounts-sync")

    async def stop(self) -> None:
        for task in (self._saver, self._settler, self._syncer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._saver = self._settler = self._syncer = None
        self._background = False
        await self._close_live()
        for account in self.accounts.values():
            await account.sandbox.stop()
        if self.state is not None:
            self.save_sandboxes(force=True)
        self._close_stores()

    def _close_stores(self) -> None:
        if self._requests is not None:
            self._requests.stop()
            self._requests = None
        if self._transitions is not None:
            self._transitions.stop()
            self._transitions = None
        if self.history is not None:
            self.history.stop()
            self.history = None
        if self.history_store is not None:
            self.history_store.close()
            self.history_store = None
        if self.state is not None:
            self.state.close()
            self.state = None
        self.journal = None
        self.live_accounts = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _restore_sandboxes(self) -> None:
        assert self.state is not None
        for account in self.accounts.values():
            saved = self.state.get_setting(SNAPSHOT_KEY.format(account.name))
            if saved:
                persist.load(account.sandbox.exchange, saved)

    def save_sandboxes(self, *, force: bool = False) -> None:
        """Write the snapshot of every sandbox that changed since the last save."""
        if self.state is None:
            return
        names = set(self.accounts) if force else set(self._dirty)
        self._dirty -= names
        for name in names:
            snapshot = persist.dump(self.accounts[name].sandbox.exchange)
            self.state.set_setting(SNAPSHOT_KEY.format(name), snapshot)

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_INTERVAL)
            try:
                self.save_sandboxes()
            except Exception:
                log.exception("saving sandbox snapshots failed")

    async def reconcile(self) -> list[str]:
        """Settle journal entries left "accepted" by a stop between the journal and the
        broker's answer: an order a broker has (found by its tag, in the sandbox or at the
        live broker) is acknowledged; one no broker has is marked rejected, so a retry with
        the same key says so instead of ordering twice. When a live broker's book cannot be
        read (logged out, unreachable), its entries stay in flight for a later start.
        Returns a line per entry looked at."""
        assert self.journal is not None
        report: list[str] = []
        books: dict[tuple[str, str], list[Order] | None] = {}
        for record in self.journal.in_flight():
            account = self.accounts.get(record.account)
            if account is None:
                continue
            tag = record.idempotency_key[:40]
            match: Order | None = None
            unreadable: list[str] = []
            for broker in self._brokers_of(account):
                key = (account.name, broker.name)
                if key not in books:
                    books[key] = await self._read_book(broker)
                orders = books[key]
                if orders is None:
                    unreadable.append(broker.name)
                    continue
                match = _find_tagged(orders, tag, broker)
                if match is not None:
                    break
            report.append(
                self._reconciled(record.entry_id, record.idempotency_key, match, unreadable)
            )
        for line in report:
            log.warning("reconciled journal entry %s", line)
        return report

    def _reconciled(
        self, entry_id: int, key: str, match: Order | None, unreadable: list[str]
    ) -> str:
        assert self.journal is not None
        if match is not None:
            self.journal.acknowledge(
                entry_id, orderid=match.orderid, response={"orderid": match.orderid}
            )
            self.router.unsettled.pop(key[:40], None)
            return f"{key}: found at the broker as {match.orderid}"
        if unreadable:
            return f"{key}: still unknown ({', '.join(unreadable)} cannot be read); kept in flight"
        reason = "not placed: the engine stopped before the broker received the order"
        if key[:40] in self.router.unsettled:
            reason = "not placed: the broker did not take the order (its answer was lost)"
            self.router.unsettled.pop(key[:40], None)
        self.journal.reject(
            entry_id, reason=reason, response={"status": "error", "message": reason}
        )
        return f"{key}: {reason}"

    @staticmethod
    def _brokers_of(account: TradingAccount) -> list[Broker]:
        brokers: list[Broker] = [account.sandbox]
        if account.live is not None:
            brokers.append(account.live)
        return brokers

    @staticmethod
    async def _read_book(broker: Broker) -> list[Order] | None:
        """A broker's order book, or None when it cannot be read now."""
        try:
            return await asyncio.wait_for(broker.orders(), RECONCILE_TIMEOUT)
        except (OpenAlgoError, TimeoutError) as err:
            message = err.message if isinstance(err, OpenAlgoError) else "timed out"
            log.warning("cannot read the %s order book to reconcile: %s", broker.name, message)
            return None

    def _settle(self, tag: str, order: Order) -> None:
        """A live order whose placement answer was lost showed up: acknowledge its entry."""
        entry = self.router.unsettled.pop(tag, None)
        if entry is None or self.journal is None:
            return
        try:
            self.journal.acknowledge(
                entry, orderid=order.orderid, response={"orderid": order.orderid}
            )
            log.warning(
                "order %s (tag %s) found after a lost answer: acknowledged", order.orderid, tag
            )
        except OpenAlgoError as err:
            log.error("cannot acknowledge journal entry %s: %s", entry, err.message)

    async def _settle_loop(self) -> None:
        """Look again for orders whose placement outcome was unknown, until each is found
        or a readable order book shows it was never placed."""
        while True:
            await asyncio.sleep(SETTLE_INTERVAL)
            if not self.router.unsettled or self.journal is None:
                continue
            try:
                await self._settle_unknown()
            except Exception:
                log.exception("settling orders with an unknown outcome failed")

    async def _settle_unknown(self) -> None:
        assert self.journal is not None
        pending = set(self.router.unsettled)
        for record in self.journal.in_flight():
            tag = record.idempotency_key[:40]
            account = self.accounts.get(record.account)
            if tag not in pending or account is None or account.live is None:
                continue
            orders = await self._read_book(account.live)
            if orders is None:
                continue
            match = _find_tagged(orders, tag, account.live)
            line = self._reconciled(record.entry_id, record.idempotency_key, match, [])
            log.warning("settled journal entry %s", line)

    def _restore_order_memory(self) -> None:
        """After a restart, today's journaled orders get their journal entry back (so their
        later fills are journaled too) and live adapters their strategy and our tag; those
        still open at the stop resume their updates from the fills history holds, so a fill
        made while we were down is recorded, and none twice."""
        assert self.journal is not None
        live_orders: dict[str, list[tuple[str, str, str]]] = {}  # account -> (id, strategy, tag)
        for record in self.journal.recent(MEMORY_ENTRIES):
            if record.created_at.astimezone(IST).date() != self.today:
                break  # newest first: the rest are older
            if record.status != "acknowledged" or not record.orderid:
                continue
            tag = record.idempotency_key[:40]
            self.router.entries_by_tag.setdefault(tag, record.entry_id)
            account = self.accounts.get(record.account)
            if account is not None and account.live is not None:
                strategy = str(record.request.get("strategy") or "")
                live_orders.setdefault(record.account, []).append((record.orderid, strategy, tag))
        for name, orders in live_orders.items():
            live = self.accounts[name].live
            assert live is not None
            resume = self._resume_points(name, [orderid for orderid, _, _ in orders])
            for orderid, strategy, tag in orders:
                live.remember(orderid, strategy, tag, resume_from=resume.get(orderid))

    def _resume_points(self, account: str, orderids: list[str]) -> dict[str, dict[str, int]]:
        """For each order history last saw working (or never saw): trade id -> quantity of
        the live fills it holds. Orders history saw finish are left out. Two queries for
        all of them, so a busy day's restart stays quick."""
        if self.history_store is None:
            return {orderid: {} for orderid in orderids}
        wanted = "orderid IN (SELECT unnest(?::VARCHAR[]))"
        last = self.history_store.query(
            f"SELECT orderid, status FROM orders WHERE account = ? AND {wanted}",
            [account, orderids],
        )
        finished = {
            str(oid)
            for oid, status in zip(last["orderid"], last["status"], strict=True)
            if OrderStatus(status).is_terminal
        }
        fills = self.history_store.query(
            f"SELECT orderid, tradeid, quantity FROM trades "
            f"WHERE account = ? AND mode = 'live' AND {wanted}",
            [account, orderids],
        )
        points: dict[str, dict[str, int]] = {o: {} for o in orderids if o not in finished}
        for oid, tradeid, quantity in zip(
            fills["orderid"], fills["tradeid"], fills["quantity"], strict=True
        ):
            if str(oid) in points:
                points[str(oid)][str(tradeid)] = int(quantity)
        return points

    # -- live brokers ---------------------------------------------------------------------
    def _live(self) -> LiveAccounts:
        if self.live_accounts is None:
            raise OpenAlgoError("The engine is not started: live brokers need its state database")
        return self.live_accounts

    def _load_live_accounts(self) -> None:
        """Accounts with a live broker in the state database join the engine (with their
        analyze switch), and get their adapters (built offline; no broker is called)."""
        live = self._live()
        for mode in live.modes():
            if mode.broker == "sandbox":
                continue
            account = self.accounts.get(mode.name) or self.add_account(mode.name)
            account.analyze = mode.analyze
        for account in self.accounts.values():
            try:
                self._build_live(account)
            except OpenAlgoError as err:
                log.error(
                    "account %r: its live broker cannot be built: %s", account.name, err.message
                )

    def _build_live(self, account: TradingAccount) -> LiveBroker | None:
        """Build the account's adapter from the state database (the old one, if any, is
        returned for closing) and note what it was built from."""
        live = self._live()
        stored = live.stored(account.name)
        old, account.live = account.live, live.adapter(stored) if stored is not None else None
        if stored is not None:
            self._live_configs[account.name] = stored.fingerprint()
        return old

    async def sync_live_accounts(self) -> list[str]:
        """Take up brokers configured, or reconfigured, in the state database by another
        process (`openalgo-lab accounts set-broker`, a notebook's `LiveAccounts`) since this
        engine built its adapters: new accounts join, changed adapters are rebuilt and
        connected, with no restart. Returns the accounts taken up."""
        live = self._live()

        def read() -> dict[str, tuple[bool, str]]:
            found: dict[str, tuple[bool, str]] = {}
            for mode in live.modes():
                stored = live.stored(mode.name) if mode.broker != "sandbox" else None
                if stored is not None:
                    found[mode.name] = (mode.analyze, stored.fingerprint())
            return found

        taken: list[str] = []
        for name, (analyze, fingerprint) in (await asyncio.to_thread(read)).items():
            if self._live_configs.get(name) == fingerprint:
                continue
            account = self.accounts.get(name)
            if account is None:
                account = self.add_account(name, analyze=analyze)
            await self._take_up_live(account)
            log.info("account %r: broker configuration taken up from the state database", name)
            taken.append(name)
        return taken

    async def _live_sync_loop(self) -> None:
        while True:
            await asyncio.sleep(LIVE_SYNC_INTERVAL)
            try:
                await self.sync_live_accounts()
            except Exception:
                log.exception("taking up live broker configurations failed")

    async def _take_up_live(self, account: TradingAccount) -> None:
        """(Re)build the account's adapter and, when running, start its sandbox and connect
        the adapter's order events (and live prices)."""
        old = self._build_live(account)
        if old is not None:
            await old.aclose()
        if self._background:
            await account.sandbox.start()
            await self._connect_live(account)

    async def _connect_live(self, account: TradingAccount) -> None:
        """Pump the live broker's order events into the engine and, with
        `sandbox_prices="live"`, let the account's sandbox match against its quotes."""
        self._start_pump(account)
        if self.settings.sandbox_prices == "live" and account.live is not None:
            await account.sandbox.follow(account.live)

    def _start_pump(self, account: TradingAccount) -> None:
        old = self._live_tasks.pop(account.name, None)
        if old is not None:
            old.cancel()
        if account.live is not None:
            self._live_tasks[account.name] = asyncio.create_task(
                self._pump(account, account.live), name=f"live-orders-{account.name}"
            )

    async def _pump(self, account: TradingAccount, broker: LiveBroker) -> None:
        """The live broker's order events into the engine, for as long as it runs."""
        while True:
            try:
                async for event in broker.order_events():
                    self._on_order_event(account, event, mode="live")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("order events of account %r stopped; restarting", account.name)
            await asyncio.sleep(1.0)

    async def _close_live(self) -> None:
        tasks, self._live_tasks = list(self._live_tasks.values()), {}
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for account in self.accounts.values():
            if account.live is not None:
                with contextlib.suppress(Exception):
                    await account.live.aclose()

    async def configure_broker(
        self,
        name: str,
        broker: str,
        *,
        api_key: str,
        api_secret: str,
        options: Mapping[str, str] | None = None,
    ) -> TradingAccount:
        """Give account `name` (created if new) a live broker with its app credentials,
        stored encrypted. The account stays in analyze mode until switched to live."""
        live = self._live()
        await asyncio.to_thread(
            live.configure, name, broker, api_key=api_key, api_secret=api_secret, options=options
        )
        account = self.accounts.get(name) or self.add_account(name)
        await self._take_up_live(account)
        return account

    def live_broker(self, name: str) -> LiveBroker:
        account = self.account(name)
        if account.live is None:
            raise NotFoundError(f"Account {name!r} has no live broker configured")
        return account.live

    def broker_login_url(self, name: str) -> str:
        """Where the user logs in to the account's broker."""
        return self.live_broker(name).login_url()

    async def broker_login(self, name: str, request_token_or_url: str) -> object:
        """Finish the broker login with what the broker's redirect handed the user."""
        return await self.live_broker(name).complete_login(request_token_or_url)

    def _open_history(self) -> None:
        """The history database (DuckDB), written in batches off the request path."""
        from openalgo_lab.store.history import HistoryStore, HistoryWriter

        self.history_store = HistoryStore(self.settings.history_path)
        # Large batches, once a second: the batch preparation shares the interpreter with the
        # request path, and fewer, larger batches disturb it least (bench_engine measures it).
        # Readers flush first (the analytics action), so the delay never shows.
        self.history = HistoryWriter(self.history_store, max_batch=20_000, flush_interval=1.0)
        self.history.start()
        self._requests = BatchThread(
            self.history_store.append_requests, name="request-log", interval=0.5
        )
        self._requests.start()

    # -- the traffic log ----------------------------------------------------------------------
    def record_request(self, row: RequestRow) -> None:
        """Queue one API request for the history database's `requests` table (O(1), never
        blocks; dropped when history is not open)."""
        if self._requests is not None:
            self._requests.submit(row)

    def flush_requests(self) -> None:
        """Wait until every request recorded so far is written (blocking: run in a thread)."""
        if self._requests is not None:
            self._requests.flush()

    def _record_history(self, account: TradingAccount, event: OrderEvent, mode: str) -> None:
        from openalgo_lab.store.history_rows import OrderEventRow, OrderRow, TradeRow

        assert self.history is not None
        order, trade = event.order, event.trade
        self.history.submit_order(OrderRow.from_order(account.name, order, mode))
        self.history.submit_order_event(
            OrderEventRow(
                account=account.name,
                orderid=order.orderid,
                status=order.status.value,
                filled_quantity=order.filled_quantity,
                ts=order.updated_at,
                detail=f"trade {trade.tradeid}" if trade is not None else order.rejection_reason,
            )
        )
        if trade is not None:
            self.history.submit_trade(TradeRow.from_trade(account.name, trade, mode))

    # -- the one entry point ----------------------------------------------------------------
    async def call(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        *,
        account: str | None = None,
        idempotency_key: str = "",
    ) -> Reply:
        """Run OpenAlgo action `name`; never raises for anything a caller can cause. The
        reply carries the call's timings (`Reply.timings`)."""
        timings: dict[str, float] = {}
        token = PHASES.set(timings)
        start = time.perf_counter()
        try:
            reply = await self._call(name, payload, account, idempotency_key)
        finally:
            timings["engine"] = time.perf_counter() - start
            PHASES.reset(token)
        return Reply(reply.status, reply.body, timings)

    async def _call(
        self, name: str, payload: Mapping[str, Any] | None, account: str | None, key: str
    ) -> Reply:
        mode: str | None = None
        try:
            spec = ACTIONS.get(name)
            if spec is None:
                raise NotFoundError(f"Unknown action {name!r}")
            acct = self.account(account)
            mode = "analyze" if acct.analyze else None
            ctx = ActionContext(self, acct, key)
            body = await spec.handler(ctx, Payload(payload or {}))
        except OpenAlgoError as err:
            envelope: JSON = err.to_envelope()
            if mode:
                envelope["mode"] = mode
            return Reply(err.http_status, envelope)
        except Exception:
            log.exception("action %s failed", name)
            envelope = {"status": "error", "message": f"Internal error in {name}; see the log"}
            return Reply(500, envelope)
        out: JSON = {"status": "success", **body}
        if mode and "mode" not in out:
            out["mode"] = mode
        return Reply(200, out)


def _find_tagged(orders: list[Order], tag: str, broker: Broker) -> Order | None:
    """The order carrying our tag, as we sent it or as the broker shortened it."""
    wire = broker.wire_tag(tag) if isinstance(broker, LiveBroker) else tag
    return next((o for o in orders if o.tag in (tag, wire)), None)
