<?php
/**
 * Checkouts while another process holds the orders log's lock, then the queued retries, for the
 * fault suite (tests/faults/test_plugin_lock.py):
 *
 *     echo '{"log": "/path/orders.log", "lock_timeout": 0.5, "timezone": "Europe/Rome",
 *            "orders": [ {...}, ... ]}' | php checkout-with-stuck-lock.php
 *
 * Order specs are emit-lines.php's. With the real clock and the plugin's own TAP_Log_Writer:
 * lock-holder.php takes the log's lock; each order goes paid (the status hook, as at checkout)
 * and the time each checkout took is measured; the holder lets go; then Action Scheduler's
 * runner (the test double) runs every queued retry, in a request of its own. Prints one JSON
 * object: checkout_seconds (one per order), queued, lines_while_locked, lines_after_retry.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require __DIR__ . '/bootstrap.php';

$input = json_decode( stream_get_contents( STDIN ), true );
if ( ! is_array( $input ) || ! isset( $input['log'], $input['orders'] ) ) {
	fwrite( STDERR, "checkout-with-stuck-lock.php: expected {\"log\", \"orders\"} on stdin\n" );
	exit( 2 );
}
update_option( 'timezone_string', $input['timezone'] ?? 'Europe/Rome' );
update_option( TAP_Log_Path::OPTION, $input['log'] );
update_option( 'tap_order_log_lock_timeout', (string) ( $input['lock_timeout'] ?? 0.5 ) );

function tap_lines_in( $path ) {
	clearstatcache();
	return file_exists( $path ) ? substr_count( (string) file_get_contents( $path ), "\n" ) : 0;
}

$before = tap_lines_in( $input['log'] );
$holder = proc_open(
	array( PHP_BINARY, __DIR__ . '/lock-holder.php', $input['log'] ),
	array( 0 => array( 'pipe', 'r' ), 1 => array( 'pipe', 'w' ), 2 => array( 'pipe', 'w' ) ),
	$pipes
);
if ( "locked\n" !== fgets( $pipes[1] ) ) {
	fwrite( STDERR, 'the lock holder did not get the lock: ' . stream_get_contents( $pipes[2] ) );
	exit( 1 );
}

$plugin = new TAP_Plugin( new TAP_Recording_Cookie_Jar() );
$plugin->register_hooks();
$seconds = array();
foreach ( $input['orders'] as $spec ) {
	$spec['status'] = 'pending';
	$order          = tap_test_make_order( $spec );
	$started        = microtime( true );
	$order->update_status( 'processing' );
	$seconds[]      = microtime( true ) - $started;
}
$while_locked = tap_lines_in( $input['log'] ) - $before;
$queued       = tap_test_pending_actions( TAP_Retry_Queue::HOOK );

fwrite( $pipes[0], "go\n" );
fgets( $pipes[1] ); // "released"
proc_close( $holder );

// Action Scheduler's runner: a request of its own, without the shopper's cookies.
$_COOKIE = array();
tap_test_reset_hooks();
$runner = new TAP_Plugin( new TAP_Recording_Cookie_Jar() );
$runner->register_hooks();
foreach ( $queued as $action ) {
	tap_test_run_action( $action['id'] );
}

echo json_encode(
	array(
		'checkout_seconds'   => $seconds,
		'queued'             => count( $queued ),
		'lines_while_locked' => $while_locked,
		'lines_after_retry'  => tap_lines_in( $input['log'] ) - $before,
		'still_queued'       => count( tap_test_pending_actions( TAP_Retry_Queue::HOOK ) ),
	)
), "\n";
