"""Shopper bot: browses a running WooCommerce shop and places real orders through the Store API.

The bot is how the compose stack gets orders written by the TAP plugin itself (not by the
simulator): each shopper is a fresh ``requests.Session`` (its own cookie jar, since no browser
is there to keep cookies) that

1. views a few front-end pages (home, the shop archive, product pages), pausing between them, so
   the plugin's visit cookies (``visit_start_time``, ``tap_pages_viewed``) measure a visit;
2. reads the cart (``GET /wc/store/v1/cart``) for the ``Nonce`` and ``Cart-Token`` headers;
3. adds products (``POST /wc/store/v1/cart/add-item`` with ``{"id", "quantity"}``);
4. checks out (``POST /wc/store/v1/checkout`` with billing and shipping addresses and an offline
   gateway: ``cod`` moves the order to processing, ``bacs`` to on-hold - both are logged);
5. opens the thank-you page, and reloads it once (the plugin must not log the order again).

Two personas shape the visit: *impulsive* (a few pages, about a minute and a half) and
*reasoned* (many pages, about twenty minutes). Waits are divided by ``speed`` so a demo can run
a twenty-minute visit in seconds; the plugin then measures the compressed duration.

Request and response shapes follow the WooCommerce Store API documentation:

- Store API overview (base ``/wp-json/wc/store/v1``, cookie-based customer sessions):
  https://developer.woocommerce.com/docs/apis/store-api/
- Nonce tokens (request header ``Nonce``, required for POST ``/cart/*`` and all ``/checkout``
  requests; each response carries an updated ``Nonce`` header to use next; older WooCommerce
  Blocks releases named it ``X-WC-Store-API-Nonce``):
  https://developer.woocommerce.com/docs/apis/store-api/nonce-tokens
- Cart tokens (``GET /cart`` returns a ``Cart-Token`` response header; sent back as a request
  header it identifies the cart on ``/cart`` and ``/checkout`` routes):
  https://developer.woocommerce.com/docs/apis/store-api/cart-tokens
- Cart (``POST /cart/add-item`` with ``id`` and ``quantity``):
  https://developer.woocommerce.com/docs/apis/store-api/resources-endpoints/cart
- Checkout (``POST /checkout`` with ``billing_address``, ``shipping_address``,
  ``customer_note``, ``payment_method``, ``payment_data``; the response has ``order_id``,
  ``status``, ``order_key`` and ``payment_result`` with ``payment_status`` and
  ``redirect_url``):
  https://developer.woocommerce.com/docs/apis/store-api/resources-endpoints/checkout
- Products (``GET /products`` with ``type``, ``per_page``, ``page``; items carry ``id``,
  ``name``, ``permalink``, ``type``, ``is_purchasable``, ``is_in_stock``):
  https://github.com/woocommerce/woocommerce-blocks/blob/trunk/src/StoreApi/docs/products.md
- Offline gateways: WooCommerce's ``WC_Gateway_COD::process_payment`` sets processing (on-hold
  for downloadable items), ``WC_Gateway_BACS`` sets on-hold.

The REST API (``/wc/v3/orders``) would not do: it does not run the checkout hooks.
"""

from __future__ import annotations

import math
import random
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from faker import Faker
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from tapstack.contracts import port

STORE_API = "/wp-json/wc/store/v1"
NONCE_HEADERS = ("Nonce", "X-WC-Store-API-Nonce")
CART_TOKEN_HEADER = "Cart-Token"
PAYMENT_METHODS = ("cod", "bacs")
USER_AGENT = "TAP-shopper-bot/1.0 (demo traffic)"
# The shop archive works whatever the permalink structure.
SHOP_PAGE = "/?post_type=product"
# (city, WooCommerce state code, postcode) for Italian addresses; the demo shop is in Rome.
ITALIAN_CITIES = (
    ("Roma", "RM", "00184"),
    ("Milano", "MI", "20121"),
    ("Torino", "TO", "10121"),
    ("Napoli", "NA", "80133"),
    ("Firenze", "FI", "50123"),
    ("Bologna", "BO", "40121"),
)


def default_base_url() -> str:
    """The shop published by compose: http://localhost:<ports.wordpress>."""
    return f"http://localhost:{port('wordpress')}"


class ShopError(RuntimeError):
    """The shop answered, but not with what the Store API documents."""


class _Unavailable(ShopError):
    """502/503/504 on a read: the shop is starting or overloaded; worth a retry."""


@dataclass(frozen=True)
class Persona:
    """How a kind of shopper browses (durations in seconds at speed 1)."""

    name: str
    duration_median: float
    duration_sigma: float
    duration_bounds: tuple[float, float]
    pages_median: float
    pages_sigma: float
    pages_bounds: tuple[int, int]
    lines: tuple[int, int]
    quantity: tuple[int, int]


