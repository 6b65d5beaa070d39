"""Entity keys from national data: opaque ids and full national codes stay text, as declared."""

from __future__ import annotations

import numpy as np

from features.keys import MISSING_KEY, declaration_keys


def test_opaque_ids_and_national_codes_are_keys_as_declared() -> None:
    records = {
        "importer_id": np.array(["0012", "7300412", None], dtype=object),
        "declarant_id": np.array(["A-1", "A-1", "A-2"], dtype=object),
        "seller_id": np.array([None, "S 9", "S 9"], dtype=object),
        "hs_code": np.array(["0101210010", "61091000", "610910"], dtype=object),
        "origin_country": np.array(["CN", "TR", "CN"], dtype=object),
        "dispatch_country": np.array(["CN", "TR", "CN"], dtype=object),
        "transport_mode": np.array([4, 3, 1]),
    }
    keys = declaration_keys(records)
    assert keys["importer_id"].tolist() == ["0012", "7300412", MISSING_KEY]
    assert keys["national_commodity_id"].tolist() == ["0101210010", "61091000", "610910"]
    assert keys["commodity_id"].tolist() == ["010121", "610910", "610910"]
    assert keys["importer_origin_id"].tolist() == ["0012|CN", "7300412|TR", MISSING_KEY]
    assert keys["seller_id"].tolist() == [MISSING_KEY, "S 9", "S 9"]
