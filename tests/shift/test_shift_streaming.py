"""Streaming detectors on seeded synthetic streams with a known change point."""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest
from scipy import stats

from stalwart.errors import ConfigError, InputError
from stalwart.shift.base import DETECTORS, StreamDetector
from stalwart.shift.streaming import ADWIN, DDM, KSWIN, PageHinkley, ks_two_sample_pvalue

CHANGE = 1000
SEEDS = range(20)


def mean_shift(seed: int, shift: float = 1.0, n_after: int = 500) -> np.ndarray:
    """N(0, 1) for 1000 values, then N(shift, 1)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0.0, 1.0, CHANGE), rng.normal(shift, 1.0, n_after)])


def first_after(hits: list[int]) -> int | None:
    after = [h for h in hits if h >= CHANGE]
    return after[0] if after else None


def test_registered_as_stream_detectors():
    for name, cls in [("adwin", ADWIN), ("page_hinkley", PageHinkley), ("ddm", DDM), ("kswin", KSWIN)]:
        assert DETECTORS.get(name) is cls
        assert issubclass(cls, StreamDetector)


# -- ADWIN -------------------------------------------------------------------------------------------
def test_adwin_detects_mean_shift_without_false_alarms():
    # the cut bound holds each false cut below delta=0.002; measured: no alarm before t=1000 in 20
    # seeds, first alarm 23-55 values after the change (cut tests run every clock=32 values)
    delays = []
    for seed in SEEDS:
        hits = ADWIN().run(mean_shift(seed))
        assert all(h >= CHANGE for h in hits), (seed, hits)
        first = first_after(hits)
        assert first is not None, seed
        delays.append(first - CHANGE)
    assert max(delays) < 150
    assert np.median(delays) < 80


def test_adwin_window_drops_the_old_regime():
    det = ADWIN()
    det.run(mean_shift(0, n_after=500))
    # after the cut the window holds (almost) only post-change values, whose mean is 1
    assert det.width < 600
    assert det.estimation == pytest.approx(1.0, abs=0.15)


def test_adwin_stationary_exact_moments_and_log_memory():
    values = np.random.default_rng(7).normal(2.0, 3.0, 5000)
    det = ADWIN()
    assert det.run(values) == []
    assert det.width == 5000
    # bucket merges keep the exact mean and variance of the window
    assert det.estimation == pytest.approx(values.mean(), rel=1e-12)
    assert det.variance == pytest.approx(values.var(), rel=1e-9)
    # exponential histogram: at most max_buckets buckets per level, log2(W) + 1 levels
    assert det.n_buckets <= det.max_buckets * (math.log2(det.width) + 1)
    assert det.n_buckets < 80  # 5000 raw values compressed


def test_adwin_parameter_errors():
    with pytest.raises(ConfigError, match=r"ADWIN\(delta=\.\.\.\) must be a number in \(0, 1\); got 2"):
        ADWIN(delta=2)
    with pytest.raises(ConfigError, match=r"ADWIN\(clock=\.\.\.\) must be an integer >= 1"):
        ADWIN(clock=0)
    for det in (ADWIN(), PageHinkley(), KSWIN()):
        with pytest.raises(InputError, match=rf"{type(det).__name__}.update got nan; stream values must be finite"):
            det.update(float("nan"))


def moa_first_cut_tick(values: np.ndarray, delta: float = 0.002, clock: int = 32, min_window: int = 5) -> int | None:
    """The first clock tick at which some split of the raw window is a cut by MOA's bound.

    Straight from the formula, every split position tried: ADWIN tests only bucket boundaries,
    which are every position when no bucket ever merges.
    """
    for t in range(clock - 1, len(values), clock):
        window = values[: t + 1]
        width = len(window)
        if width <= 10:  # the grace period
            continue
        dd = math.log(2 * math.log(width) / delta)
        n0 = np.arange(1, width)
        n1 = width - n0
        s0 = np.cumsum(window)[:-1]
        ok = (n0 > min_window + 1) & (n1 > min_window + 1)
        n0, n1, s0 = n0[ok], n1[ok], s0[ok]
        m = 1 / (n0 - min_window + 1) + 1 / (n1 - min_window + 1)
        eps = np.sqrt(2 * m * window.var() * dd) + 2 / 3 * dd * m
        if (np.abs(s0 / n0 - (window.sum() - s0) / n1) > eps).any():
            return t
    return None


def test_adwin_reproduces_rivers_published_detection_index():
    # river's ADWIN docstring: this stream (Python's own random module, so it is reproduced
    # here exactly) is detected at index 1023 and nowhere else -- the first clock tick after the
    # jump from mean 0.5 to 5.5 at index 1000
    rng = random.Random(12345)
    stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    assert ADWIN().run(stream) == [1023]
    assert moa_first_cut_tick(np.asarray(stream, dtype=float)) == 1023


def test_adwin_fires_at_the_tick_moas_bound_gives():
    # a half-sd mean shift at 1000 makes the first cut land on different ticks for different
    # seeds (1055-1151); with buckets that never merge ADWIN tests every split, so it must fire
    # exactly where the formula does -- not a tick earlier (the bound without MOA's small-window
    # correction fired one tick early on 6 of 30 seeds) and not later
    for seed in range(10):
        stream = mean_shift(seed, shift=0.5, n_after=1000)
        expected = moa_first_cut_tick(stream)
        assert expected is not None and expected >= CHANGE
        assert ADWIN(max_buckets=4096).run(stream)[0] == expected, seed
        # the default histogram tests a subset of those splits: never earlier, on a tick
        first = ADWIN().run(stream)[0]
        assert first >= expected and first % 32 == 31, seed


def test_adwin_one_alarm_per_change_or_moas_shrinking():
    restart, shrink = [], []
    for seed in SEEDS:
        stream = mean_shift(seed, n_after=1000)
        det = ADWIN()
        hits = det.run(stream)
        restart.append(len(hits))
        # after the alarm the window restarted: it holds exactly the values since
        assert det.width == len(stream) - hits[-1] - 1
        shrink.append(len(ADWIN(on_change="shrink").run(stream)))
    assert restart == [1] * len(SEEDS)  # river's count on these streams (checked with river 0.26.1)
    # MOA's estimator keeps cutting away the rest of the old regime (measured: 2.5 per change)
    assert np.mean(shrink) > 1.5 and min(shrink) >= 1


def test_adwin_update_many_gives_the_alarms_of_update_bit_for_bit():
    rng = np.random.default_rng(123)
    for seed in range(6):
        gen = np.random.default_rng(seed)
        # several changes, longer than one batch of 64 ticks
        stream = np.concatenate([gen.normal(0, 1, 1500), gen.normal(1.0, 1, 2500), gen.normal(0.3, 2, 2000),
                                 (gen.random(1500) < 0.3).astype(float)])
        for kwargs in ({}, {"on_change": "shrink"}, {"clock": 5, "max_buckets": 2}, {"clock": 1, "delta": 0.05}):
            one = ADWIN(**kwargs)
            single = [i for i, v in enumerate(stream) if one.update(v)]
            assert single, (seed, kwargs)
            batched = ADWIN(**kwargs)
            hits = []
            for chunk in np.split(stream, np.sort(rng.choice(len(stream), 40, replace=False))):
                if len(chunk) == 1:
                    hits += [batched.n_seen] if batched.update(chunk[0]) else []
                else:
                    hits += batched.update_many(chunk)
            assert hits == single == batched.detected_at == one.detected_at, (seed, kwargs)
            # batches of a few ticks and of many take different code paths: both are checked
            whole = ADWIN(**kwargs)
            assert whole.update_many(stream) == single, (seed, kwargs)
            assert batched.n_seen == one.n_seen == len(stream)
            # the same window, to the last bit
            for det in (batched, whole):
                assert (det.width, det.estimation, det.variance, det.n_buckets) == \
                    (one.width, one.estimation, one.variance, one.n_buckets)


def test_adwin_state_survives_pickling_mid_stream():
    import pickle

    stream = np.concatenate([mean_shift(3, n_after=1000), mean_shift(4, shift=-1.0, n_after=700)])
    straight = ADWIN().run(stream)
    det = ADWIN()
    det.update_many(stream[:1500])
    for _ in range(3):  # a few values wait between ticks when it is saved
        det.update(stream[det.n_seen])
    det = pickle.loads(pickle.dumps(det))
    det.update_many(stream[det.n_seen:])
    assert det.detected_at == straight and len(straight) >= 2


@pytest.mark.parametrize("name", ["adwin", "page_hinkley", "ddm", "kswin"])
def test_state_through_json_goes_on_as_the_uninterrupted_detector(name):
    """get_state -> JSON text -> from_state, at several points of a stream with changes, gives the
    alarms of one detector that ran straight through, and ends in the same state, to the bit."""
    import json

    rng = np.random.default_rng(7)
    if name == "ddm":  # a 0/1 error stream whose error rate jumps from 0.1 to 0.3
        stream = (rng.random(6000) < np.where(np.arange(6000) < 3000, 0.1, 0.3)).astype(float)
    else:
        stream = np.concatenate([rng.normal(0, 1, 2500), rng.normal(1.5, 1, 2000), rng.normal(0, 1, 1500)])
    straight = DETECTORS.create(name)
    straight.run(stream)
    assert len(straight.detected_at) >= 2  # the stream has changes to find
    det, found = DETECTORS.create(name), []
    for cut in (0, 777, 1001, 2600, 4111, 4500, 6000):
        text = json.dumps(det.get_state(), allow_nan=False)  # strict JSON: what a database column holds
        det = StreamDetector.from_state(json.loads(text))
        found += det.update_many(stream[det.n_seen:cut])
    assert found == straight.detected_at
    assert json.dumps(det.get_state()) == json.dumps(straight.get_state())


def test_state_keeps_infinities_arrays_and_a_generator():
    import json

    det = KSWIN(seed=np.random.default_rng(3))  # a generator as the seed, an array as the window
    det.update_many(np.arange(150.0))
    state = json.loads(json.dumps(det.get_state(), allow_nan=False))
    back = KSWIN.from_state(state)
    assert isinstance(back._window, np.ndarray) and back._window.dtype == np.float64
    assert back._rng.random() == det._rng.random()
    ddm = DDM()
    assert json.loads(json.dumps(ddm.get_state(), allow_nan=False))["state"]["_p_min"] == {"__float__": "inf"}
    assert DDM.from_state(ddm.get_state())._p_min == math.inf


def test_state_refusals_say_what_to_do():
    adwin_state = ADWIN().get_state()
    with pytest.raises(InputError, match=r"PageHinkley.from_state got the state of ADWIN; call ADWIN.from_state "
                                         r"or StreamDetector.from_state"):
        PageHinkley.from_state(adwin_state)
    with pytest.raises(InputError, match=r"a detector state is a dict \{'detector': <name>"):
        StreamDetector.from_state([1, 2])
    old = {"detector": "adwin", "state": {**adwin_state["state"], "_retired": 1}}
    del old["state"]["_tick"]
    with pytest.raises(InputError, match=r"does not fit this version of stalwart \(missing \['_tick'\], unknown "
                                         r"\['_retired'\]\); start the detector afresh"):
        StreamDetector.from_state(old)
    with pytest.raises(ConfigError, match=r"unknown detector 'adwinn'.*Did you mean 'adwin'"):
        StreamDetector.from_state({"detector": "adwinn", "state": {}})
    kswin = KSWIN().get_state()
    kswin["state"]["_rng"]["__generator__"]["bit_generator"] = "os.system"
    with pytest.raises(InputError, match=r"names the bit generator 'os.system'; known: \['PCG64'"):
        StreamDetector.from_state(kswin)

    class Opaque(PageHinkley):
        name = "opaque_ph"

        def __init__(self):
            super().__init__()
            self.memo = object()
    with pytest.raises(TypeError, match=r"Opaque.memo holds a object, which get_state\(\) cannot write as JSON; "
                                        r"override get_state\(\) and from_state\(\)"):
        Opaque().get_state()


def test_adwin_update_many_errors_feed_nothing():
    det = ADWIN()
    with pytest.raises(InputError, match=r"ADWIN.update_many got nan at position 2; stream values must be finite"):
        det.update_many([1.0, 2.0, float("nan")])
    assert det.n_seen == 0 and det.width == 0
    with pytest.raises(InputError, match=r"ADWIN.update_many\(values=\.\.\.\) must be a one-dimensional stream"):
        det.update_many(np.zeros((3, 2)))
    with pytest.raises(ConfigError, match=r"ADWIN\(on_change=\.\.\.\) must be one of \['restart', 'shrink'\]"):
        ADWIN(on_change="reset")
    # the other detectors take batches one value at a time
    assert DDM().update_many(np.r_[np.zeros(1000), 1.0, 1.0, 1.0]) == [1002]


# -- Page-Hinkley --------------------------------------------------------------------------------------
def test_page_hinkley_statistic_by_hand():
    # running means 0, 0, 1/3, 1/2; U = 0, 0, 2/3, 2/3 + 1/2 = 7/6, min U = 0
    det = PageHinkley(delta=0.0, threshold=100.0, alpha=1.0, min_instances=1)
    det.run([0.0, 0.0, 1.0, 1.0])
    assert det.statistic == pytest.approx(7 / 6, abs=1e-12)
    assert det.statistic_down == pytest.approx(0.0, abs=1e-12)
    # delta = 0.1, alpha = 0.5: U = -0.1, -0.15, -0.075 + (1 - 1/3 - 0.1), U3 / 2 + (1 - 1/2 - 0.1)
    det = PageHinkley(delta=0.1, threshold=100.0, alpha=0.5, min_instances=1)
    det.run([0.0, 0.0, 1.0, 1.0])
    u3 = -0.075 + (1 - 1 / 3 - 0.1)
    assert det.statistic == pytest.approx(u3 / 2 + 0.4 - (-0.15), abs=1e-12)
    # a decrease mirrors it
    det = PageHinkley(delta=0.0, threshold=100.0, alpha=1.0, direction="down", min_instances=1)
    det.run([1.0, 1.0, 0.0, 0.0])
    assert det.statistic == pytest.approx(7 / 6, abs=1e-12)
    assert det.statistic_up == pytest.approx(0.0, abs=1e-12)


def test_page_hinkley_fires_at_the_crossing_and_restarts():
    det = PageHinkley(delta=0.0, threshold=1.0, alpha=1.0, min_instances=1)
    # statistic after each value: 0, 0, 2/3, 7/6 > 1
    assert det.run([0.0, 0.0, 1.0, 1.0]) == [3]
    assert det.statistic == 0.0  # everything restarts after a detection
    det.update(5.0)  # first value after the restart: its own mean, so no deviation
    assert det.statistic == 0.0


def test_page_hinkley_detects_mean_shift():
    # delta = half the shift: on N(0, 1) the sum drifts down by 0.5 a step and the statistic
    # stays above lambda=20 with probability about exp(-2 * 0.5 * 20) = 2e-9; after the shift
    # it climbs about 0.5 a step, so the expected delay is near 20 / 0.5 = 40 (measured 17-52)
    delays = []
    for seed in SEEDS:
        hits = PageHinkley(delta=0.5, threshold=20.0).run(mean_shift(seed))
        assert all(h >= CHANGE for h in hits), (seed, hits)
        delays.append(first_after(hits) - CHANGE)
    assert max(delays) < 100
    assert 20 < np.median(delays) < 60


def test_page_hinkley_direction():
    down = mean_shift(3, shift=-1.0)
    assert first_after(PageHinkley(0.5, 20.0, direction="down").run(down)) - CHANGE < 100
    assert PageHinkley(0.5, 20.0, direction="up").run(down) == []
    both = PageHinkley(0.5, 20.0, direction="both")
    assert first_after(both.run(down)) - CHANGE < 100
    with pytest.raises(ConfigError, match=r"PageHinkley\(direction=\.\.\.\) must be one of \['up', 'down', "
                                          r"'both'\]; got 'sideways'"):
        PageHinkley(direction="sideways")


# -- DDM -------------------------------------------------------------------------------------------------
def error_stream(seed: int, before: float = 0.1, after: float = 0.4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.random(CHANGE) < before, rng.random(CHANGE) < after]).astype(float)


def test_ddm_detects_error_rate_increase():
    # p + s must cross p_min + 3 s_min ~ 0.1 + 3 * 0.0095: about 70 values at error rate 0.4
    # (measured delays 8-182 over 20 seeds, median 57)
    delays, warned = [], 0
    for seed in SEEDS:
        det = DDM()
        first = first_after(det.run(error_stream(seed)))
        assert first is not None, seed
        delays.append(first - CHANGE)
        warned += any(CHANGE <= w <= first for w in det.warnings_at)
    assert max(delays) < 250
    assert np.median(delays) < 100
    assert warned >= 10  # usually a warning precedes the drift (14 of 20 measured)


def test_ddm_false_alarm_rate_on_stationary_errors():
    # DDM's false-alarm rate is not set by a parameter: p_min + s_min is the minimum of a noisy
    # sequence, biased low early on. Measured: 0.7 alarms per 2000 values at p=0.1 with the
    # defaults, fewer when more values are required before judging.
    streams = [(np.random.default_rng(1000 + s).random(2000) < 0.1).astype(float) for s in SEEDS]
    default = np.mean([len(DDM().run(s)) for s in streams])
    patient = np.mean([len(DDM(min_instances=200).run(s)) for s in streams])
    assert default <= 1.0
    assert patient <= default


def test_ddm_warning_then_drift_by_hand():
    det = DDM(min_instances=5)
    # one error in 30: p + s falls monotonically after n=5, so the minimum is at n=30
    det.run([0.0] * 3 + [1.0] + [0.0] * 26)
    p_min = 1 / 30
    s_min = math.sqrt(p_min * (1 - p_min) / 30)
    assert not det.warning
    # a second error: p + s = 2/31 + sqrt(2/31 * 29/31 / 31) = 0.1086, between
    # p_min + 2 s_min = 0.0989 and p_min + 3 s_min = 0.1317 -> warning, no drift
    p = 2 / 31
    assert p_min + 2 * s_min <= p + math.sqrt(p * (1 - p) / 31) < p_min + 3 * s_min
    assert det.update(1.0) is False and det.warning and det.warnings_at == [30]
    # a third: 3/32 + sqrt(3/32 * 29/32 / 32) = 0.145 >= 0.1317 -> drift, and a restart
    assert det.update(1.0) is True and det.detected_at == [31]
    assert not det.warning and det.error_rate == 0.0


def test_ddm_is_silent_on_a_model_without_mistakes():
    # p = s = 0 throughout: no spread to judge by, so no alarm (it fired 33 times per 1000 before:
    # p + s >= p_min + 3 s_min read 0 >= 0); river fires none
    assert DDM().run(np.zeros(1000)) == []
    assert DDM().run(np.ones(1000)) == []
    assert DDM(min_instances=1).run(np.zeros(1000)) == []


def test_ddm_after_a_faultless_start_by_hand():
    det = DDM()
    det.run(np.zeros(1000))
    # the first error, at n = 1001, is the first point with s > 0: the minimum
    assert det.update(1.0) is False and not det.warning
    p_min = 1 / 1001
    s_min = math.sqrt(p_min * (1 - p_min) / 1001)

    def level(errors: int, n: int) -> float:
        p = errors / n
        return p + math.sqrt(p * (1 - p) / n)

    # a second error: 0.00341 lies between p_min + 2 s_min = 0.00299 and p_min + 3 s_min = 0.00399
    assert p_min + 2 * s_min < level(2, 1002) <= p_min + 3 * s_min
    assert det.update(1.0) is False and det.warning and det.warnings_at == [1001]
    # a third: 0.00472 > 0.00399 -> drift at index 1002
    assert level(3, 1003) > p_min + 3 * s_min
    assert det.update(1.0) is True and det.detected_at == [1002]


def test_ddm_detects_an_error_rate_jump_within_its_delay_bound():
    p0, p1 = 0.05, 0.4

    def delay_bound(n_ref: int, sigmas: float) -> int:
        # values after the change until p + s > p_min + 3 s_min, taking p_min + s_min as the
        # error rate and its standard deviation over the n_ref values since the last restart
        # (p0 + sigmas standard deviations) and the errors since the change sigmas standard
        # deviations below their mean p1 d; p + s is bounded below by p (s >= 0)
        p = p0 + sigmas * math.sqrt(p0 * (1 - p0) / n_ref)
        s = math.sqrt(p * (1 - p) / n_ref)
        d = 1
        while p1 * d - sigmas * math.sqrt(p1 * (1 - p1) * d) <= (n_ref + d) * (p + 3 * s) - n_ref * p:
            d += 1
        return d

    # the expected delay, with p + s at its expected value: 39 values after 1000 at 0.05
    s_ref = math.sqrt(p0 * (1 - p0) / CHANGE)
    expected = next(d for d in range(1, 1000)
                    if (q := (CHANGE * p0 + d * p1) / (CHANGE + d)) + math.sqrt(q * (1 - q) / (CHANGE + d))
                    > p0 + 3 * s_ref)
    assert expected == 39
    delays = []
    for seed in SEEDS:
        hits = DDM().run(error_stream(seed, before=p0, after=p1))
        # DDM's own false alarms (about one per 1000 values at 5% errors) restart it: judge the
        # delay against the values it had seen since
        before = [h for h in hits if h < CHANGE]
        n_ref = CHANGE - (before[-1] + 1) if before else CHANGE
        assert n_ref >= 100, seed
        delay = first_after(hits) - CHANGE
        assert delay <= delay_bound(n_ref, sigmas=3.0), (seed, n_ref, delay)  # 118-136
        delays.append(delay)
    assert np.median(delays) <= expected  # measured 3-51, median 24


def test_ddm_errors():
    with pytest.raises(InputError, match="DDM expects a 0/1 error stream"):
        DDM().update(0.5)
    with pytest.raises(ConfigError, match=r"DDM\(drift_level=\.\.\.\) must be a number > warning_level=2.0"):
        DDM(drift_level=1.5)


# -- KSWIN -----------------------------------------------------------------------------------------------
def test_ks_pvalue_matches_scipy_exact():
    for n in (8, 15):
        for k in range(1, n + 1):
            a = np.arange(n, dtype=float)
            b = a + k - 0.5  # shifts the second ECDF so that D = k / n exactly
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ref = stats.ks_2samp(a, b, method="exact")
            assert ref.statistic == pytest.approx(k / n)
            assert ks_two_sample_pvalue(k / n, n) == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


def test_kswin_detects_mean_shift_at_the_rate_alpha_implies():
    # one KS test per value from t=99: before the change about 901 tests per stream at alpha=0.005,
    # so at most 0.005 * 901 = 4.5 false alarms per stream (measured 1.15: tests overlap)
    false_alarms, quick = 0, 0
    for seed in SEEDS:
        hits = KSWIN(seed=seed).run(mean_shift(seed))
        false_alarms += sum(h < CHANGE for h in hits)
        first = first_after(hits)
        quick += first is not None and first - CHANGE < 100
    assert false_alarms / len(SEEDS) <= 0.005 * 901
    # a 1-sigma shift gives a 30-vs-30 KS test modest power; once the whole window is post-change
    # there is nothing left to detect, so a miss is possible (measured: 19 of 20 within 100)
    assert quick >= 17


def test_kswin_is_seeded_and_shrinks_after_detection():
    stream = mean_shift(4, shift=3.0)
    a, b = KSWIN(seed=1), KSWIN(seed=1)
    assert a.run(stream) == b.run(stream)
    det = KSWIN(alpha=1e-3, seed=0)
    hits = det.run(mean_shift(5, shift=3.0, n_after=0)[:CHANGE].tolist() + [3.0] * 40)
    assert hits and hits[-1] >= CHANGE
    assert det.p_value < 1e-3 and det.statistic >= 0.5
    with pytest.raises(ConfigError, match=r"KSWIN\(stat_size=\.\.\.\) must be an integer in \[1, window_size / 2"):
        KSWIN(window_size=50, stat_size=30)
