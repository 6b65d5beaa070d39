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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_contracts.reference import VAGUE_DESCRIPTIONS
from world.catalogue import CHAPTERS, OFFICES, ORIGINS
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
) -> DeclarationDraw:
    """Draw ``n_items`` declaration items over ``n_days`` days from ``start``."""
    imp = ops.importers
    # 1. Declarations (headers) ---------------------------------------------------------------
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
    origin_codes = np.array([o.country for o in ORIGINS])
    origin_w = np.array([o.weight for o in ORIGINS])
    usual_origin_idx = pd.Index(origin_codes).get_indexer(imp["_usual_origin"].to_numpy())[importer]
    origin = np.where(
        rng.random(n_decl) < 0.8,
        usual_origin_idx,
        rng.choice(len(ORIGINS), n_decl, p=origin_w / origin_w.sum()),
    )
    mode_p = np.array([o.modes for o in ORIGINS])
    mode_idx = (rng.random(n_decl)[:, None] > np.cumsum(mode_p[origin], axis=1)).sum(axis=1)
    mode_idx = np.minimum(mode_idx, 4)
    mode_idx = np.where(ecommerce, np.where(rng.random(n_decl) < 0.6, 4, 3), mode_idx)
    mode = _MODE_CODES[mode_idx]

    offices = pd.DataFrame(OFFICES, columns=["office", "country", "kind"])
    kind_of_mode = {1: "sea", 2: "rail", 3: "road", 4: "air", 5: "post"}
    office_members = {
        m: np.flatnonzero(offices["kind"].isin([k, "road"] if k == "rail" else [k]).to_numpy())
        for m, k in kind_of_mode.items()
    }
    office_weights = {m: np.full(len(v), 1.0 / len(v)) for m, v in office_members.items()}
    office = offices["office"].to_numpy()[
        _pick_within_groups(rng, mode, office_members, office_weights)
    ]

    # Sellers: regular importers buy from a few fixed sellers per origin, platforms from many.
    sellers = ops.sellers
    seller_origin = pd.Index(origin_codes).get_indexer(sellers["country"].to_numpy())
    order = np.argsort(seller_origin, kind="stable")
    counts = np.bincount(seller_origin, minlength=len(ORIGINS))
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.where(
        ecommerce, rng.integers(0, 1 << 30, n_decl), (importer * 7919 + rng.integers(0, 3, n_decl))
    )
    count_o = np.maximum(counts[origin], 1)
    seller = order[np.minimum(offsets[origin] + slot % count_o, len(order) - 1)]
    # Transshipment through a hub: more common for risky importers and counterfeit sellers.
    propensity = imp["_propensity"].to_numpy()[importer]
    counterfeit_seller = sellers["_counterfeit"].to_numpy()[seller]
    via_hub = rng.random(n_decl) < 0.03 + 0.15 * propensity + 0.15 * counterfeit_seller
    hubs = np.array([*ops.risky_hubs, ops.late_hub, "SG", "AE", "TR"])
    dispatch = np.where(via_hub, hubs[rng.integers(len(hubs), size=n_decl)], origin_codes[origin])
    dispatch = np.where(dispatch == origin_codes[origin], origin_codes[origin], dispatch)

    declarant_idx = imp["_declarant"].to_numpy()[importer]
    self_declares = imp["_self_declares"].to_numpy()[importer]
    declarant_id = np.where(
        self_declares,
        imp["operator_id"].to_numpy()[importer],
        ops.declarants["operator_id"].to_numpy()[declarant_idx],
    )
    declarant_propensity = np.where(
        self_declares, 0.0, ops.declarants["_propensity"].to_numpy()[declarant_idx]
    )

    # 2. Items ------------------------------------------------------------------------------------
    head = np.repeat(np.arange(n_decl), per_declaration)
    item_number = (
        np.arange(n_items)
        - np.repeat(np.cumsum(per_declaration) - per_declaration, per_declaration)
        + 1
    )
    i_importer = importer[head]
    i_day = day[head]
    i_origin = origin[head]
    i_ecom = ecommerce[head]
    i_prop = propensity[head]
    i_seller = seller[head]

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

    cat = catalogue
    duty = cat["duty_rate"].to_numpy()
    twin = cat["twin"].to_numpy()
    # The misclassification source of B: the highest-duty commodity whose twin is B.
    source = np.full(len(cat), -1)
    for b in np.unique(twin[twin >= 0]):
        sources = np.flatnonzero(twin == b)
        source[b] = sources[np.argmax(duty[sources])]
    src = source[declared]
    has_src = src >= 0

    # 3. Priors -----------------------------------------------------------------------------------
    aeo = imp["aeo"].to_numpy()[i_importer]
    new_operator = (i_day - imp["_first_day"].to_numpy()[i_importer] < 90) & (
        imp["_first_day"].to_numpy()[i_importer] >= 0
    )
    half_way = i_day >= n_days // 2
    in_drift = np.isin(chapter, DRIFT_CHAPTERS) & half_way
    dp = declarant_propensity[head]
    logit_u = (
        -5.6
        + 5.0 * i_prop
        + 1.2 * dp
        + 8.0 * duty[declared]
        + 0.8 * new_operator
        - 1.0 * aeo
        + 0.8 * unusual
        + 0.6 * i_ecom
        + 1.6 * in_drift
        # Platforms shave the value of dearer goods to get under the 150 EUR duty threshold.
        + 1.2 * i_ecom * (cat["price_eur_per_kg"].to_numpy()[declared] > 30)
    )
    pi_u = _sigmoid(logit_u)
    duty_gap = np.where(has_src, duty[np.maximum(src, 0)] - duty[declared], 0.0)
    pi_m = np.where(
        has_src, _sigmoid(-6.2 + 4.0 * i_prop + 12.0 * duty_gap + 0.5 * unusual - 0.8 * aeo), 0.0
    )
    ipr_prone = cat["ipr_prone"].to_numpy()[declared]
    is_air_post = np.isin(mode[head], (4, 5))
    # Risk lives in combinations, as in the field: a counterfeiter sells fakes of brand goods
    # (seller × commodity), an unsafe supplier ships toys and electrics, a prohibited-goods
    # network moves precursors and weapons, not furniture.
    pi_c = _sigmoid(
        -6.5
        + 6.0 * counterfeit_seller[head] * ipr_prone
        + 1.5 * ipr_prone * is_air_post
        + 0.8 * counterfeit_seller[head]
        + 0.4 * i_ecom
        + 1.0 * i_prop
    )
    unsafe_seller = sellers["_unsafe"].to_numpy()[i_seller]
    ps_prone = cat["product_safety_prone"].to_numpy()[declared]
    pi_s = _sigmoid(
        -6.1 + 5.5 * ps_prone * unsafe_seller + 1.5 * ps_prone * i_ecom + 0.6 * unsafe_seller
    )
    prohibited_seller = sellers["_prohibited"].to_numpy()[i_seller]
    p_prone = cat["prohibitions_prone"].to_numpy()[declared]
    pi_p = _sigmoid(-7.4 + 6.0 * p_prone * prohibited_seller + 1.8 * p_prone + 1.0 * i_prop)

    # 4. Irregularities ---------------------------------------------------------------------------
    u = rng.random(n_items) < pi_u
    m = rng.random(n_items) < pi_m
    c = rng.random(n_items) < pi_c
    s = rng.random(n_items) < pi_s
    p = rng.random(n_items) < pi_p
    goods = np.where(m, src, declared)

    # 5. Quantities, values and traces ------------------------------------------------------------
    mass = np.where(
        i_ecom,
        rng.lognormal(np.log(0.8), 0.7, n_items),
        cat["item_mass_kg"].to_numpy()[goods] * rng.lognormal(0, 0.8, n_items),
    ).clip(0.01, None)
    mass = np.round(mass, 3).clip(0.001, None)
    gross = np.round(mass * rng.uniform(1.02, 1.25, n_items), 3)
    true_log_price = prices.mean(goods, i_origin, i_day) + prices.sigma[
        goods
    ] * rng.standard_normal(n_items)
    true_log_price += c * rng.normal(COUNTERFEIT_SHIFT, COUNTERFEIT_SD, n_items)
    declared_log_price = true_log_price + u * rng.normal(UNDERVALUE_SHIFT, UNDERVALUE_SD, n_items)
    true_value = np.round(np.exp(true_log_price) * mass, 2).clip(0.01, None)
    value = np.round(np.exp(declared_log_price) * mass, 2).clip(0.01, None)
    x = np.log(value / mass)

    sloppiness = imp["_sloppiness"].to_numpy()[i_importer]
    vague = rng.random(n_items) < sloppiness
    keeps_true = rng.random(n_items) < MISCLASS_KEEPS_TRUE_DESCRIPTION
    sloppy = rng.random(n_items) < SLOPPY_MISMATCH
    other_commodity = rng.integers(0, len(cat), n_items)
    other_is_other_chapter = cat["chapter"].to_numpy()[other_commodity] != chapter
    description_src = np.where(m & keeps_true, goods, declared)
    description_src = np.where(
        ~m & sloppy & other_is_other_chapter, other_commodity, description_src
    )
    descriptions = cat["description"].to_numpy()[description_src].astype(object)
    descriptions = np.where(vague, _VAGUE[rng.integers(len(_VAGUE), size=n_items)], descriptions)

    # 6. Oracle posterior over (U, M, C) given price and description traces ---------------------
    desc_chapter = cat["chapter"].to_numpy()[description_src]
    src_chapter = np.where(has_src, cat["chapter"].to_numpy()[np.maximum(src, 0)], "")
    n_other = len(CHAPTERS) - 1
    # Likelihood of the description under M=0 / M=1 (vague descriptions carry no information).
    lik_desc_m0 = np.where(desc_chapter == chapter, 1 - SLOPPY_MISMATCH, SLOPPY_MISMATCH / n_other)
    lik_desc_m1 = np.where(
        desc_chapter == chapter,
        1 - MISCLASS_KEEPS_TRUE_DESCRIPTION,
        np.where(desc_chapter == src_chapter, MISCLASS_KEEPS_TRUE_DESCRIPTION, 0.0),
    )
    lik_desc_m0 = np.where(vague, 1.0, lik_desc_m0)
    lik_desc_m1 = np.where(vague, 1.0, lik_desc_m1)
    mean_b = prices.mean(declared, i_origin, i_day)
    mean_a = prices.mean(np.maximum(src, 0), i_origin, i_day)
    sd_b = prices.sigma[declared]
    sd_a = prices.sigma[np.maximum(src, 0)]
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
    p_financial = 1 - p_not_financial
    p_ipr = post[1::2].sum(axis=0)

    # 7. Duties and revenue -----------------------------------------------------------------------
    decl_type = np.where(
        i_ecom & (value <= H7_THRESHOLD_EUR), "H7", np.where(rng.random(n_items) < 0.08, "I1", "H1")
    )
    # A declaration's type is decided at header level: take the first item's.
    first_item_type = pd.Series(decl_type).groupby(head).transform("first").to_numpy()
    decl_type = np.where(
        first_item_type == "H7", np.where(value <= H7_THRESHOLD_EUR, "H7", "H1"), first_item_type
    )

    def duties(v: np.ndarray, rate: np.ndarray, low_value: np.ndarray) -> np.ndarray:
        customs_duty = np.where(low_value, 0.0, v * rate)
        return customs_duty + VAT_RATE * (v + customs_duty)

    declared_duty = np.round(duties(value, duty[declared], decl_type == "H7"), 2)
    true_duty = duties(true_value, duty[goods], true_value <= H7_THRESHOLD_EUR)
    financial = u | m
    recoverable = np.where(financial, np.maximum(true_duty - declared_duty, 0.0), 0.0).round(2)

    # 8. The remaining declared attributes --------------------------------------------------------
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
    pieces = np.maximum(1, np.round(mass / rng.uniform(0.2, 2.0, n_items)))
    supplementary = np.where(counted, pieces, np.nan)
    container_p = np.select([mode == 1, mode == 2, mode == 3], [0.85, 0.5, 0.15], 0.0)
    container = (rng.random(n_decl) < container_p)[head]
    seller_present = rng.random(n_decl)[head] < np.where(decl_type == "I1", 0.5, 0.95)
    seller_id = np.where(seller_present, sellers["operator_id"].to_numpy()[i_seller], None)

    decl_numbers = rng.choice(10**9, size=n_decl, replace=False)
    year = (start + pd.to_timedelta(day, unit="D")).year.astype(str).str[-2:].to_numpy()
    office_country = np.array([o[:2] for o in office])
    declaration_id = np.char.add(
        np.char.add(year.astype(str), office_country.astype(str)),
        np.char.zfill(decl_numbers.astype(str), 14),
    )

    items = pd.DataFrame(
        {
            "declaration_id": declaration_id[head],
            "item_number": item_number.astype(np.int64),
            "lodged_at": lodged[head],
            "declaration_type": decl_type,
            "customs_office": office[head],
            "declarant_id": declarant_id[head],
            "importer_id": imp["operator_id"].to_numpy()[i_importer],
            "seller_id": seller_id,
            "hs_code": hs_code,
            "goods_description": descriptions,
            "origin_country": origin_codes[i_origin],
            "dispatch_country": dispatch[head],
            "transport_mode": mode[head].astype(np.int64),
            "procedure_code": procedure,
            "preference_code": preference,
            "net_mass_kg": mass,
            "gross_mass_kg": np.maximum(gross, mass),
            "supplementary_units": supplementary,
            "customs_value_eur": value,
            "duty_eur": declared_duty,
            "container": container,
            "incoterm": incoterm,
        }
    )
    items["lodged_at"] = items["lodged_at"].dt.tz_localize("UTC")
    irregular = {
        "financial": financial,
        "ipr": c,
        "product_safety": s,
        "prohibitions_restrictions": p,
        "safety_security": np.zeros(n_items, dtype=bool),
    }
    truth = pd.DataFrame(
        {
            "subject_type": "declaration",
            "subject_id": items["declaration_id"],
            "item_number": items["item_number"],
            "event_at": items["lodged_at"],
            "p_financial": p_financial,
            "p_ipr": p_ipr,
            "p_product_safety": pi_s,
            "p_prohibitions_restrictions": pi_p,
            "p_safety_security": 0.0,
            **{f"irregular_{area}": flags for area, flags in irregular.items()},
            "undervalued": u,
            "misclassified": m,
            "recoverable_revenue_eur": recoverable,
            "true_hs6": cat["hs6"].to_numpy()[goods],
            "true_customs_value_eur": true_value,
        }
    )
    return DeclarationDraw(
        items=items, truth=truth, day=i_day, irregular=irregular, recoverable_eur=recoverable
    )
