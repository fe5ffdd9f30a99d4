<?php
/**
 * Plugin Name:          TAP Order Logger
 * Description:          Writes one JSON line per event in a WooCommerce order's life (paid, refunded, cancelled, failed), exactly once, to a log file outside the web root, for the TAP analytics pipeline (Fluent Bit, Kafka, Spark, Elasticsearch, Kibana).
 * Version:              2.0.0
 * Requires at least:    6.3
 * Requires PHP:         7.4
 * Requires Plugins:     woocommerce
 * Author:               TAP
 * License:              Apache-2.0
 * License URI:          https://www.apache.org/licenses/LICENSE-2.0
 * Text Domain:          tap-order-logger
 * Domain Path:          /languages
 * WC requires at least: 8.0
 * WC tested up to:      10.3
 *
 * @package TAP_Order_Logger
 */

defined( 'ABSPATH' ) || exit;

define( 'TAP_ORDER_LOGGER_VERSION', '2.0.0' );
define( 'TAP_ORDER_LOGGER_FILE', __FILE__ );
define( 'TAP_ORDER_LOGGER_DIR', __DIR__ . '/' );

require_once TAP_ORDER_LOGGER_DIR . 'includes/class-reporter.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-log-path.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-log-lock-timeout.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-log-writer.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-retry-queue.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-consent.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-cookie-jar.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-session-tracker.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-order-formatter.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-order-logger.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-settings.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-privacy.php';
require_once TAP_ORDER_LOGGER_DIR . 'includes/class-plugin.php';

register_activation_hook( __FILE__, array( 'TAP_Plugin', 'activate' ) );
add_action( 'before_woocommerce_init', array( 'TAP_Plugin', 'declare_woocommerce_compatibility' ) );
add_action( 'plugins_loaded', array( 'TAP_Plugin', 'boot' ) );
