"""Import declaration items of the synthetic world, with their true irregularities.

The generative story, per item:

1. who (importer, declarant, seller), when, from where (origin, dispatch), how (mode, office);
2. what is *declared* (commodity B), drawn from the importer's usual chapters or not;
3. prior probabilities of each irregularity, from what is declared and the operators' latent traits;
4. the irregularities themselves (coin flips): undervaluation U, misclassification M (the goods
   are really the higher-duty commodity whose lower-duty twin is B), counterfeit C, prohibited
   goods P, unsafe product S;
5. the traces they leave: U and C lower the declared unit value, M leaves the true goods'
   description in 60% of cases.

The oracle probability is the exact posterior of each area given everything observable *and*
the latent traits, but not the coin flips: the best any ranking can do. Undervaluation and
counterfeits are enumerated jointly with misclassification over the price and description
traces (Gaussian likelihoods, discrete description likelihoods).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_contracts.reference import VAGUE_DESCRIPTIONS
from world.catalogue import CHAPTERS, OFFICES, ORIGINS
from world.drift import FraudShift, ShiftedFraud, ShiftPlan, plan_shift, shifted_fraud
from world.operators import Operators

__all__ = ["DeclarationDraw", "PriceModel", "generate_declarations"]

# Trace parameters (log unit value shifts) and description behaviour.
UNDERVALUE_SHIFT, UNDERVALUE_SD = -0.9, 0.25
COUNTERFEIT_SHIFT, COUNTERFEIT_SD = -1.1, 0.30
MISCLASS_KEEPS_TRUE_DESCRIPTION = 0.6
SLOPPY_MISMATCH = 0.03  # honest items whose description names another chapter's goods
PRICE_INFLATION_PER_YEAR = 0.05
DRIFT_CHAPTERS = ("85", "73")  # a new undervaluation scheme starts on these half-way through
VAT_RATE = 0.2
H7_THRESHOLD_EUR = 150.0

_VAGUE = np.array(sorted(VAGUE_DESCRIPTIONS - {"stc", "fak"}))
_MODE_CODES = np.array([1, 2, 3, 4, 5])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _normal_logpdf(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


@dataclass
class PriceModel:
    """Genuine log unit values per commodity and origin: the world's THESEUS truth."""

    log_price: np.ndarray  # [commodity, origin] at day 0
    sigma: np.ndarray  # [commodity]

    def mean(self, commodity: np.ndarray, origin: np.ndarray, day: np.ndarray) -> np.ndarray:
        inflation = PRICE_INFLATION_PER_YEAR * day / 365.0
        return self.log_price[commodity, origin] + inflation


@dataclass
class DeclarationDraw:
    """What the generator hands on: the items, their truth and what controls need."""

    items: pd.DataFrame
    truth: pd.DataFrame
    day: np.ndarray
    irregular: dict[str, np.ndarray]
    recoverable_eur: np.ndarray
    shift: ShiftPlan | None = None  # the planted scheme, if the world has one


def _pick_within_groups(
    rng: np.random.Generator, group_of_row: np.ndarray, members: dict, weights: dict
) -> np.ndarray:
    out = np.empty(len(group_of_row), dtype=np.int64)
    for group, rows in pd.Series(np.arange(len(group_of_row))).groupby(group_of_row):
        candidates = members[group]
        w = weights[group]
        out[rows.to_numpy()] = candidates[rng.choice(len(candidates), size=len(rows), p=w)]
    return out


