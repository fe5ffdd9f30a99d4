<?php
/**
 * Prints the log lines the plugin writes for given orders, for tests/test_plugin_contract.py:
 *
 *     echo '{"timezone": "Europe/Rome", "orders": [ {...}, ... ]}' | php emit-lines.php
 *
 * Each order spec is the fixtures.php format (WooCommerce-shaped raw values: amounts as decimal
 * strings, dates in UTC) plus "session": {"duration_session", "pages_viewed"} as the checkout
 * would have stored it. Every order goes through the real path: WooCommerce doubles -> the
 * plugin's status hook -> TAP_Order_Formatter -> TAP_Log_Writer -> the log file, which is then
 * printed unchanged. Exit status 1 when an order produced no line.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require __DIR__ . '/bootstrap.php';

$input = json_decode( stream_get_contents( STDIN ), true );
if ( ! is_array( $input ) || ! isset( $input['orders'] ) || ! is_array( $input['orders'] ) ) {
	fwrite( STDERR, "emit-lines.php: expected {\"orders\": [...]} on stdin\n" );
	exit( 2 );
}
update_option( 'timezone_string', $input['timezone'] ?? 'Europe/Rome' );

$plugin = new TAP_Plugin( new TAP_Recording_Cookie_Jar() );
$plugin->register_hooks();

foreach ( $input['orders'] as $spec ) {
	$spec['status'] = 'pending';
	$order          = tap_test_make_order( $spec );
	$order->update_status( 'processing' );
}

$log   = $plugin->log_path->resolve();
$lines = is_string( $log ) && file_exists( $log ) ? file_get_contents( $log ) : '';
echo $lines;

foreach ( $GLOBALS['tap_wc_logger']->messages() as $message ) {
	fwrite( STDERR, "emit-lines.php: $message\n" );
}
exit( substr_count( $lines, "\n" ) === count( $input['orders'] ) ? 0 : 1 );
