"""Third-country seller control history: counterfeit-prone and unsafe suppliers show here."""

from features.entities import seller
from features.views import snapshot_view

seller_hit_rate_365d = snapshot_view(
    "seller_hit_rate_365d",
    seller,
    {
        "seller_declarations_365d": "Items from the seller in the past year.",
        "seller_controls_365d": "Controlled items with an outcome known before the event day.",
        "seller_irregularities_365d": "Of those, items found irregular.",
        "seller_hit_rate_365d": "Smoothed hit rate of the seller's controlled items.",
        "seller_ipr_hit_rate_365d": "Smoothed rate of IPR (counterfeit) findings.",
        "seller_product_safety_hit_rate_365d": "Smoothed rate of product-safety findings.",
    },
    "Control outcomes of items bought from a seller.",
    pii=True,
)