def generate_declarations(
    rng: np.random.Generator,
    n_items: int,
    n_days: int,
    start: pd.Timestamp,
    ops: Operators,
    catalogue: pd.DataFrame,
    prices: PriceModel,
    shift: tuple[np.random.Generator, FraudShift] | None = None,
) -> DeclarationDraw:
    """Draw ``n_items`` declaration items over ``n_days`` days from ``start``.

    The steps follow the generative story of the module docstring; each draws from ``rng`` in
    a fixed order, so the same seed gives the same world. ``shift`` (its own random stream and
    its settings) plants the fraud pattern of :mod:`world.drift`.
    """
    shift_rng, settings = shift if shift is not None else (np.random.default_rng(0), None)
    headers = _headers(rng, n_items, n_days, start, ops.importers)
    _origins_and_modes(rng, headers, ops.importers)
    headers.office = _offices(rng, headers.mode)
    _sellers_and_dispatch(rng, headers, ops)
    items = _items(rng, headers, ops, catalogue, n_items)
    plan = (
        plan_shift(
            settings, n_days, items.seller, items.propensity, ops.sellers["country"].to_numpy()
        )
        if settings is not None
        else None
    )
    displaced = (items.day >= plan.start_day) * plan.displacement if plan else 0.0
    priors = _priors(items, headers, ops, catalogue, n_days, displaced)
    flips = _irregularities(rng, priors, items)
    traces = _values_and_traces(rng, items, flips, catalogue, prices)
    described = _descriptions(rng, items, flips, ops.importers, catalogue)
    posterior = _oracle_posterior(items, priors, traces, described, catalogue, prices)
    scheme = shifted_fraud(shift_rng, plan, items.day, items.seller, traces.true_value)
    # The scheme is independent of the traces: it combines with the posterior as a second cause.
    posterior.financial = 1 - (1 - posterior.financial) * (1 - scheme.probability)
    revenue = _duties_and_revenue(rng, items, flips, traces, catalogue, scheme)
    attributes = _other_attributes(rng, items, headers, traces, revenue, ops, catalogue)
    frame = _item_frame(rng, items, headers, traces, described, revenue, attributes, ops, start)
    irregular = {
        "financial": revenue.financial,
        "ipr": flips.counterfeit,
        "product_safety": flips.unsafe,
        "prohibitions_restrictions": flips.prohibited,
        "safety_security": np.zeros(n_items, dtype=bool),
    }
    truth = _truth_frame(frame, priors, posterior, irregular, flips, traces, revenue, catalogue)
    truth["origin_misdeclared"] = scheme.misdeclared
    return DeclarationDraw(
        items=frame,
        truth=truth,
        day=items.day,
        irregular=irregular,
        recoverable_eur=revenue.recoverable,
        shift=plan,
    )


@dataclass
class _Headers:
    """Per declaration (header level): who, when, from where, how."""

    per_declaration: np.ndarray
    importer: np.ndarray
    day: np.ndarray
    lodged: pd.DatetimeIndex
    ecommerce: np.ndarray
    origin: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mode: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    office: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    seller: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    propensity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dispatch: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    @property
    def n(self) -> int:
        return len(self.importer)


def _headers(
    rng: np.random.Generator, n_items: int, n_days: int, start: pd.Timestamp, imp: pd.DataFrame
) -> _Headers:
    """How many items per declaration, which importer, and when it was lodged."""
    per_declaration = np.minimum(rng.geometric(0.6, size=int(n_items / 1.6) + 200), 6)
    n_decl = int(np.searchsorted(np.cumsum(per_declaration), n_items)) + 1
    per_declaration = per_declaration[:n_decl]
    per_declaration[-1] -= per_declaration.sum() - n_items
    importer = rng.choice(len(imp), size=n_decl, p=imp["_activity"].to_numpy())
    first_day = np.maximum(imp["_first_day"].to_numpy()[importer], 0)
    day = first_day + np.floor(rng.random(n_decl) * (n_days - first_day)).astype(np.int64)
    # Weekends are quiet: most weekend lodgements move to the next Monday (when still in range).
    weekday = (start.dayofweek + day) % 7
    move = (weekday >= 5) & (rng.random(n_decl) < 0.8)
    day = np.where(move & (day + (7 - weekday) < n_days), day + (7 - weekday), day)
    seconds = (rng.normal(13.0, 3.0, n_decl).clip(0, 23.99) * 3600).astype(np.int64)
    lodged = start + pd.to_timedelta(day, unit="D") + pd.to_timedelta(seconds, unit="s")
    ecommerce = imp["_ecommerce"].to_numpy()[importer]
    return _Headers(per_declaration, importer, day, pd.DatetimeIndex(lodged), ecommerce)


