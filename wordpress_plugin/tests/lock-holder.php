<?php
/**
 * A stuck lock holder, for the lock-deadline tests: a separate process that takes the orders
 * log's exclusive lock and keeps it until told to let go.
 *
 *     php lock-holder.php <log path>
 *
 * Prints "locked\n" once it holds the lock, then waits until a line arrives on stdin or stdin
 * closes, releases the lock, prints "released\n" and exits. A safety timer (60 s) releases it
 * anyway, so a regression to a blocking flock() fails the test instead of hanging it forever.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

list( , $path ) = $argv;
$handle = fopen( $path, 'ab' );
if ( false === $handle || ! flock( $handle, LOCK_EX ) ) {
	fwrite( STDERR, "lock-holder: cannot lock $path\n" );
	exit( 1 );
}
echo "locked\n";
fflush( STDOUT );

$read   = array( STDIN );
$write  = null;
$except = null;
stream_select( $read, $write, $except, 60 );

flock( $handle, LOCK_UN );
fclose( $handle );
echo "released\n";
