<?php
/**
 * Loads the plugin the way WordPress would, on top of the WordPress stubs and the WooCommerce
 * doubles, in a throw-away directory tree:
 *
 *     <tmp>/tap-plugin-tests-<pid>/site/public/            ABSPATH (the web root)
 *     <tmp>/tap-plugin-tests-<pid>/site/public/wp-content/  WP_CONTENT_DIR (uploads below)
 *     <tmp>/tap-plugin-tests-<pid>/site/tap-logs/orders.log the default log
 *
 * With TAP_TEST_WP_SUBDIR=wp in the environment, WordPress sits in a subfolder of the web root
 * instead (ABSPATH <...>/site/public/wp/, wp-content below it), as the path-guard tests for CLI
 * and cron need; TAP_TEST_WITHOUT_ACTION_SCHEDULER=1 leaves Action Scheduler out.
 *
 * Used by PHPUnit and by the helper scripts (emit-lines.php).
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

error_reporting( E_ALL );

define( 'TAP_TEST_ROOT', sys_get_temp_dir() . '/tap-plugin-tests-' . getmypid() . '-' . bin2hex( random_bytes( 3 ) ) );
define( 'TAP_TEST_SITE', TAP_TEST_ROOT . '/site' );
define( 'TAP_TEST_WP_SUBDIR', preg_replace( '/[^a-z0-9-]/', '', (string) getenv( 'TAP_TEST_WP_SUBDIR' ) ) );
define( 'ABSPATH', TAP_TEST_SITE . '/public/' . ( '' === TAP_TEST_WP_SUBDIR ? '' : TAP_TEST_WP_SUBDIR . '/' ) );
define( 'WP_CONTENT_DIR', ABSPATH . 'wp-content' );
define( 'TAP_REPO_ROOT', dirname( __DIR__, 2 ) );
define( 'TAP_PLUGIN_FILE', dirname( __DIR__ ) . '/tap-order-logger/tap-order-logger.php' );

mkdir( WP_CONTENT_DIR . '/uploads', 0755, true );

register_shutdown_function(
	static function () {
		tap_test_remove_tree( TAP_TEST_ROOT );
	}
);

/** rm -rf, for the test tree only. */
function tap_test_remove_tree( $path ) {
	if ( 0 !== strpos( $path, sys_get_temp_dir() . '/tap-plugin-tests-' ) ) {
		return;
	}
	if ( is_link( $path ) || ( file_exists( $path ) && ! is_dir( $path ) ) ) { // files, links, FIFOs
		unlink( $path );
		return;
	}
	if ( ! is_dir( $path ) ) {
		return;
	}
	foreach ( scandir( $path ) as $entry ) {
		if ( '.' !== $entry && '..' !== $entry ) {
			tap_test_remove_tree( $path . '/' . $entry );
		}
	}
	rmdir( $path );
}

require_once __DIR__ . '/wp-stubs.php';
require_once __DIR__ . '/doubles/class-wc-datetime.php';
require_once __DIR__ . '/doubles/class-wc-data.php';
require_once __DIR__ . '/doubles/class-wc-product.php';
require_once __DIR__ . '/doubles/class-wc-order-item-product.php';
require_once __DIR__ . '/doubles/class-wc-order.php';
require_once __DIR__ . '/doubles/class-test-store.php';
if ( ! getenv( 'TAP_TEST_WITHOUT_ACTION_SCHEDULER' ) ) {
	require_once __DIR__ . '/doubles/action-scheduler.php'; // WooCommerce ships it.
}

// The shop's time zone, as contracts/settings.toml [enrichment] shop_timezone.
update_option( 'timezone_string', 'Europe/Rome' );

require_once TAP_PLUGIN_FILE;

// What the plugin's main file hooked while loading, before any test resets the registry.
$GLOBALS['tap_hooks_at_load'] = $GLOBALS['tap_wp_hooks'];

require_once __DIR__ . '/doubles/class-recording-cookie-jar.php';
require_once __DIR__ . '/fixtures.php';