def _origins_and_modes(rng: np.random.Generator, headers: _Headers, imp: pd.DataFrame) -> None:
    """Mostly the importer's usual origin; the mode of transport follows the origin."""
    n_decl = headers.n
    origin_codes = np.array([o.country for o in ORIGINS])
    origin_w = np.array([o.weight for o in ORIGINS])
    usual_origin_idx = pd.Index(origin_codes).get_indexer(imp["_usual_origin"].to_numpy())[
        headers.importer
    ]
    headers.origin = np.where(
        rng.random(n_decl) < 0.8,
        usual_origin_idx,
        rng.choice(len(ORIGINS), n_decl, p=origin_w / origin_w.sum()),
    )
    mode_p = np.array([o.modes for o in ORIGINS])
    mode_idx = (rng.random(n_decl)[:, None] > np.cumsum(mode_p[headers.origin], axis=1)).sum(axis=1)
    mode_idx = np.minimum(mode_idx, 4)
    # E-commerce platforms ship by air or road.
    mode_idx = np.where(headers.ecommerce, np.where(rng.random(n_decl) < 0.6, 4, 3), mode_idx)
    headers.mode = _MODE_CODES[mode_idx]


def _offices(rng: np.random.Generator, mode: np.ndarray) -> np.ndarray:
    """An office of lodgement that clears the mode of transport (rail also at road offices)."""
    offices = pd.DataFrame(OFFICES, columns=["office", "country", "kind"])
    kind_of_mode = {1: "sea", 2: "rail", 3: "road", 4: "air", 5: "post"}
    office_members = {
        m: np.flatnonzero(offices["kind"].isin([k, "road"] if k == "rail" else [k]).to_numpy())
        for m, k in kind_of_mode.items()
    }
    office_weights = {m: np.full(len(v), 1.0 / len(v)) for m, v in office_members.items()}
    return offices["office"].to_numpy()[
        _pick_within_groups(rng, mode, office_members, office_weights)
    ]


def _sellers_and_dispatch(rng: np.random.Generator, headers: _Headers, ops: Operators) -> None:
    """Regular importers buy from a few fixed sellers per origin, platforms from many; some
    goods are transshipped through a hub (more often for risky importers and counterfeiters)."""
    n_decl = headers.n
    imp = ops.importers
    sellers = ops.sellers
    origin_codes = np.array([o.country for o in ORIGINS])
    seller_origin = pd.Index(origin_codes).get_indexer(sellers["country"].to_numpy())
    order = np.argsort(seller_origin, kind="stable")
    counts = np.bincount(seller_origin, minlength=len(ORIGINS))
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.where(
        headers.ecommerce,
        rng.integers(0, 1 << 30, n_decl),
        (headers.importer * 7919 + rng.integers(0, 3, n_decl)),
    )
    origin = headers.origin
    count_o = np.maximum(counts[origin], 1)
    headers.seller = order[np.minimum(offsets[origin] + slot % count_o, len(order) - 1)]
    headers.propensity = imp["_propensity"].to_numpy()[headers.importer]
    counterfeit_seller = sellers["_counterfeit"].to_numpy()[headers.seller]
    via_hub = rng.random(n_decl) < 0.03 + 0.15 * headers.propensity + 0.15 * counterfeit_seller
    hubs = np.array([*ops.risky_hubs, ops.late_hub, "SG", "AE", "TR"])
    dispatch = np.where(via_hub, hubs[rng.integers(len(hubs), size=n_decl)], origin_codes[origin])
    headers.dispatch = np.where(dispatch == origin_codes[origin], origin_codes[origin], dispatch)


@dataclass
class _Items:
    """Per item: its declaration's attributes repeated, and what is declared."""

    head: np.ndarray  # the item's declaration (row of the headers)
    item_number: np.ndarray
    importer: np.ndarray
    day: np.ndarray
    origin: np.ndarray
    ecommerce: np.ndarray
    propensity: np.ndarray
    seller: np.ndarray
    declarant_id: np.ndarray  # per declaration
    declarant_propensity: np.ndarray
    chapter: np.ndarray
    unusual: np.ndarray
    declared: np.ndarray  # the declared commodity (catalogue row)
    source: np.ndarray  # the higher-duty commodity a misclassification hides, or -1

    @property
    def n(self) -> int:
        return len(self.head)


