"""Black-76 pricing, greeks and implied volatility."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openalgo_lab.domain import black76 as b76

# OpenAlgo's documented /optiongreeks example (docs/api/options-services/optiongreeks.md):
# NIFTY 26000 CE, spot 25966.05, 28.5071 days, rate 0, IV 15.6 %, premium 435.
EXAMPLE = {"forward": 25966.05, "strike": 26000.0, "t_years": 28.5071 / 365, "rate": 0.0}


def test_known_value_matches_openalgo_example() -> None:
    price = b76.price(vol=0.156, is_call=True, **EXAMPLE)
    assert price == pytest.approx(435.10, abs=0.01)
    g = b76.greeks(vol=0.156, is_call=True, **EXAMPLE)
    assert g.delta == pytest.approx(0.4967, abs=1e-4)
    assert g.gamma == pytest.approx(0.000352, abs=1e-6)
    assert g.theta == pytest.approx(-7.919, abs=0.005)
    assert g.vega == pytest.approx(28.9489, abs=0.001)
    assert g.rho == pytest.approx(9.733994, abs=0.001)


def test_implied_vol_of_the_example() -> None:
    iv, g = b76.option_analytics(435.0, is_call=True, **EXAMPLE)
    assert round(iv * 100, 2) == pytest.approx(15.6, abs=0.01)
    assert g.delta == pytest.approx(0.4967, abs=1e-4)


def test_textbook_value() -> None:
    # Hull's crude-oil futures put (Black's model): F=K=20, T=4 months, r=9 %, σ=25 % → 1.12.
    assert b76.price(20.0, 20.0, 4 / 12, 0.25, 0.09, False) == pytest.approx(1.1166, abs=1e-3)


@pytest.mark.parametrize("strike", [15000.0, 24000.0, 26000.0, 28000.0, 40000.0])
@pytest.mark.parametrize("t", [1 / 365 / 24, 7 / 365, 0.25, 2.0])
def test_put_call_parity(strike: float, t: float) -> None:
    f, r, vol = 26000.0, 0.065, 0.18
    call = b76.price(f, strike, t, vol, r, True)
    put = b76.price(f, strike, t, vol, r, False)
    assert call - put == pytest.approx(math.exp(-r * t) * (f - strike), abs=1e-7 * f)


def test_bounds_and_monotonic_in_vol() -> None:
    f, k, t, r = 100.0, 105.0, 0.5, 0.05
    prices = [b76.price(f, k, t, v, r, True) for v in (0.05, 0.1, 0.2, 0.4, 0.8)]
    assert prices == sorted(prices)
    assert all(0 <= p <= math.exp(-r * t) * f for p in prices)


def test_expiry_and_zero_vol_are_intrinsic() -> None:
    assert b76.price(110.0, 100.0, 0.0, 0.3, 0.05, True) == 10.0
    assert b76.price(90.0, 100.0, 0.0, 0.3, 0.05, True) == 0.0
    assert b76.price(90.0, 100.0, -1.0, 0.3, 0.05, False) == 10.0
    df = math.exp(-0.05 * 0.5)
    assert b76.price(110.0, 100.0, 0.5, 0.0, 0.05, True) == pytest.approx(10.0 * df)


def test_t_to_zero_converges_to_intrinsic() -> None:
    for f in (95.0, 100.0, 105.0):
        near = b76.price(f, 100.0, 1e-10, 0.3, 0.05, True)
        assert near == pytest.approx(max(f - 100.0, 0.0), abs=1e-3)


def test_deep_itm_and_otm() -> None:
    f, t, r, vol = 26000.0, 30 / 365, 0.065, 0.15
    deep_itm = b76.price(f, 15000.0, t, vol, r, True)
    assert deep_itm == pytest.approx(math.exp(-r * t) * 11000.0, rel=1e-12)
    assert deep_itm >= b76.intrinsic(f, 15000.0, t, r, True)
    assert 0.0 <= b76.price(f, 40000.0, t, vol, r, True) < 1e-12
    g = b76.greeks(f, 15000.0, t, vol, r, True)
    assert g.delta == pytest.approx(math.exp(-r * t), abs=1e-9)
    assert g.gamma == pytest.approx(0.0, abs=1e-12)
    assert b76.greeks(f, 40000.0, t, vol, r, False).delta == pytest.approx(-math.exp(-r * t))


def test_greeks_match_finite_differences() -> None:
    f, k, t, vol, r = 26000.0, 26500.0, 20 / 365, 0.14, 0.065
    for is_call in (True, False):
        g = b76.greeks(f, k, t, vol, r, is_call)

        def v(
            ff: float = f, tt: float = t, vv: float = vol, rr: float = r, c: bool = is_call
        ) -> float:
            return b76.price(ff, k, tt, vv, rr, c)

        h = 0.5
        assert g.delta == pytest.approx((v(ff=f + h) - v(ff=f - h)) / (2 * h), rel=1e-6)
        assert g.gamma == pytest.approx((v(ff=f + h) - 2 * v() + v(ff=f - h)) / h**2, rel=1e-4)
        assert g.vega == pytest.approx((v(vv=vol + 1e-4) - v(vv=vol - 1e-4)) / 2e-4 / 100, rel=1e-6)
        day = 1 / 365
        assert g.theta == pytest.approx(
            (v(tt=t - day / 100) - v(tt=t + day / 100)) / 2 * 100, rel=1e-3
        )
        # Rho with the spot fixed: the forward moves with the rate.
        spot = f * math.exp(-r * t)
        up = b76.price(spot * math.exp((r + 1e-6) * t), k, t, vol, r + 1e-6, is_call)
        down = b76.price(spot * math.exp((r - 1e-6) * t), k, t, vol, r - 1e-6, is_call)
        assert g.rho == pytest.approx((up - down) / 2e-6 / 100, rel=1e-4)


def test_expired_greeks() -> None:
    assert b76.greeks(110.0, 100.0, 0.0, 0.2, 0.05, True) == b76.Greeks(1.0, 0.0, 0.0, 0.0, 0.0)
    assert b76.greeks(90.0, 100.0, 0.0, 0.2, 0.05, True).delta == 0.0
    assert b76.greeks(90.0, 100.0, 0.0, 0.2, 0.05, False).delta == -1.0


@settings(max_examples=300, deadline=None)
@given(
    forward=st.floats(50.0, 100_000.0),
    moneyness=st.floats(-0.6, 0.6),
    t=st.floats(1 / (365 * 24), 3.0),
    vol=st.floats(0.02, 2.5),
    rate=st.floats(0.0, 0.12),
    is_call=st.booleans(),
)
def test_implied_vol_round_trip(
    forward: float, moneyness: float, t: float, vol: float, rate: float, is_call: bool
) -> None:
    strike = forward * math.exp(moneyness)
    price = b76.price(forward, strike, t, vol, rate, is_call)
    time_value = price - b76.intrinsic(forward, strike, t, rate, is_call)
    # Where the time value is below float resolution, no method can see the vol.
    if time_value < 1e-9 * forward:
        return
    iv = b76.implied_vol(price, forward, strike, t, rate, is_call)
    assert b76.price(forward, strike, t, iv, rate, is_call) == pytest.approx(
        price, rel=1e-9, abs=1e-10 * forward
    )
    if time_value > 1e-5 * forward:
        assert iv == pytest.approx(vol, rel=1e-5)


def test_at_or_below_intrinsic_gives_zero_iv_and_unit_delta() -> None:
    f, k, t, r = 26000.0, 25000.0, 10 / 365, 0.065
    floor = b76.intrinsic(f, k, t, r, True)
    assert b76.implied_vol(floor, f, k, t, r, True) == 0.0
    iv, g = b76.option_analytics(floor - 5, f, k, t, r, True)
    assert iv == 0.0 and g.delta == 1.0 and g.gamma == 0.0
    iv, g = b76.option_analytics(0.0, f, 27000.0, t, r, False)
    assert iv == 0.0 and g.delta == -1.0


def test_price_above_bound_is_an_error() -> None:
    with pytest.raises(ValueError, match="no-arbitrage"):
        b76.implied_vol(30000.0, 26000.0, 25000.0, 0.1, 0.05, True)
    with pytest.raises(ValueError, match="positive"):
        b76.price(0.0, 100.0, 1.0, 0.2, 0.0, True)


def test_array_prices_agree_with_scalar() -> None:
    rng = np.random.default_rng(3)
    f = rng.uniform(20000, 30000, 500)
    t = rng.uniform(0, 0.2, 500)
    vol = rng.uniform(0.05, 0.6, 500)
    t[:5] = 0.0
    for is_call in (True, False):
        arr = b76.prices(f, 25500.0, t, vol, 0.065, is_call)
        scalar = [
            b76.price(fi, 25500.0, ti, vi, 0.065, is_call)
            for fi, ti, vi in zip(f.tolist(), t.tolist(), vol.tolist(), strict=True)
        ]
        assert arr.tolist() == pytest.approx(scalar, rel=1e-13, abs=1e-9)


def test_year_fraction() -> None:
    from datetime import UTC, datetime

    a = datetime(2026, 1, 1, tzinfo=UTC)
    assert b76.year_fraction(a, datetime(2027, 1, 1, tzinfo=UTC)) == 1.0
    assert b76.year_fraction(datetime(2027, 1, 1, tzinfo=UTC), a) == 0.0


def test_array_normal_cdf_accuracy() -> None:
    x = np.linspace(-37.0, 37.0, 20_001)
    exact = np.array([b76.norm_cdf(v) for v in x.tolist()])
    got = b76.norm_cdf_array(x)
    assert np.all(np.abs(got - exact) <= 1e-12 * exact)
    assert np.all(got + b76.norm_cdf_array(-x) == 1.0)