IMPULSIVE = Persona(
    name="impulsive",
    duration_median=105.0,
    duration_sigma=0.45,
    duration_bounds=(20.0, 600.0),
    pages_median=4.0,
    pages_sigma=0.35,
    pages_bounds=(1, 10),
    lines=(1, 2),
    quantity=(1, 2),
)
REASONED = Persona(
    name="reasoned",
    duration_median=1260.0,
    duration_sigma=0.35,
    duration_bounds=(420.0, 3600.0),
    pages_median=17.0,
    pages_sigma=0.4,
    pages_bounds=(6, 60),
    lines=(1, 4),
    quantity=(1, 3),
)
PERSONAS = {persona.name: persona for persona in (IMPULSIVE, REASONED)}


@dataclass(frozen=True)
class VisitPlan:
    """Everything one shopper will do, decided up front from the seed."""

    persona: Persona
    pages: tuple[str, ...]  # URLs, first one is the landing page
    waits: tuple[float, ...]  # seconds to wait after each page (already divided by speed)
    cart: tuple[tuple[int, int], ...]  # (product id, quantity)
    billing: dict[str, str]
    payment_method: str

    @property
    def seconds(self) -> float:
        return sum(self.waits)


@dataclass(frozen=True)
class PlacedOrder:
    order_id: int
    status: str
    persona: str
    pages: int
    lines: int
    payment_method: str
    seconds: float


@dataclass
class BotReport:
    placed: list[PlacedOrder] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


# --- pure helpers -------------------------------------------------------------------------------