def _items(
    rng: np.random.Generator,
    headers: _Headers,
    ops: Operators,
    catalogue: pd.DataFrame,
    n_items: int,
) -> _Items:
    """Items of each declaration: mostly the importer's usual chapters, then a commodity."""
    imp = ops.importers
    declarant_idx = imp["_declarant"].to_numpy()[headers.importer]
    self_declares = imp["_self_declares"].to_numpy()[headers.importer]
    declarant_id = np.where(
        self_declares,
        imp["operator_id"].to_numpy()[headers.importer],
        ops.declarants["operator_id"].to_numpy()[declarant_idx],
    )
    declarant_propensity = np.where(
        self_declares, 0.0, ops.declarants["_propensity"].to_numpy()[declarant_idx]
    )
    per_declaration = headers.per_declaration
    head = np.repeat(np.arange(headers.n), per_declaration)
    item_number = (
        np.arange(n_items)
        - np.repeat(np.cumsum(per_declaration) - per_declaration, per_declaration)
        + 1
    )
    i_importer = headers.importer[head]
    i_prop = headers.propensity[head]

    chapter_codes = np.array([c.code for c in CHAPTERS])
    chapter_w = np.array([c.weight for c in CHAPTERS])
    usual_slot = rng.integers(1, 3, n_items)
    usual_chapter = np.where(
        usual_slot == 1,
        imp["_usual_chapter_1"].to_numpy()[i_importer],
        imp["_usual_chapter_2"].to_numpy()[i_importer],
    )
    unusual = rng.random(n_items) < np.where(i_prop > 0.2, 0.25, 0.1)
    random_chapter = chapter_codes[
        rng.choice(len(chapter_codes), n_items, p=chapter_w / chapter_w.sum())
    ]
    chapter = np.where(unusual, random_chapter, usual_chapter)
    unusual &= chapter != usual_chapter
    by_chapter = {c: np.flatnonzero(catalogue["chapter"].to_numpy() == c) for c in chapter_codes}
    w_by_chapter = {
        c: catalogue["weight"].to_numpy()[ix] / catalogue["weight"].to_numpy()[ix].sum()
        for c, ix in by_chapter.items()
    }
    declared = _pick_within_groups(rng, chapter, by_chapter, w_by_chapter)
    return _Items(
        head=head,
        item_number=item_number,
        importer=i_importer,
        day=headers.day[head],
        origin=headers.origin[head],
        ecommerce=headers.ecommerce[head],
        propensity=i_prop,
        seller=headers.seller[head],
        declarant_id=declarant_id,
        declarant_propensity=declarant_propensity[head],
        chapter=chapter,
        unusual=unusual,
        declared=declared,
        source=_misclassification_sources(catalogue)[declared],
    )


def _misclassification_sources(cat: pd.DataFrame) -> np.ndarray:
    """Per commodity B: the highest-duty commodity whose twin is B (what declaring B hides)."""
    duty = cat["duty_rate"].to_numpy()
    twin = cat["twin"].to_numpy()
    source = np.full(len(cat), -1)
    for b in np.unique(twin[twin >= 0]):
        sources = np.flatnonzero(twin == b)
        source[b] = sources[np.argmax(duty[sources])]
    return source


@dataclass
class _Priors:
    """Prior probability of each irregularity per item (before the coin flips)."""

    undervaluation: np.ndarray
    misclassification: np.ndarray
    counterfeit: np.ndarray
    unsafe: np.ndarray
    prohibited: np.ndarray


