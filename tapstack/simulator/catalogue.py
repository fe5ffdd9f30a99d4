"""The Garderobe catalogue: a fixed list of products shared by every simulated order.

The catalogue does not depend on the simulator's seed: the same product id always carries the
same name, SKU, category and price, as it would in the real shop. Prices are in EUR and include a
few premium pieces, so that some orders pass the "High Spender" (150) and "High Demand" (500)
enrichment thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES: tuple[str, ...] = (
    "T-shirts",
    "Shirts",
    "Jeans",
    "Dresses",
    "Knitwear",
    "Jackets",
    "Shoes",
    "Accessories",
)

# Short codes used in the SKUs.
_SKU_CODE = {
    "T-shirts": "TS",
    "Shirts": "SH",
    "Jeans": "JN",
    "Dresses": "DR",
    "Knitwear": "KN",
    "Jackets": "JK",
    "Shoes": "SO",
    "Accessories": "AC",
}

FIRST_PRODUCT_ID = 101


@dataclass(frozen=True)
class Product:
    product_id: int
    name: str
    sku: str
    category: str
    price: float
    popularity: float  # relative weight among products, before behaviour preferences

    @property
    def premium(self) -> bool:
        return self.price >= 150.0


# (category, name, price, popularity). Names are the shop's own; some carry accents on purpose,
# because the plugin writes UTF-8 unescaped and the pipeline must carry it.
_ROWS: tuple[tuple[str, str, float, float], ...] = (
    ("T-shirts", "Basic Cotton Tee White", 19.90, 9.0),
    ("T-shirts", "Basic Cotton Tee Black", 19.90, 8.0),
    ("T-shirts", "Striped Breton Tee", 24.90, 5.0),
    ("T-shirts", "Piqué Polo Navy", 34.90, 4.0),
    ("T-shirts", 'Organic Graphic Tee "Riviera"', 29.00, 4.5),
    ("Shirts", "Oxford Button-Down Shirt", 49.90, 4.0),
    ("Shirts", "Linen Camp-Collar Shirt", 59.00, 3.5),
    ("Shirts", "Chambray Work Shirt", 54.90, 2.5),
    ("Shirts", "Poplin Dress Shirt Slim", 44.90, 3.0),
    ("Shirts", "Flannel Check Overshirt", 69.00, 2.0),
    ("Jeans", "Slim Fit Stretch Jeans", 59.90, 5.0),
    ("Jeans", "Straight Selvedge Denim", 119.00, 2.0),
    ("Jeans", "High-Rise Mom Jeans", 64.90, 3.5),
    ("Jeans", "Wide-Leg Jeans Ecru", 69.90, 2.5),
    ("Jeans", "Relaxed Carpenter Jeans", 74.90, 1.5),
    ("Dresses", "Jersey Midi Dress", 49.90, 4.0),
    ("Dresses", "Crêpe Wrap Dress", 89.00, 3.0),
    ("Dresses", "Silk Slip Dress", 189.00, 1.2),
    ("Dresses", "Floral Summer Dress", 59.90, 3.5),
    ("Dresses", "Evening Sequin Gown", 329.00, 0.5),
    ("Knitwear", "Merino Crew-Neck Sweater", 79.00, 3.0),
    ("Knitwear", "Cashmere V-Neck Sweater", 229.00, 1.0),
    ("Knitwear", "Chunky Cable-Knit Cardigan", 99.00, 2.0),
    ("Knitwear", "Bouclé Cropped Cardigan", 89.90, 1.8),
    ("Knitwear", "Cotton Fine-Gauge Polo", 59.00, 2.2),
    ("Jackets", "Denim Trucker Jacket", 89.00, 2.5),
    ("Jackets", "Quilted Lightweight Jacket", 129.00, 2.0),
    ("Jackets", "Wool-Blend Overcoat", 349.00, 0.6),
    ("Jackets", "Leather Biker Jacket", 549.00, 0.3),
    ("Jackets", "Technical Rain Parka", 199.00, 1.0),
    ("Shoes", "Canvas Low-Top Sneakers", 59.00, 4.0),
    ("Shoes", "Leather Court Sneakers", 129.00, 2.5),
    ("Shoes", "Suede Chelsea Boots", 179.00, 1.5),
    ("Shoes", "Handmade Oxford Shoes", 289.00, 0.6),
    ("Shoes", "Espadrilles Natural", 39.90, 3.0),
    ("Accessories", "Cotton Socks 3-Pack", 12.90, 7.0),
    ("Accessories", "Wool Beanie", 24.90, 4.0),
    ("Accessories", "Leather Belt", 49.00, 3.0),
    ("Accessories", 'Silk Scarf "Portofino"', 79.00, 1.5),
    ("Accessories", "Full-Grain Leather Weekender Bag", 459.00, 0.3),
)


def _build() -> tuple[Product, ...]:
    products = []
    per_category: dict[str, int] = {}
    for offset, (category, name, price, popularity) in enumerate(_ROWS):
        per_category[category] = per_category.get(category, 0) + 1
        sku = f"GAR-{_SKU_CODE[category]}-{per_category[category]:03d}"
        products.append(
            Product(
                product_id=FIRST_PRODUCT_ID + offset,
                name=name,
                sku=sku,
                category=category,
                price=float(price),
                popularity=popularity,
            )
        )
    return tuple(products)


CATALOGUE: tuple[Product, ...] = _build()


def by_id(product_id: int) -> Product:
    """The product with this id; KeyError if the shop does not sell it."""
    index = product_id - FIRST_PRODUCT_ID
    if 0 <= index < len(CATALOGUE):
        return CATALOGUE[index]
    raise KeyError(product_id)
