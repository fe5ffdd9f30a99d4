#!/bin/sh
# Garderobe shop setup, run by the wp-setup container (wordpress:cli, as www-data) once the
# WordPress container is healthy. Idempotent: every step checks first or is an upsert, so
# `tap-compose up ingest` can run it again at any time.
#
#   1. WordPress core install (URL, title, admin from compose/.env), permalinks, timezone
#   2. WooCommerce (wp-cli install from wordpress.org, pinned version) + the TAP order logger,
#      its `tap_order_log_path` option set to the orders-log volume (outside the web root)
#   3. Store settings: EUR, Italy, no "coming soon" page, guest checkout, no shipping/taxes,
#      cash on delivery enabled (the offline gateway the shopper bot uses)
#   4. The Garderobe catalogue from catalogue.json (seed-catalogue.php)
#   5. A few customers (`wp user create ... --role=customer`) with billing details
set -eu

cd /var/www/html
here=/tap/wordpress

log() { printf '[wp-setup] %s\n' "$*"; }

: "${TAP_SHOP_URL:?}" "${TAP_SHOP_NAME:?}" "${TAP_SHOP_CURRENCY:?}" "${TAP_SHOP_TIMEZONE:?}"
: "${TAP_WP_ADMIN_USER:?}" "${TAP_WP_ADMIN_PASSWORD:?}" "${TAP_WP_ADMIN_EMAIL:?}"
: "${TAP_SHOP_CUSTOMER_PASSWORD:?}" "${WOOCOMMERCE_VERSION:?}" "${TAP_ORDER_LOG_PATH:?}"

# ── 1. core ──────────────────────────────────────────────────────────────────────────────
if wp core is-installed >/dev/null 2>&1; then
  log "WordPress already installed"
else
  log "installing WordPress at $TAP_SHOP_URL"
  wp core install --url="$TAP_SHOP_URL" --title="$TAP_SHOP_NAME" \
    --admin_user="$TAP_WP_ADMIN_USER" --admin_password="$TAP_WP_ADMIN_PASSWORD" \
    --admin_email="$TAP_WP_ADMIN_EMAIL" --skip-email
fi
wp option update home "$TAP_SHOP_URL" >/dev/null
wp option update siteurl "$TAP_SHOP_URL" >/dev/null
wp option update blogname "$TAP_SHOP_NAME" >/dev/null
wp option update timezone_string "$TAP_SHOP_TIMEZONE" >/dev/null
# Pretty permalinks: the Store API lives under /wp-json/ (the image ships the .htaccess rules).
wp rewrite structure '/%postname%/' >/dev/null

# ── 2. plugins ───────────────────────────────────────────────────────────────────────────
if ! wp plugin is-installed woocommerce; then
  log "installing WooCommerce $WOOCOMMERCE_VERSION"
  wp plugin install woocommerce --version="$WOOCOMMERCE_VERSION"
fi
wp plugin is-active woocommerce || wp plugin activate woocommerce
wp plugin is-active tap-order-logger || wp plugin activate tap-order-logger
# The plugin refuses paths inside the web root; /var/log/tap is the shared orders-log volume.
wp option update tap_order_log_path "$TAP_ORDER_LOG_PATH" >/dev/null

# ── 3. store settings ────────────────────────────────────────────────────────────────────
log "store settings"
wp option update woocommerce_currency "$TAP_SHOP_CURRENCY" >/dev/null
wp option update woocommerce_default_country IT >/dev/null
wp option update woocommerce_price_num_decimals 2 >/dev/null
wp option update woocommerce_calc_taxes no >/dev/null
wp option update woocommerce_ship_to_countries disabled >/dev/null
wp option update woocommerce_enable_guest_checkout yes >/dev/null
wp option update woocommerce_coming_soon no >/dev/null
wp option update woocommerce_store_pages_only no >/dev/null
wp option update woocommerce_onboarding_profile '{"skipped": true}' --format=json >/dev/null
wp option update woocommerce_cod_settings --format=json '{
  "enabled": "yes",
  "title": "Cash on delivery",
  "description": "Pay with cash upon delivery.",
  "instructions": "Pay with cash upon delivery.",
  "enable_for_methods": [],
  "enable_for_virtual": "yes"
}' >/dev/null
wp wc tool run install_pages --user="$TAP_WP_ADMIN_USER" >/dev/null

# ── 4. catalogue ─────────────────────────────────────────────────────────────────────────
wp eval-file "$here/seed-catalogue.php" "$here/catalogue.json"

# ── 5. customers ─────────────────────────────────────────────────────────────────────────
customer() { # login first_name last_name city
  login=$1 first=$2 last=$3 city=$4
  email="$login@garderobe.example"
  if wp user get "$login" --field=ID >/dev/null 2>&1; then
    wp user update "$login" --user_pass="$TAP_SHOP_CUSTOMER_PASSWORD" --skip-email >/dev/null
  else
    log "creating customer $login"
    wp user create "$login" "$email" --role=customer --first_name="$first" --last_name="$last" \
      --user_pass="$TAP_SHOP_CUSTOMER_PASSWORD" >/dev/null
  fi
  for pair in "billing_first_name=$first" "billing_last_name=$last" "billing_email=$email" \
    "billing_city=$city" "billing_country=IT" "billing_address_1=Via Roma 1" \
    "billing_postcode=00100" "billing_phone=+39 06 000 0000"; do
    wp user meta update "$login" "${pair%%=*}" "${pair#*=}" >/dev/null
  done
}
customer lorenzo Lorenzo Bianchi Roma
customer giulia Giulia Russo Milano
customer marco Marco Ferrari Torino
customer sofia Sofia Esposito Napoli
customer matteo Matteo Romano Firenze

log "done: $TAP_SHOP_URL (admin: $TAP_SHOP_URL/wp-admin)"