def _priors(
    items: _Items,
    headers: _Headers,
    ops: Operators,
    cat: pd.DataFrame,
    n_days: int,
    displaced: np.ndarray | float = 0.0,
) -> _Priors:
    """``displaced``: how much rarer undervaluation has become (logit), per item."""
    imp = ops.importers
    sellers = ops.sellers
    duty = cat["duty_rate"].to_numpy()
    declared = items.declared
    has_src = items.source >= 0
    aeo = imp["aeo"].to_numpy()[items.importer]
    first_day = imp["_first_day"].to_numpy()[items.importer]
    new_operator = (items.day - first_day < 90) & (first_day >= 0)
    half_way = items.day >= n_days // 2
    in_drift = np.isin(items.chapter, DRIFT_CHAPTERS) & half_way
    logit_u = (
        -5.6
        + 5.0 * items.propensity
        + 1.2 * items.declarant_propensity
        + 8.0 * duty[declared]
        + 0.8 * new_operator
        - 1.0 * aeo
        + 0.8 * items.unusual
        + 0.6 * items.ecommerce
        + 1.6 * in_drift
        # Platforms shave the value of dearer goods to get under the 150 EUR duty threshold.
        + 1.2 * items.ecommerce * (cat["price_eur_per_kg"].to_numpy()[declared] > 30)
        - displaced
    )
    duty_gap = np.where(has_src, duty[np.maximum(items.source, 0)] - duty[declared], 0.0)
    pi_m = np.where(
        has_src,
        _sigmoid(-6.2 + 4.0 * items.propensity + 12.0 * duty_gap + 0.5 * items.unusual - 0.8 * aeo),
        0.0,
    )
    counterfeit_seller = sellers["_counterfeit"].to_numpy()[items.seller]
    ipr_prone = cat["ipr_prone"].to_numpy()[declared]
    is_air_post = np.isin(headers.mode[items.head], (4, 5))
    # Risk lives in combinations, as in the field: a counterfeiter sells fakes of brand goods
    # (seller × commodity), an unsafe supplier ships toys and electrics, a prohibited-goods
    # network moves precursors and weapons, not furniture.
    pi_c = _sigmoid(
        -6.5
        + 6.0 * counterfeit_seller * ipr_prone
        + 1.5 * ipr_prone * is_air_post
        + 0.8 * counterfeit_seller
        + 0.4 * items.ecommerce
        + 1.0 * items.propensity
    )
    unsafe_seller = sellers["_unsafe"].to_numpy()[items.seller]
    ps_prone = cat["product_safety_prone"].to_numpy()[declared]
    pi_s = _sigmoid(
        -6.1
        + 5.5 * ps_prone * unsafe_seller
        + 1.5 * ps_prone * items.ecommerce
        + 0.6 * unsafe_seller
    )
    prohibited_seller = sellers["_prohibited"].to_numpy()[items.seller]
    p_prone = cat["prohibitions_prone"].to_numpy()[declared]
    pi_p = _sigmoid(
        -7.4 + 6.0 * p_prone * prohibited_seller + 1.8 * p_prone + 1.0 * items.propensity
    )
    return _Priors(_sigmoid(logit_u), pi_m, pi_c, pi_s, pi_p)


@dataclass
class _Flips:
    """The irregularities themselves, and the goods really shipped."""

    undervalued: np.ndarray
    misclassified: np.ndarray
    counterfeit: np.ndarray
    unsafe: np.ndarray
    prohibited: np.ndarray
    goods: np.ndarray  # the true commodity (the hidden source when misclassified)


def _irregularities(rng: np.random.Generator, priors: _Priors, items: _Items) -> _Flips:
    n = items.n
    u = rng.random(n) < priors.undervaluation
    m = rng.random(n) < priors.misclassification
    c = rng.random(n) < priors.counterfeit
    s = rng.random(n) < priors.unsafe
    p = rng.random(n) < priors.prohibited
    return _Flips(u, m, c, s, p, np.where(m, items.source, items.declared))


@dataclass
class _Traces:
    """Quantities and values, with what undervaluation and counterfeits do to the unit value."""

    mass: np.ndarray
    gross: np.ndarray
    true_value: np.ndarray
    value: np.ndarray  # declared customs value
    log_unit_value: np.ndarray  # declared, log EUR/kg


def _values_and_traces(
    rng: np.random.Generator,
    items: _Items,
    flips: _Flips,
    cat: pd.DataFrame,
    prices: PriceModel,
) -> _Traces:
    n = items.n
    goods = flips.goods
    mass = np.where(
        items.ecommerce,
        rng.lognormal(np.log(0.8), 0.7, n),
        cat["item_mass_kg"].to_numpy()[goods] * rng.lognormal(0, 0.8, n),
    ).clip(0.01, None)
    mass = np.round(mass, 3).clip(0.001, None)
    gross = np.round(mass * rng.uniform(1.02, 1.25, n), 3)
    true_log_price = prices.mean(goods, items.origin, items.day) + prices.sigma[
        goods
    ] * rng.standard_normal(n)
    true_log_price += flips.counterfeit * rng.normal(COUNTERFEIT_SHIFT, COUNTERFEIT_SD, n)
    declared_log_price = true_log_price + flips.undervalued * rng.normal(
        UNDERVALUE_SHIFT, UNDERVALUE_SD, n
    )
    true_value = np.round(np.exp(true_log_price) * mass, 2).clip(0.01, None)
    value = np.round(np.exp(declared_log_price) * mass, 2).clip(0.01, None)
    return _Traces(mass, gross, true_value, value, np.log(value / mass))


