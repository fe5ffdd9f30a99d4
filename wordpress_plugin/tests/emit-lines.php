<?php
/**
 * Prints the log lines the plugin writes for given orders, for tests/test_plugin_contract.py:
 *
 *     echo '{"timezone": "Europe/Rome", "now": 1795512000, "orders": [ {...}, ... ]}' | php emit-lines.php
 *
 * Each order spec is the fixtures.php format (WooCommerce-shaped raw values: amounts as decimal
 * strings, dates in UTC) plus "session": {"duration_session", "pages_viewed"} as the checkout
 * would have stored it, and optionally "logged_by_v1": true (the order carries the 1.x paid flag)
 * and "lifecycle": the steps the order goes through, in order (default: [{"status":
 * "processing"}]). A step is one of
 *
 *     {"status": "on-hold"}                      WC_Order::update_status()
 *     {"payment_complete": true}                 WC_Order::payment_complete()
 *     {"refund": {"amount": "20.00", "reason": "...", "date_created": "2026-11-25 10:00:00",
 *                 "lines": [{"line": 1, "qty": 1, "refund_total": "16.39", "refund_tax": "3.61"}]}}
 *                                                wc_create_refund(); "line" counts the order's
 *                                                product lines from 1
 *
 * and may carry "at": Unix time, the moment it happens (WooCommerce's clock and the plugin's;
 * "now" before the first). Every order goes through the real path: WooCommerce doubles -> the
 * plugin's hooks -> TAP_Order_Formatter -> TAP_Log_Writer -> the log file, which is then printed
 * unchanged. Exit status 1 when the plugin reported a problem (each is printed on stderr).
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

$GLOBALS['tap_emit_now']   = isset( $input['now'] ) ? (int) $input['now'] : time();
$GLOBALS['tap_test_clock'] = static function () {
	return $GLOBALS['tap_emit_now'];
};
$plugin = new TAP_Plugin( new TAP_Recording_Cookie_Jar(), $GLOBALS['tap_test_clock'] );
$plugin->register_hooks();

foreach ( $input['orders'] as $spec ) {
	$lifecycle = $spec['lifecycle'] ?? array( array( 'status' => 'processing' ) );
	$logged_v1 = ! empty( $spec['logged_by_v1'] );
	unset( $spec['lifecycle'], $spec['logged_by_v1'] );
	$spec['status'] = 'pending';
	$order          = tap_test_make_order( $spec );
	if ( $logged_v1 ) {
		$order->update_meta_data( TAP_Order_Logger::META_LOGGED, '2026-01-01T00:00:00Z' );
		$order->save();
	}
	foreach ( $lifecycle as $step ) {
		if ( isset( $step['at'] ) ) {
			$GLOBALS['tap_emit_now'] = (int) $step['at'];
		}
		$order = wc_get_order( $order->get_id() );
		if ( isset( $step['status'] ) ) {
			$order->update_status( (string) $step['status'] );
		} elseif ( ! empty( $step['payment_complete'] ) ) {
			$order->payment_complete();
		} elseif ( isset( $step['refund'] ) ) {
			$refund     = $step['refund'];
			$line_items = array();
			foreach ( $refund['lines'] ?? array() as $line ) {
				$line_items[ tap_test_item_id( $order->get_id(), (int) $line['line'] ) ] = array(
					'qty'          => (int) ( $line['qty'] ?? 0 ),
					'refund_total' => (string) ( $line['refund_total'] ?? '0' ),
					'refund_tax'   => isset( $line['refund_tax'] ) ? array( 1 => (string) $line['refund_tax'] ) : array(),
				);
			}
			$result = wc_create_refund(
				array(
					'order_id'     => $order->get_id(),
					'amount'       => (string) $refund['amount'],
					'reason'       => $refund['reason'] ?? null,
					'line_items'   => $line_items,
					'date_created' => isset( $refund['date_created'] ) ? WC_DateTime::from_utc( $refund['date_created'] ) : null,
				)
			);
			if ( is_wp_error( $result ) ) {
				fwrite( STDERR, 'emit-lines.php: order ' . $order->get_id() . ": the refund was refused\n" );
				exit( 2 );
			}
		} else {
			fwrite( STDERR, 'emit-lines.php: unknown step ' . json_encode( $step ) . "\n" );
			exit( 2 );
		}
	}
}

$log   = $plugin->log_path->resolve();
$lines = is_string( $log ) && file_exists( $log ) ? file_get_contents( $log ) : '';
echo $lines;

$reported = $GLOBALS['tap_wc_logger']->messages();
foreach ( $reported as $message ) {
	fwrite( STDERR, "emit-lines.php: $message\n" );
}
exit( empty( $reported ) ? 0 : 1 );
