"""Black-76: European options on a forward, the model OpenAlgo's options analytics use.

Indian index and stock options are European and cash-settled, and the market prices them off
the future (or the ATM synthetic), so pricing off a forward rather than the spot is the natural
choice: dividends and carry are already inside the forward.

Conventions follow OpenAlgo's `/optiongreeks` (reference §2.5): volatility is a fraction here
(0.156; OpenAlgo shows 15.6), theta is per calendar day, vega per one vol point, rho per one
rate point with the spot held fixed (the forward moves with the rate, which is how a trader
hedging with the index sees it; this matches the figures OpenAlgo publishes). Time is ACT/365.

These are floats on purpose: a model, not money. Callers snap results onto the tick grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

SECONDS_PER_YEAR = 365.0 * 86_400.0
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_MIN_VOL = 1e-9
_MAX_VOL = 20.0  # 2000 %: beyond this no quoted price is meaningful
# Chebyshev coefficients of erfc on [0, inf) (Numerical Recipes, 3rd ed., §6.2.2): numpy has
# no erf, and calling math.erfc per element is several times slower on a day of seconds.
_ERFC_CHEB = (
    -1.3026537197817094,
    6.4196979235649026e-1,
    1.9476473204185836e-2,
    -9.561514786808631e-3,
    -9.46595344482036e-4,
    3.66839497852761e-4,
    4.2523324806907e-5,
    -2.0278578112534e-5,
    -1.624290004647e-6,
    1.303655835580e-6,
    1.5626441722e-8,
    -8.5238095915e-8,
    6.529054439e-9,
    5.059343495e-9,
    -9.91364156e-10,
    -2.27365122e-10,
    9.6467911e-11,
    2.394038e-12,
    -6.886027e-12,
    8.94487e-13,
    3.13092e-13,
    -1.12708e-13,
    3.81e-16,
    7.106e-15,
    -1.523e-15,
    -9.4e-17,
    1.21e-16,
    -2.8e-17,
)


@dataclass(frozen=True, slots=True)
class Greeks:
    delta: float
    gamma: float
    theta: float  # per calendar day
    vega: float  # per 1 vol point (0.01)
    rho: float  # per 1 rate point (0.01), spot held fixed


def year_fraction(start: datetime, end: datetime) -> float:
    """ACT/365 years from `start` to `end`, never negative (an expired option has no time)."""
    return max((end - start).total_seconds(), 0.0) / SECONDS_PER_YEAR


def norm_cdf(x: float) -> float:
    # erfc keeps full relative precision in the far tails, where 0.5 * (1 + erf) cancels.
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def _d1_d2(forward: float, strike: float, t_years: float, vol: float) -> tuple[float, float]:
    sd = vol * math.sqrt(t_years)
    d1 = (math.log(forward / strike) + 0.5 * sd * sd) / sd
    return d1, d1 - sd


def intrinsic(forward: float, strike: float, t_years: float, rate: float, is_call: bool) -> float:
    """Discounted intrinsic value: the floor every European option on a forward respects."""
    raw = forward - strike if is_call else strike - forward
    return math.exp(-rate * max(t_years, 0.0)) * max(raw, 0.0)


def price(
    forward: float, strike: float, t_years: float, vol: float, rate: float, is_call: bool
) -> float:
    """Black-76 premium. With no time or no volatility left the option is worth its
    (discounted) intrinsic value, which is also the limit of the formula."""
    _check_inputs(forward, strike)
    if t_years <= 0.0 or vol <= 0.0:
        return intrinsic(forward, strike, t_years, rate, is_call)
    d1, d2 = _d1_d2(forward, strike, t_years, vol)
    df = math.exp(-rate * t_years)
    if is_call:
        value = df * (forward * norm_cdf(d1) - strike * norm_cdf(d2))
    else:
        value = df * (strike * norm_cdf(-d2) - forward * norm_cdf(-d1))
    # Deep in the money the two terms nearly cancel; never let rounding dip below the floor.
    return max(value, intrinsic(forward, strike, t_years, rate, is_call))


def greeks(
    forward: float, strike: float, t_years: float, vol: float, rate: float, is_call: bool
) -> Greeks:
    """Sensitivities of `price`; at expiry (or zero vol) only delta survives, as 1/0/-1."""
    _check_inputs(forward, strike)
    if t_years <= 0.0 or vol <= 0.0:
        return _expired_greeks(forward, strike, t_years, rate, is_call)
    sqrt_t = math.sqrt(t_years)
    d1, d2 = _d1_d2(forward, strike, t_years, vol)
    df = math.exp(-rate * t_years)
    pdf = norm_pdf(d1)
    value = price(forward, strike, t_years, vol, rate, is_call)
    if is_call:
        delta = df * norm_cdf(d1)
        rho = strike * t_years * df * norm_cdf(d2)
    else:
        delta = -df * norm_cdf(-d1)
        rho = -strike * t_years * df * norm_cdf(-d2)
    gamma = df * pdf / (forward * vol * sqrt_t)
    vega = df * forward * pdf * sqrt_t
    theta = -df * forward * pdf * vol / (2.0 * sqrt_t) + rate * value
    return Greeks(delta, gamma, theta / 365.0, vega / 100.0, rho / 100.0)


def _expired_greeks(
    forward: float, strike: float, t_years: float, rate: float, is_call: bool
) -> Greeks:
    df = math.exp(-rate * max(t_years, 0.0))
    in_the_money = forward > strike if is_call else forward < strike
    delta = (df if is_call else -df) if in_the_money else 0.0
    return Greeks(delta, 0.0, 0.0, 0.0, 0.0)


def implied_vol(
    option_price: float,
    forward: float,
    strike: float,
    t_years: float,
    rate: float,
    is_call: bool,
    *,
    tol: float = 1e-12,
) -> float:
    """The volatility that reproduces `option_price`; 0.0 at or below intrinsic value.

    Solves on the out-of-the-money side (parity turns an ITM call into the OTM put with the
    same time value), where the price is all time value and nothing cancels. Newton steps are
    kept inside a bisection bracket, so it converges for any price inside the no-arbitrage
    bounds. A price above the bound (more than the discounted forward for a call, the
    discounted strike for a put) has no volatility and raises ValueError.
    """
    _check_inputs(forward, strike)
    if not math.isfinite(option_price):
        raise ValueError(f"option price must be finite, got {option_price}")
    if t_years <= 0.0:
        return 0.0
    df = math.exp(-rate * t_years)
    upper = df * (forward if is_call else strike)
    if option_price >= upper:
        raise ValueError(
            f"option price {option_price} is at or above its no-arbitrage bound {upper:.6g}"
        )
    time_value = option_price - intrinsic(forward, strike, t_years, rate, is_call)
    if time_value <= 0.0:
        return 0.0
    # By parity the out-of-the-money option of the pair is worth exactly this time value.
    return _solve_otm(time_value, forward, strike, t_years, rate, forward <= strike, tol)


def _solve_otm(
    target: float,
    forward: float,
    strike: float,
    t_years: float,
    rate: float,
    is_call: bool,
    tol: float,
) -> float:
    lo, hi = _MIN_VOL, 1.0
    while price(forward, strike, t_years, hi, rate, is_call) < target:
        lo, hi = hi, hi * 2.0
        if hi > _MAX_VOL:
            return _MAX_VOL
    sqrt_t = math.sqrt(t_years)
    # Brenner-Subrahmanyam start, then keep it inside the bracket.
    vol = target / (math.exp(-rate * t_years) * forward * sqrt_t * _INV_SQRT_2PI)
    vol = min(max(vol, lo), hi)
    for _ in range(200):
        diff = price(forward, strike, t_years, vol, rate, is_call) - target
        if diff > 0.0:
            hi = vol
        else:
            lo = vol
        if abs(diff) <= tol * max(target, 1e-300) or hi - lo <= tol * hi:
            return vol
        d1, _ = _d1_d2(forward, strike, t_years, vol)
        vega = math.exp(-rate * t_years) * forward * norm_pdf(d1) * sqrt_t
        step = vol - diff / vega if vega > 0.0 else math.nan
        vol = step if lo < step < hi else 0.5 * (lo + hi)
    return vol


def option_analytics(
    option_price: float,
    forward: float,
    strike: float,
    t_years: float,
    rate: float,
    is_call: bool,
) -> tuple[float, Greeks]:
    """IV and greeks from a traded price, with OpenAlgo's rule for prices at or below
    intrinsic: IV 0 and delta ±1 (the option behaves like the underlying), other greeks 0."""
    iv = implied_vol(option_price, forward, strike, t_years, rate, is_call)
    if iv == 0.0:
        return 0.0, Greeks(1.0 if is_call else -1.0, 0.0, 0.0, 0.0, 0.0)
    return iv, greeks(forward, strike, t_years, iv, rate, is_call)


def _check_inputs(forward: float, strike: float) -> None:
    if not (forward > 0.0 and strike > 0.0):
        raise ValueError(f"forward and strike must be positive, got {forward} and {strike}")


# -- arrays: the simulated market prices a whole path at once -------------------------------


def _erfc_nonnegative(z: FloatArray) -> FloatArray:
    t = 2.0 / (2.0 + z)
    ty = 4.0 * t - 2.0
    d = np.zeros_like(z)
    dd = np.zeros_like(z)
    for coef in _ERFC_CHEB[:0:-1]:
        d, dd = ty * d - dd + coef, d
    out: FloatArray = t * np.exp(-z * z + 0.5 * (_ERFC_CHEB[0] + ty * d) - dd)
    return out


def norm_cdf_array(x: FloatArray) -> FloatArray:
    """`norm_cdf` elementwise (relative error below 1e-12 against `math.erfc`, far below a
    paisa on any premium). The tail is computed directly, so N(x) + N(-x) is 1 to rounding
    and put-call parity survives."""
    tail = 0.5 * _erfc_nonnegative(np.abs(x) / _SQRT2)
    out: FloatArray = np.where(x < 0.0, tail, 1.0 - tail)
    return out


def prices(
    forward: FloatArray,
    strike: float,
    t_years: FloatArray,
    vol: FloatArray,
    rate: float,
    is_call: bool,
) -> FloatArray:
    """`price` over arrays of forwards, times and vols (one strike and side)."""
    t = np.maximum(t_years, 0.0)
    sd = vol * np.sqrt(t)
    live = sd > 0.0
    safe_sd = np.where(live, sd, 1.0)
    d1 = (np.log(forward / strike) + 0.5 * safe_sd * safe_sd) / safe_sd
    d2 = d1 - safe_sd
    df = np.exp(-rate * t)
    sign = 1.0 if is_call else -1.0
    # One call for both CDFs: on a one-minute block the per-call overhead is what costs.
    n1, n2 = np.split(norm_cdf_array(np.concatenate((sign * d1, sign * d2))), 2)
    value = sign * df * (forward * n1 - strike * n2)
    floor = df * np.maximum(sign * (forward - strike), 0.0)
    out: FloatArray = np.where(live, np.maximum(value, floor), floor)
    return out