@dataclass
class _Described:
    """The goods description and which commodity it names."""

    descriptions: np.ndarray
    source: np.ndarray  # catalogue row the description was taken from
    vague: np.ndarray


def _descriptions(
    rng: np.random.Generator,
    items: _Items,
    flips: _Flips,
    imp: pd.DataFrame,
    cat: pd.DataFrame,
) -> _Described:
    """Sloppy importers write vague descriptions; a misclassifier often keeps the true one."""
    n = items.n
    sloppiness = imp["_sloppiness"].to_numpy()[items.importer]
    vague = rng.random(n) < sloppiness
    keeps_true = rng.random(n) < MISCLASS_KEEPS_TRUE_DESCRIPTION
    sloppy = rng.random(n) < SLOPPY_MISMATCH
    other_commodity = rng.integers(0, len(cat), n)
    other_is_other_chapter = cat["chapter"].to_numpy()[other_commodity] != items.chapter
    m = flips.misclassified
    description_src = np.where(m & keeps_true, flips.goods, items.declared)
    description_src = np.where(
        ~m & sloppy & other_is_other_chapter, other_commodity, description_src
    )
    descriptions = cat["description"].to_numpy()[description_src].astype(object)
    descriptions = np.where(vague, _VAGUE[rng.integers(len(_VAGUE), size=n)], descriptions)
    return _Described(descriptions, description_src, vague)


@dataclass
class _Posterior:
    financial: np.ndarray
    ipr: np.ndarray


def _oracle_posterior(
    items: _Items,
    priors: _Priors,
    traces: _Traces,
    described: _Described,
    cat: pd.DataFrame,
    prices: PriceModel,
) -> _Posterior:
    """Exact posterior of (U, M, C) given the price and description traces and the priors."""
    has_src = items.source >= 0
    src = np.maximum(items.source, 0)
    desc_chapter = cat["chapter"].to_numpy()[described.source]
    src_chapter = np.where(has_src, cat["chapter"].to_numpy()[src], "")
    n_other = len(CHAPTERS) - 1
    # Likelihood of the description under M=0 / M=1 (vague descriptions carry no information).
    lik_desc_m0 = np.where(
        desc_chapter == items.chapter, 1 - SLOPPY_MISMATCH, SLOPPY_MISMATCH / n_other
    )
    lik_desc_m1 = np.where(
        desc_chapter == items.chapter,
        1 - MISCLASS_KEEPS_TRUE_DESCRIPTION,
        np.where(desc_chapter == src_chapter, MISCLASS_KEEPS_TRUE_DESCRIPTION, 0.0),
    )
    lik_desc_m0 = np.where(described.vague, 1.0, lik_desc_m0)
    lik_desc_m1 = np.where(described.vague, 1.0, lik_desc_m1)
    mean_b = prices.mean(items.declared, items.origin, items.day)
    mean_a = prices.mean(src, items.origin, items.day)
    sd_b = prices.sigma[items.declared]
    sd_a = prices.sigma[src]
    pi_u, pi_m, pi_c = priors.undervaluation, priors.misclassification, priors.counterfeit
    x = traces.log_unit_value
    log_joint = []
    for uu in (0, 1):
        for mm in (0, 1):
            for cc in (0, 1):
                mean = (mean_a if mm else mean_b) + uu * UNDERVALUE_SHIFT + cc * COUNTERFEIT_SHIFT
                var = (sd_a if mm else sd_b) ** 2 + uu * UNDERVALUE_SD**2 + cc * COUNTERFEIT_SD**2
                prior = (
                    (pi_u if uu else 1 - pi_u)
                    * (pi_m if mm else 1 - pi_m)
                    * (pi_c if cc else 1 - pi_c)
                )
                lik_desc = lik_desc_m1 if mm else lik_desc_m0
                with np.errstate(divide="ignore"):
                    log_joint.append(
                        np.log(prior) + np.log(lik_desc) + _normal_logpdf(x, mean, var)
                    )
    lj = np.vstack(log_joint)
    lj -= lj.max(axis=0)
    post = np.exp(lj)
    post /= post.sum(axis=0)
    # index = 4*u + 2*m + c
    p_not_financial = post[0] + post[1]
    return _Posterior(financial=1 - p_not_financial, ipr=post[1::2].sum(axis=0))


