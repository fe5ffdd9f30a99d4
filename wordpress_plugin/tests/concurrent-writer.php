<?php
/**
 * One of several processes appending to the same log at once (LogWriterTest):
 *
 *     php concurrent-writer.php <log path> <writer id> <lines>
 *
 * Each line is a JSON object {"writer":..,"seq":..,"pad":".."} whose length varies from a few
 * bytes to ~20 KB, well past PIPE_BUF (4096), so only the lock keeps lines whole.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

define( 'ABSPATH', __DIR__ . '/' ); // Only to satisfy the plugin files' direct-access guard.
require_once dirname( __DIR__ ) . '/tap-order-logger/includes/class-log-writer.php';

list( , $path, $writer, $count ) = $argv;
$log = new TAP_Log_Writer();
mt_srand( (int) $writer );
for ( $seq = 0; $seq < (int) $count; $seq++ ) {
	$pad  = str_repeat( chr( 97 + ( (int) $writer % 26 ) ), mt_rand( 0, 20000 ) );
	$line = json_encode( array( 'writer' => (int) $writer, 'seq' => $seq, 'pad' => $pad ) ) . "\n";
	$log->append( $path, $line, 60.0 ); // This test is about whole lines, not the checkout deadline.
}
