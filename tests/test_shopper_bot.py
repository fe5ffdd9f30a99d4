"""The shopper bot against a small fake WooCommerce Store API.

The fake checks what the Store API documentation asks of a client: the paths and methods, the
``Nonce`` header on every write (rotated on each response, so a stale nonce fails), the
``Cart-Token`` header and the cookie jar carried from request to request, the JSON bodies of
add-item and checkout. It also plays the TAP plugin's part on page views (the visit cookies), so
the tests can see that a checkout carries the visit the plugin would measure.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from faker import Faker
from typer.testing import CliRunner

from tapstack.cli import app as tap_app
from tapstack.shop import bot as botmod
from tapstack.shop.bot import (
    IMPULSIVE,
    REASONED,
    ShopError,
    ShopperBot,
    StoreClient,
    plan_visit,
    purchasable,
    read_nonce,
    scaled,
    split_duration,
)

API = "/wp-json/wc/store/v1"
BILLING_REQUIRED = {"first_name", "last_name", "address_1", "city", "postcode", "country", "email"}
SHIPPING_REQUIRED = {"first_name", "last_name", "address_1", "city", "postcode", "country"}


class FakeShop:
    """State of the fake shop, shared by the handler threads."""

    def __init__(
        self, nonce_header: str = "Nonce", fail_products: int = 0, public_url: str = ""
    ) -> None:
        self.lock = threading.RLock()
        self.nonce_header = nonce_header
        self.fail_products = fail_products
        self.base_url = ""
        # The home URL the site publishes in links, when it differs from where the bot reaches it.
        self.public_url = public_url
        self.products = [
            {"id": 11, "name": "T-Shirt", "type": "simple", "slug": "t-shirt"},
            {"id": 12, "name": "Camicia / lino", "type": "simple", "slug": "camicia"},
            {"id": 13, "name": "Giacca Müller", "type": "simple", "slug": "giacca"},
            {"id": 14, "name": "Polo", "type": "variable", "slug": "polo"},
            {"id": 15, "name": "Sciarpa", "type": "simple", "slug": "sciarpa", "in_stock": False},
            {"id": 16, "name": "Calzini", "type": "simple", "slug": "calzini"},
        ]
        self.carts: dict[str, dict] = {}
        self.orders: list[dict] = []
        self.page_views: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.violations: list[str] = []
        self._ids = itertools.count(1001)
        self._tokens = itertools.count(1)

    def product_json(self, product: dict) -> dict:
        return {
            "id": product["id"],
            "name": product["name"],
            "slug": product["slug"],
            "type": product["type"],
            "permalink": f"{self.public_url or self.base_url}/product/{product['slug']}/",
            "is_purchasable": True,
            "is_in_stock": product.get("in_stock", True),
            "prices": {"price": "2000", "currency_code": "EUR", "currency_minor_unit": 2},
        }


def make_handler(shop: FakeShop):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        # -- helpers --------------------------------------------------------------------------

        def cookies(self) -> dict[str, str]:
            jar = SimpleCookie(self.headers.get("Cookie", ""))
            return {name: morsel.value for name, morsel in jar.items()}

        def send(self, status: int, body, headers: dict[str, str] | None = None, cookies=()):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            kind = "text/html" if isinstance(body, bytes) else "application/json"
            self.send_header("Content-Type", f"{kind}; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            for cookie in cookies:
                self.send_header("Set-Cookie", cookie)
            self.end_headers()
            self.wfile.write(data)

        def fail(self, status: int, code: str, message: str) -> None:
            with shop.lock:
                shop.violations.append(f"{self.command} {self.path}: {message}")
            self.send(status, {"code": code, "message": message, "data": {"status": status}})

        def body(self) -> dict | None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                return None
            try:
                return json.loads(raw)
            except ValueError:
                return None

        def cart_for_request(self) -> tuple[str | None, dict | None]:
            token = self.headers.get("Cart-Token")
            return token, shop.carts.get(token or "")

        def token_headers(self, token: str, cart: dict) -> dict[str, str]:
            cart["nonce_serial"] += 1
            cart["nonce"] = f"nonce-{token}-{cart['nonce_serial']}"
            return {shop.nonce_header: cart["nonce"], "Cart-Token": token}

        def check_nonce(self, cart: dict) -> bool:
            sent = self.headers.get("Nonce") or self.headers.get("X-WC-Store-API-Nonce")
            if not sent:
                self.fail(401, "woocommerce_rest_missing_nonce", "Missing the Nonce header.")
                return False
            if sent != cart["nonce"]:
                self.fail(403, "woocommerce_rest_invalid_nonce", "Nonce is invalid (stale?).")
                return False
            return True

        def check_session(self, cart: dict) -> bool:
            if self.cookies().get("wp_woocommerce_session_tap") != cart["session"]:
                self.fail(403, "session", "The session cookie was not carried.")
                return False
            return True

        # -- routes ---------------------------------------------------------------------------

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            with shop.lock:
                shop.requests.append(("GET", url.path))
            if url.path == f"{API}/products":
                self.get_products(parse_qs(url.query))
            elif url.path == f"{API}/cart":
                self.get_cart()
            elif url.path.startswith(API):
                self.fail(404, "rest_no_route", f"No route {url.path}")
            elif (
                url.path == "/"
                or url.path.startswith("/product/")
                or url.path.startswith("/checkout/order-received/")
            ):
                self.page_view(url.path + ("?" + url.query if url.query else ""))
            else:
                self.send(404, b"<html>not found</html>")

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            with shop.lock:
                shop.requests.append(("POST", url.path))
            if url.path == f"{API}/cart/add-item":
                self.add_item()
            elif url.path == f"{API}/checkout":
                self.checkout()
            else:
                self.fail(404, "rest_no_route", f"No route {url.path}")

        def page_view(self, path: str) -> None:
            """What the TAP plugin does on a front-end page view."""
            cookies = self.cookies()
            set_cookies = []
            if "visit_start_time" not in cookies:
                set_cookies.append("visit_start_time=1795512000; Path=/; HttpOnly; SameSite=Lax")
                pages = 1
            else:
                pages = int(cookies.get("tap_pages_viewed", "0")) + 1
            set_cookies.append(f"tap_pages_viewed={pages}; Path=/; HttpOnly; SameSite=Lax")
            with shop.lock:
                shop.page_views.append(path)
            self.send(200, b"<html><body>Garderobe</body></html>", cookies=set_cookies)

        def get_products(self, query: dict) -> None:
            with shop.lock:
                if shop.fail_products > 0:
                    shop.fail_products -= 1
                    self.send(503, b"<html>starting</html>")
                    return
            per_page = int(query.get("per_page", ["10"])[0])
            page = int(query.get("page", ["1"])[0])
            kind = query.get("type", [None])[0]
            items = [p for p in shop.products if kind is None or p["type"] == kind]
            chunk = items[(page - 1) * per_page : page * per_page]
            self.send(200, [shop.product_json(p) for p in chunk])

        def get_cart(self) -> None:
            with shop.lock:
                token, cart = self.cart_for_request()
                cookies = []
                if cart is None:
                    token = f"ct{next(shop._tokens)}"
                    cart = {"items": {}, "nonce": "", "nonce_serial": 0, "session": token}
                    shop.carts[token] = cart
                    cookies.append(f"wp_woocommerce_session_tap={token}; Path=/; HttpOnly")
                headers = self.token_headers(token, cart)
                body = {"items": [], "items_count": sum(cart["items"].values())}
            self.send(200, body, headers, cookies)

        def add_item(self) -> None:
            body = self.body()
            with shop.lock:
                token, cart = self.cart_for_request()
                if cart is None:
                    self.fail(403, "cart_token", "Missing or unknown Cart-Token.")
                    return
                if not self.check_nonce(cart) or not self.check_session(cart):
                    return
                if body is None or set(body) != {"id", "quantity"}:
                    self.fail(400, "rest_invalid_param", f"Body must be {{id, quantity}}: {body}")
                    return
                product = next((p for p in shop.products if p["id"] == body["id"]), None)
                qty = body["quantity"]
                if product is None or not isinstance(body["id"], int):
                    self.fail(400, "woocommerce_rest_cart_invalid_product", "No such product.")
                    return
                if product["type"] != "simple" or not product.get("in_stock", True):
                    self.fail(400, "woocommerce_rest_cart_product_not_purchasable", "Not now.")
                    return
                if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
                    self.fail(400, "rest_invalid_param", "quantity must be a positive integer")
                    return
                cart["items"][product["id"]] = cart["items"].get(product["id"], 0) + qty
                headers = self.token_headers(token, cart)
                count = sum(cart["items"].values())
            self.send(201, {"items_count": count}, headers)

        def checkout(self) -> None:
            body = self.body()
            with shop.lock:
                token, cart = self.cart_for_request()
                if cart is None:
                    self.fail(403, "cart_token", "Missing or unknown Cart-Token.")
                    return
                if not self.check_nonce(cart) or not self.check_session(cart):
                    return
                if not isinstance(body, dict):
                    self.fail(400, "rest_invalid_json", "Body must be JSON.")
                    return
                billing = body.get("billing_address") or {}
                shipping = body.get("shipping_address") or {}
                missing = (BILLING_REQUIRED - set(billing)) | (SHIPPING_REQUIRED - set(shipping))
                if missing or "@" not in billing.get("email", ""):
                    self.fail(400, "rest_invalid_param", f"Address fields missing: {missing}")
                    return
                if body.get("payment_method") not in ("cod", "bacs"):
                    self.fail(400, "woocommerce_rest_checkout_payment_method", "No such gateway.")
                    return
                if not cart["items"]:
                    self.fail(400, "woocommerce_rest_cart_empty", "Cannot create order, empty.")
                    return
                cookies = self.cookies()
                if "visit_start_time" not in cookies:
                    self.fail(400, "visit", "The visit cookie was not carried to the checkout.")
                    return
                order_id = next(shop._ids)
                status = "processing" if body["payment_method"] == "cod" else "on-hold"
                shop.orders.append(
                    {
                        "order_id": order_id,
                        "items": dict(cart["items"]),
                        "body": body,
                        "pages_viewed": int(cookies.get("tap_pages_viewed", "0")),
                    }
                )
                cart["items"] = {}
                headers = self.token_headers(token, cart)
            key = f"wc_order_{order_id}"
            self.send(
                200,
                {
                    "order_id": order_id,
                    "status": status,
                    "order_key": key,
                    "customer_id": 0,
                    "billing_address": billing,
                    "shipping_address": shipping,
                    "payment_method": body["payment_method"],
                    "payment_result": {
                        "payment_status": "success",
                        "payment_details": [],
                        "redirect_url": f"{shop.public_url or shop.base_url}"
                        f"/checkout/order-received/{order_id}/"
                        f"?key={key}",
                    },
                },
                headers,
            )

    return Handler


@pytest.fixture
def fake_shop(request):
    options = getattr(request, "param", {})
    shop = FakeShop(**options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(shop))
    server.daemon_threads = True
    shop.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield shop
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def quick_bot(shop: FakeShop, **kwargs) -> ShopperBot:
    kwargs.setdefault("speed", 0)
    kwargs.setdefault("retry_wait", 0)
    kwargs.setdefault("timeout", 5)
    return ShopperBot(base_url=shop.base_url, **kwargs)


# --- end to end against the fake ----------------------------------------------------------------


def test_bot_places_the_requested_orders_through_the_store_api(fake_shop):
    report = quick_bot(fake_shop, seed=3).run(6, progress=False)

    assert fake_shop.violations == []
    assert report.ok, report.failures
    assert len(report.placed) == 6
    assert [o["order_id"] for o in fake_shop.orders] == [p.order_id for p in report.placed]
    for placed, order in zip(report.placed, fake_shop.orders, strict=True):
        # Every page the bot viewed before checkout was counted in the visit it carried.
        assert order["pages_viewed"] == placed.pages
        assert placed.status == "processing"
        assert set(order["items"]) <= {11, 12, 13, 16}  # variable / out of stock never added
        assert order["body"]["payment_method"] == "cod"
        assert order["body"]["billing_address"]["country"] == "IT"
        assert "email" not in order["body"]["shipping_address"]


def test_bot_follows_the_documented_request_sequence(fake_shop):
    quick_bot(fake_shop, seed=5, persona="impulsive").run(1, progress=False)
    calls = [c for c in fake_shop.requests if c[1] != f"{API}/products"]
    api = [c for c in calls if c[1].startswith(API)]
    assert api[0] == ("GET", f"{API}/cart")
    assert all(c == ("POST", f"{API}/cart/add-item") for c in api[1:-1])
    assert api[-1] == ("POST", f"{API}/checkout")
    assert calls[0] == ("GET", "/"), "the visit starts on the home page"
    # Thank-you page opened and reloaded after the checkout.
    assert [c[1] for c in calls[-2:]] == ["/checkout/order-received/1001/"] * 2


@pytest.mark.parametrize("fake_shop", [{"nonce_header": "X-WC-Store-API-Nonce"}], indirect=True)
def test_bot_reads_the_legacy_nonce_header(fake_shop):
    report = quick_bot(fake_shop).run(2, progress=False)
    assert fake_shop.violations == []
    assert len(report.placed) == 2


@pytest.mark.parametrize("fake_shop", [{"fail_products": 2}], indirect=True)
def test_bot_retries_while_the_shop_starts(fake_shop):
    report = quick_bot(fake_shop).run(1, progress=False)
    assert len(report.placed) == 1
    assert fake_shop.requests.count(("GET", f"{API}/products")) == 3


@pytest.mark.parametrize("fake_shop", [{"public_url": "http://localhost:8000"}], indirect=True)
def test_links_to_the_sites_home_url_are_followed_on_the_base_url(fake_shop):
    report = quick_bot(fake_shop, persona="reasoned").run(1, progress=False)
    assert fake_shop.violations == []
    assert len(report.placed) == 1
    assert any(path.startswith("/product/") for path in fake_shop.page_views)
    assert fake_shop.page_views[-1].startswith("/checkout/order-received/1001/?key=")


def test_store_client_url():
    client = StoreClient("http://wordpress/")
    assert client.url("/?post_type=product") == "http://wordpress/?post_type=product"
    assert client.url("http://wordpress/product/a/") == "http://wordpress/product/a/"
    assert client.url("http://localhost:8000/x/?key=1#top") == "http://wordpress/x/?key=1"


def test_bank_transfer_orders_go_on_hold(fake_shop):
    report = quick_bot(fake_shop, payment_method="bacs").run(2, progress=False)
    assert [p.status for p in report.placed] == ["on-hold", "on-hold"]


def test_mixed_run_has_both_personas_and_reasoned_visits_are_longer(fake_shop):
    report = quick_bot(fake_shop, seed=11).run(12, progress=False)
    by_persona: dict[str, list[int]] = {}
    for placed in report.placed:
        by_persona.setdefault(placed.persona, []).append(placed.pages)
    assert set(by_persona) == {"impulsive", "reasoned"}
    assert max(by_persona["impulsive"]) < min(by_persona["reasoned"]) + 5
    assert sum(by_persona["reasoned"]) / len(by_persona["reasoned"]) > sum(
        by_persona["impulsive"]
    ) / len(by_persona["impulsive"])


def test_waits_are_scaled_by_speed(fake_shop):
    slept: list[float] = []
    bot = quick_bot(fake_shop, persona="reasoned", speed=60, sleep=slept.append)
    report = bot.run(1, progress=False)
    assert len(report.placed) == 1
    assert len(slept) == report.placed[0].pages
    assert REASONED.duration_bounds[0] / 60 <= sum(slept) <= REASONED.duration_bounds[1] / 60


def test_failed_checkout_is_reported_and_the_run_goes_on(fake_shop):
    fake_shop.products = [p for p in fake_shop.products if p["id"] == 11]
    bot = quick_bot(fake_shop)
    original = bot.plan
    calls = itertools.count()

    def broken_first_plan():
        plan = original()
        if next(calls) == 0:
            return botmod.VisitPlan(**{**plan.__dict__, "payment_method": "paypal"})
        return plan

    bot.plan = broken_first_plan
    report = bot.run(3, progress=False)
    assert len(report.placed) == 2
    assert len(report.failures) == 1
    assert "woocommerce_rest_checkout_payment_method" in report.failures[0]


def test_no_shop_is_a_clear_error():
    bot = ShopperBot(base_url="http://127.0.0.1:9", speed=0, attempts=2, retry_wait=0, timeout=2)
    with pytest.raises(requests.ConnectionError):
        bot.run(1, progress=False)


def test_cli_runs_the_bot(fake_shop):
    runner = CliRunner()
    args = ["shop", "run", "--orders", "2", "--base-url", fake_shop.base_url, "--speed", "0"]
    result = runner.invoke(tap_app, [*args, "--no-progress", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "2 of 2 orders placed" in result.output
    assert len(fake_shop.orders) == 2


def test_cli_reports_an_unreachable_shop():
    args = ["shop", "run", "--base-url", "http://127.0.0.1:9", "--timeout", "1", "--attempts", "1"]
    result = CliRunner().invoke(tap_app, [*args, "--no-progress"])
    assert result.exit_code == 1
    assert "did not answer" in result.output


def test_cli_exits_non_zero_when_the_shop_sells_nothing(fake_shop):
    fake_shop.products = []
    runner = CliRunner()
    args = ["shop", "run", "--orders", "1", "--base-url", fake_shop.base_url, "--no-progress"]
    result = runner.invoke(tap_app, args)
    assert result.exit_code == 1
    assert "no purchasable product" in result.output


# --- pure functions -----------------------------------------------------------------------------


def test_split_duration_adds_up_and_is_positive():
    rng = random.Random(1)
    for parts in (1, 2, 7, 40):
        waits = split_duration(rng, 300.0, parts)
        assert len(waits) == parts
        assert all(w > 0 for w in waits)
        assert sum(waits) == pytest.approx(300.0)
    with pytest.raises(ValueError):
        split_duration(rng, 1.0, 0)


def test_scaled():
    assert scaled(120.0, 60) == 2.0
    assert scaled(120.0, 1) == 120.0
    assert scaled(120.0, 0) == 0.0


def test_purchasable_keeps_simple_in_stock_products():
    products = [
        {"id": 1, "type": "simple", "is_purchasable": True, "is_in_stock": True},
        {"id": 2, "type": "variable", "is_purchasable": True, "is_in_stock": True},
        {"id": 3, "type": "simple", "is_purchasable": False, "is_in_stock": True},
        {"id": 4, "type": "simple", "is_purchasable": True, "is_in_stock": False},
        {"id": "5", "type": "simple"},
    ]
    assert [p["id"] for p in purchasable(products)] == [1]


def test_read_nonce_prefers_the_current_header_name():
    assert read_nonce({"Nonce": "a", "X-WC-Store-API-Nonce": "b"}) == "a"
    assert read_nonce({"X-WC-Store-API-Nonce": "b"}) == "b"
    assert read_nonce({}) is None


@pytest.mark.parametrize("persona", [IMPULSIVE, REASONED])
def test_plan_visit_respects_the_persona(persona):
    catalogue = [
        {"id": i, "permalink": f"http://shop/product/{i}/", "type": "simple"} for i in range(1, 9)
    ]
    fake = Faker("it_IT")
    for seed in range(30):
        plan = plan_visit(random.Random(seed), fake, persona, catalogue, "http://shop", 1.0, "cod")
        assert persona.pages_bounds[0] <= len(plan.pages) <= persona.pages_bounds[1]
        assert plan.pages[0] == "http://shop/"
        assert len(plan.waits) == len(plan.pages)
        low, high = persona.duration_bounds
        assert low - 1e-6 <= plan.seconds <= high + 1e-6
        assert persona.lines[0] <= len(plan.cart) <= persona.lines[1]
        assert all(persona.quantity[0] <= q <= persona.quantity[1] for _, q in plan.cart)
        assert len({pid for pid, _ in plan.cart}) == len(plan.cart)
        assert plan.billing["email"].isascii() and "@" in plan.billing["email"]


def test_plan_visit_is_reproducible():
    catalogue = [{"id": i, "type": "simple"} for i in range(1, 5)]
    plans = []
    for _ in range(2):
        fake = Faker("it_IT")
        fake.seed_instance(9)
        plans.append(
            plan_visit(random.Random(9), fake, REASONED, catalogue, "http://s", 2.0, "cod")
        )
    assert plans[0] == plans[1]


def test_connection_errors_are_retried_then_given_up():
    class FlakySession(requests.Session):
        def __init__(self, failures: int) -> None:
            super().__init__()
            self.failures = failures
            self.calls = 0

        def request(self, method, url, **kwargs):
            self.calls += 1
            if self.calls <= self.failures:
                raise requests.ConnectionError("connection refused")
            response = requests.Response()
            response.status_code = 200
            response.headers["Nonce"] = "n1"
            response.headers["Cart-Token"] = "t1"
            response._content = b"{}"
            return response

    flaky = FlakySession(failures=2)
    client = StoreClient("http://shop", session=flaky, attempts=4, retry_wait=0)
    assert client.cart() == {}
    assert flaky.calls == 3
    assert (client.nonce, client.cart_token) == ("n1", "t1")

    hopeless = FlakySession(failures=10)
    client = StoreClient("http://shop", session=hopeless, attempts=3, retry_wait=0)
    with pytest.raises(requests.ConnectionError):
        client.cart()
    assert hopeless.calls == 3


def test_checkout_without_an_order_id_is_an_error():
    class Answer(requests.Session):
        def request(self, method, url, **kwargs):
            response = requests.Response()
            response.status_code = 200
            response._content = json.dumps(
                {"payment_result": {"payment_status": "failure"}}
            ).encode()
            return response

    client = StoreClient("http://shop", session=Answer(), retry_wait=0)
    with pytest.raises(ShopError, match="no order placed"):
        client.checkout({"email": "a@b.c"}, {}, "cod")