@dataclass
class _Revenue:
    declaration_type: np.ndarray
    declared_duty: np.ndarray
    financial: np.ndarray
    recoverable: np.ndarray


def _duties(v: np.ndarray, rate: np.ndarray, low_value: np.ndarray) -> np.ndarray:
    customs_duty = np.where(low_value, 0.0, v * rate)
    return customs_duty + VAT_RATE * (v + customs_duty)


def _duties_and_revenue(
    rng: np.random.Generator,
    items: _Items,
    flips: _Flips,
    traces: _Traces,
    cat: pd.DataFrame,
    scheme: ShiftedFraud,
) -> _Revenue:
    """Declaration type (H7 for low-value e-commerce), duties declared and the revenue lost."""
    value = traces.value
    decl_type = np.where(
        items.ecommerce & (value <= H7_THRESHOLD_EUR),
        "H7",
        np.where(rng.random(items.n) < 0.08, "I1", "H1"),
    )
    # A declaration's type is decided at header level: take the first item's.
    first_item_type = pd.Series(decl_type).groupby(items.head).transform("first").to_numpy()
    decl_type = np.where(
        first_item_type == "H7", np.where(value <= H7_THRESHOLD_EUR, "H7", "H1"), first_item_type
    )
    duty = cat["duty_rate"].to_numpy()
    declared_duty = np.round(_duties(value, duty[items.declared], decl_type == "H7"), 2)
    true_duty = _duties(traces.true_value, duty[flips.goods], traces.true_value <= H7_THRESHOLD_EUR)
    lost = np.where(
        flips.undervalued | flips.misclassified, np.maximum(true_duty - declared_duty, 0.0), 0.0
    )
    # An evaded anti-dumping duty is due with the import VAT on it.
    recoverable = (lost + scheme.evaded_eur * (1 + VAT_RATE)).round(2)
    financial = flips.undervalued | flips.misclassified | scheme.misdeclared
    return _Revenue(decl_type, declared_duty, financial, recoverable)


@dataclass
class _Attributes:
    hs_code: np.ndarray
    procedure: np.ndarray
    preference: np.ndarray
    incoterm: np.ndarray
    supplementary: np.ndarray
    container: np.ndarray
    seller_id: np.ndarray


def _other_attributes(
    rng: np.random.Generator,
    items: _Items,
    headers: _Headers,
    traces: _Traces,
    revenue: _Revenue,
    ops: Operators,
    cat: pd.DataFrame,
) -> _Attributes:
    """Commodity code (CN / TARIC), procedure, preference, Incoterm, units, container, seller."""
    n_items, n_decl, head = items.n, headers.n, items.head
    declared = items.declared
    hs6 = cat["hs6"].to_numpy()[declared].astype(str)
    cn_suffix = np.array(["00", "10", "90", "20"])[declared % 4]
    hs_code = np.char.add(hs6, cn_suffix)
    taric = rng.random(n_items) < 0.1
    hs_code = np.where(taric, np.char.add(hs_code, "00"), hs_code)
    procedure = np.array(["4000", "4200", "4071", "4051"])[
        rng.choice(4, n_items, p=[0.85, 0.08, 0.04, 0.03])
    ]
    preference = np.array(["100", "300", None], dtype=object)[
        rng.choice(3, n_items, p=[0.7, 0.2, 0.1])
    ]
    incoterms = np.array(["FOB", "CIF", "EXW", "DAP", "DDP", "FCA", "CFR", None], dtype=object)
    incoterm = incoterms[rng.integers(len(incoterms), size=n_decl)][head]
    counted = cat["counted"].to_numpy()[declared]
    pieces = np.maximum(1, np.round(traces.mass / rng.uniform(0.2, 2.0, n_items)))
    supplementary = np.where(counted, pieces, np.nan)
    mode = headers.mode
    container_p = np.select([mode == 1, mode == 2, mode == 3], [0.85, 0.5, 0.15], 0.0)
    container = (rng.random(n_decl) < container_p)[head]
    seller_present = rng.random(n_decl)[head] < np.where(
        revenue.declaration_type == "I1", 0.5, 0.95
    )
    seller_id = np.asarray(
        np.where(seller_present, ops.sellers["operator_id"].to_numpy()[items.seller], None),  # type: ignore[call-overload]
        dtype=object,
    )
    return _Attributes(
        hs_code, procedure, preference, incoterm, supplementary, container, seller_id
    )