def lognormal_int(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return max(low, min(high, round(rng.lognormvariate(math.log(median), sigma))))


def split_duration(rng: random.Random, total: float, parts: int) -> list[float]:
    """Splits a duration into ``parts`` positive waits that add up to it (uneven, like reading)."""
    if parts < 1:
        raise ValueError("parts must be at least 1")
    weights = [rng.expovariate(1.0) + 0.2 for _ in range(parts)]
    scale = total / sum(weights)
    return [w * scale for w in weights]


def scaled(seconds: float, speed: float) -> float:
    """A wait at the given speed; speed 0 (or less) means no waiting at all."""
    return 0.0 if speed <= 0 else seconds / speed


def purchasable(products: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Simple products that can be bought now (variable ones would need a variation id)."""
    return [
        p
        for p in products
        if p.get("type", "simple") == "simple"
        and p.get("is_purchasable", True)
        and p.get("is_in_stock", True)
        and isinstance(p.get("id"), int)
    ]


def read_nonce(headers: Any) -> str | None:
    for name in NONCE_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in plain.lower() if ch.isalnum()) or "cliente"


def fake_billing(fake: Faker, rng: random.Random) -> dict[str, str]:
    """An Italian billing address in the Store API's shape (e-mail included)."""
    first, last = fake.first_name(), fake.last_name()
    city, state, postcode = rng.choice(ITALIAN_CITIES)
    return {
        "first_name": first,
        "last_name": last,
        "company": "",
        "address_1": fake.street_address(),
        "address_2": "",
        "city": city,
        "state": state,
        "postcode": postcode,
        "country": "IT",
        "email": f"{_ascii(first)}.{_ascii(last)}{rng.randrange(10, 99)}@example.com",
        "phone": f"+39 3{rng.randrange(10, 99)} {rng.randrange(1000000, 9999999)}",
    }


def shipping_from(billing: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in billing.items() if key != "email"}


def plan_visit(
    rng: random.Random,
    fake: Faker,
    persona: Persona,
    catalogue: list[dict[str, Any]],
    base_url: str,
    speed: float,
    payment_method: str,
) -> VisitPlan:
    """Decides one shopper's pages, waits, cart and address."""
    if not catalogue:
        raise ShopError("the shop has no purchasable simple product")
    duration = min(
        max(
            rng.lognormvariate(math.log(persona.duration_median), persona.duration_sigma),
            persona.duration_bounds[0],
        ),
        persona.duration_bounds[1],
    )
    n_pages = lognormal_int(rng, persona.pages_median, persona.pages_sigma, *persona.pages_bounds)
    n_lines = min(rng.randint(*persona.lines), len(catalogue))
    chosen = rng.sample(catalogue, n_lines)

    base = base_url.rstrip("/") + "/"
    pages = [base]
    if n_pages >= 2:
        pages.append(urljoin(base, SHOP_PAGE.lstrip("/")))
    # The products bought are among those looked at; the rest is browsing.
    seen = [p.get("permalink") or urljoin(base, f"?p={p['id']}") for p in chosen]
    while len(pages) < n_pages:
        if seen:
            pages.append(seen.pop(0))
        else:
            product = rng.choice(catalogue)
            pages.append(product.get("permalink") or urljoin(base, f"?p={product['id']}"))

    waits = [scaled(w, speed) for w in split_duration(rng, duration, len(pages))]
    cart = tuple((int(p["id"]), rng.randint(*persona.quantity)) for p in chosen)
    return VisitPlan(
        persona=persona,
        pages=tuple(pages),
        waits=tuple(waits),
        cart=cart,
        billing=fake_billing(fake, rng),
        payment_method=payment_method,
    )


# --- one shopper's HTTP conversation -------------------------------------------------------------


class StoreClient:
    """One shopper: a cookie jar, the latest Nonce and Cart-Token, and retried requests."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session | None = None,
        timeout: float = 20.0,
        attempts: int = 5,
        retry_wait: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self.timeout = timeout
        self.attempts = attempts
        self.retry_wait = retry_wait
        self.nonce: str | None = None
        self.cart_token: str | None = None

    def url(self, path_or_url: str) -> str:
        """An absolute URL on the shop. Links the shop publishes (permalinks, the thank-you
        redirect) carry its configured home URL, which the bot may not reach (a container
        talks to http://wordpress, the site says http://localhost:8000): they are rebased onto
        ``base_url``, keeping path and query."""
        parts = urlsplit(path_or_url)
        if parts.scheme and parts.netloc:
            base = urlsplit(self.base_url)
            if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
                return path_or_url
            return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
        return self.base_url + "/" + path_or_url.lstrip("/")

    def _retrying(self, safe: bool) -> Retrying:
        # Reads also retry on timeouts and 502/503/504; writes only when the connection failed
        # (a checkout that timed out may have gone through: better to report than to re-send).
        errors: tuple[type[BaseException], ...] = (requests.ConnectionError,)
        if safe:
            errors += (requests.Timeout, _Unavailable)
        return Retrying(
            retry=retry_if_exception_type(errors),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.retry_wait, max=10 * max(self.retry_wait, 0.1)),
            reraise=True,
        )

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        safe = method.upper() in ("GET", "HEAD")
        url = self.url(path_or_url)
        for attempt in self._retrying(safe):
            with attempt:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
                if safe and response.status_code in (502, 503, 504):
                    raise _Unavailable(f"{method} {url}: HTTP {response.status_code}")
        self._remember_tokens(response)
        return response

    def _remember_tokens(self, response: requests.Response) -> None:
        nonce = read_nonce(response.headers)
        if nonce:
            self.nonce = nonce
        token = response.headers.get(CART_TOKEN_HEADER)
        if token:
            self.cart_token = token

    def _store_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.nonce:
            headers["Nonce"] = self.nonce
        if self.cart_token:
            headers[CART_TOKEN_HEADER] = self.cart_token
        return headers

    def _json(self, response: requests.Response, what: str) -> Any:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400 or payload is None:
            detail = payload.get("message") if isinstance(payload, dict) else response.text[:200]
            code = payload.get("code") if isinstance(payload, dict) else ""
            raise ShopError(f"{what}: HTTP {response.status_code} {code} {detail}".strip())
        return payload

    # Pages -------------------------------------------------------------------------------------

    def view(self, url: str) -> None:
        response = self.request("GET", url, headers={"Accept": "text/html"})
        if response.status_code >= 400:
            raise ShopError(f"GET {url}: HTTP {response.status_code}")

    # Store API ---------------------------------------------------------------------------------

    def products(self, per_page: int = 100, max_pages: int = 10) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(1, max_pages + 1):
            response = self.request(
                "GET",
                f"{STORE_API}/products",
                params={"type": "simple", "per_page": per_page, "page": page},
                headers={"Accept": "application/json"},
            )
            batch = self._json(response, "GET products")
            if not isinstance(batch, list):
                raise ShopError("GET products: expected a list")
            found.extend(batch)
            if len(batch) < per_page:
                break
        return found

    def cart(self) -> dict[str, Any]:
        response = self.request("GET", f"{STORE_API}/cart", headers=self._store_headers())
        cart = self._json(response, "GET cart")
        if not self.nonce and not self.cart_token:
            raise ShopError("GET cart: neither a Nonce nor a Cart-Token header came back")
        return cart

    def add_item(self, product_id: int, quantity: int) -> dict[str, Any]:
        response = self.request(
            "POST",
            f"{STORE_API}/cart/add-item",
            json={"id": int(product_id), "quantity": int(quantity)},
            headers=self._store_headers(),
        )
        return self._json(response, f"add product {product_id} to the cart")

    def checkout(
        self, billing: dict[str, str], shipping: dict[str, str], payment_method: str
    ) -> dict[str, Any]:
        body = {
            "billing_address": billing,
            "shipping_address": shipping,
            "customer_note": "",
            "payment_method": payment_method,
            "payment_data": [],
        }
        response = self.request(
            "POST", f"{STORE_API}/checkout", json=body, headers=self._store_headers()
        )
        result = self._json(response, "checkout")
        payment = result.get("payment_result") or {}
        if not isinstance(result.get("order_id"), int) or payment.get("payment_status") not in (
            "success",
            "pending",
        ):
            raise ShopError(f"checkout: no order placed ({payment.get('payment_status')!r})")
        return result


# --- the bot ------------------------------------------------------------------------------------


class ShopperBot:
    """Places ``orders`` real orders, one shopper (one cookie jar) each."""

    def __init__(
        self,
        base_url: str | None = None,
        seed: int = 1,
        speed: float = 1.0,
        persona: str = "mixed",
        payment_method: str = "cod",
        impulsive_share: float = 0.5,
        timeout: float = 20.0,
        attempts: int = 5,
        retry_wait: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ) -> None:
        if persona != "mixed" and persona not in PERSONAS:
            raise ValueError(f"persona must be mixed, {' or '.join(PERSONAS)}")
        if payment_method not in PAYMENT_METHODS:
            raise ValueError(f"payment method must be one of {', '.join(PAYMENT_METHODS)}")
        self.base_url = (base_url or default_base_url()).rstrip("/")
        self.speed = speed
        self.persona = persona
        self.payment_method = payment_method
        self.impulsive_share = impulsive_share
        self.timeout = timeout
        self.attempts = attempts
        self.retry_wait = retry_wait
        self.sleep = sleep
        self.session_factory = session_factory
        self.rng = random.Random(seed)
        self.fake = Faker("it_IT")
        self.fake.seed_instance(seed)
        self._catalogue: list[dict[str, Any]] | None = None

    def client(self) -> StoreClient:
        return StoreClient(
            self.base_url,
            session=self.session_factory(),
            timeout=self.timeout,
            attempts=self.attempts,
            retry_wait=self.retry_wait,
        )

    def catalogue(self) -> list[dict[str, Any]]:
        if self._catalogue is None:
            client = self.client()
            try:
                products = purchasable(client.products())
            finally:
                client.session.close()
            if not products:
                raise ShopError(f"{self.base_url}: the Store API lists no purchasable product")
            self._catalogue = products
        return self._catalogue

    def pick_persona(self) -> Persona:
        if self.persona != "mixed":
            return PERSONAS[self.persona]
        return IMPULSIVE if self.rng.random() < self.impulsive_share else REASONED

    def plan(self) -> VisitPlan:
        return plan_visit(
            self.rng,
            self.fake,
            self.pick_persona(),
            self.catalogue(),
            self.base_url,
            self.speed,
            self.payment_method,
        )

    def place_order(self, plan: VisitPlan | None = None) -> PlacedOrder:
        plan = plan or self.plan()
        client = self.client()
        started = time.monotonic()
        try:
            for url, wait in zip(plan.pages, plan.waits, strict=True):
                client.view(url)
                self.sleep(wait)
            client.cart()
            for product_id, quantity in plan.cart:
                client.add_item(product_id, quantity)
            result = client.checkout(plan.billing, shipping_from(plan.billing), plan.payment_method)
            redirect = (result.get("payment_result") or {}).get("redirect_url")
            if redirect:
                client.view(redirect)
                client.view(redirect)  # a reload: the plugin must not log the order twice
        finally:
            client.session.close()
        return PlacedOrder(
            order_id=result["order_id"],
            status=str(result.get("status", "")),
            persona=plan.persona.name,
            pages=len(plan.pages),
            lines=len(plan.cart),
            payment_method=plan.payment_method,
            seconds=round(time.monotonic() - started, 3),
        )

    def orders(self, count: int) -> Iterator[PlacedOrder | ShopError]:
        """Places orders one after another; yields each result or the error that stopped it."""
        for _ in range(count):
            try:
                yield self.place_order()
            except (ShopError, requests.RequestException) as exc:
                yield exc if isinstance(exc, ShopError) else ShopError(str(exc))

    def run(self, count: int, progress: bool = True, console: Console | None = None) -> BotReport:
        report = BotReport()
        self.catalogue()  # fail early when the shop is not there
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
            task = bar.add_task("placing orders", total=count)
            for outcome in self.orders(count):
                if isinstance(outcome, PlacedOrder):
                    report.placed.append(outcome)
                    bar.update(
                        task,
                        advance=1,
                        description=f"order {outcome.order_id} ({outcome.persona})",
                    )
                else:
                    report.failures.append(str(outcome))
                    bar.update(task, advance=1, description="[red]failed order[/]")
        return report