def _item_frame(
    rng: np.random.Generator,
    items: _Items,
    headers: _Headers,
    traces: _Traces,
    described: _Described,
    revenue: _Revenue,
    attributes: _Attributes,
    ops: Operators,
    start: pd.Timestamp,
) -> pd.DataFrame:
    """The declaration items as traders file them (contract columns)."""
    head = items.head
    decl_numbers = rng.choice(10**9, size=headers.n, replace=False)
    year = (start + pd.to_timedelta(headers.day, unit="D")).year.astype(str).str[-2:].to_numpy()
    office_country = np.array([o[:2] for o in headers.office])
    declaration_id = np.char.add(
        np.char.add(year.astype(str), office_country.astype(str)),
        np.char.zfill(decl_numbers.astype(str), 14),
    )
    origin_codes = np.array([o.country for o in ORIGINS])
    frame = pd.DataFrame(
        {
            "declaration_id": declaration_id[head],
            "item_number": items.item_number.astype(np.int64),
            "lodged_at": headers.lodged[head],
            "declaration_type": revenue.declaration_type,
            "customs_office": headers.office[head],
            "declarant_id": items.declarant_id[head],
            "importer_id": ops.importers["operator_id"].to_numpy()[items.importer],
            "seller_id": attributes.seller_id,
            "hs_code": attributes.hs_code,
            "goods_description": described.descriptions,
            "origin_country": origin_codes[items.origin],
            "dispatch_country": headers.dispatch[head],
            "transport_mode": headers.mode[head].astype(np.int64),
            "procedure_code": attributes.procedure,
            "preference_code": attributes.preference,
            "net_mass_kg": traces.mass,
            "gross_mass_kg": np.maximum(traces.gross, traces.mass),
            "supplementary_units": attributes.supplementary,
            "customs_value_eur": traces.value,
            "duty_eur": revenue.declared_duty,
            "container": attributes.container,
            "incoterm": attributes.incoterm,
        }
    )
    frame["lodged_at"] = frame["lodged_at"].dt.tz_localize("UTC")
    return frame


def _truth_frame(
    frame: pd.DataFrame,
    priors: _Priors,
    posterior: _Posterior,
    irregular: dict[str, np.ndarray],
    flips: _Flips,
    traces: _Traces,
    revenue: _Revenue,
    cat: pd.DataFrame,
) -> pd.DataFrame:
    """Every item's true probabilities, irregularities and recoverable revenue (kept apart)."""
    return pd.DataFrame(
        {
            "subject_type": "declaration",
            "subject_id": frame["declaration_id"],
            "item_number": frame["item_number"],
            "event_at": frame["lodged_at"],
            "p_financial": posterior.financial,
            "p_ipr": posterior.ipr,
            "p_product_safety": priors.unsafe,
            "p_prohibitions_restrictions": priors.prohibited,
            "p_safety_security": 0.0,
            **{f"irregular_{area}": flags for area, flags in irregular.items()},
            "undervalued": flips.undervalued,
            "misclassified": flips.misclassified,
            "recoverable_revenue_eur": revenue.recoverable,
            "true_hs6": cat["hs6"].to_numpy()[flips.goods],
            "true_customs_value_eur": traces.true_value,
        }
    )
